package cgroups

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestMountCache: with CacheMounts set, cgroupMounts gives what mountinfo
// gives and keeps it; a true cache entry is used (seen here by marking
// it), and one whose mount namespace, memberships or mount ids no longer
// hold is ignored and written again.
func TestMountCache(t *testing.T) {
	want, err := readCgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Skip("no cgroup filesystem mounted")
	}
	if _, ok := mountID(want[0].Mountpoint); !ok {
		t.Skip("kernel without unique mount ids (STATX_MNT_ID_UNIQUE, Linux 6.8): the cache is never used")
	}
	file := filepath.Join(t.TempDir(), "mounts.json")
	CacheMounts(file)
	t.Cleanup(func() { CacheMounts("") })

	got, err := cgroupMounts()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("cgroupMounts with an empty cache = %v, %v; want %v", got, err, want)
	}
	read := func() cachedMounts {
		t.Helper()
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("cache not written: %v", err)
		}
		var c cachedMounts
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	write := func(c cachedMounts) {
		t.Helper()
		data, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	good := read()
	if !reflect.DeepEqual(good.Hierarchies, want) || len(good.MountIDs) != len(want) {
		t.Fatalf("cache holds %+v, want the hierarchies %v with their mount ids", good, want)
	}

	// A true entry is what cgroupMounts returns.
	marked := good
	marked.Hierarchies = append([]Hierarchy(nil), good.Hierarchies...)
	marked.Hierarchies[0].Options = "marked"
	write(marked)
	if got, _ := cgroupMounts(); got[0].Options != "marked" {
		t.Fatalf("a valid cache entry was not used: %v", got)
	}

	for name, stale := range map[string]func(*cachedMounts){
		"mount namespace": func(c *cachedMounts) { c.MountNS = "mnt:[1]" },
		"memberships":     func(c *cachedMounts) { c.Memberships = append(c.Memberships, "99:name=gone") },
		"mount id":        func(c *cachedMounts) { c.MountIDs[len(c.MountIDs)-1]++ },
		"length":          func(c *cachedMounts) { c.MountIDs = c.MountIDs[1:] },
	} {
		c := marked
		c.MountIDs = append([]uint64(nil), marked.MountIDs...)
		c.Memberships = append([]string(nil), marked.Memberships...)
		stale(&c)
		write(c)
		got, err := cgroupMounts()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("stale %s: cgroupMounts = %v, %v; want mountinfo's %v", name, got, err, want)
		}
		if again := read(); !reflect.DeepEqual(again.Hierarchies, want) {
			t.Errorf("stale %s: cache not rewritten (%+v)", name, again)
		}
	}
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := cgroupMounts(); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("corrupt cache: cgroupMounts = %v, %v; want %v", got, err, want)
	}
}
