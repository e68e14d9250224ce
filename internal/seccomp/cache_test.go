//go:build linux && cgo

package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/errdefs"
)

func errnoProfile(names ...string) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActErrno}},
	}
}

// cacheEntries returns the names of dir's entries.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCompileCachedStoresAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c := errnoProfile("getppid")
	p1, err := CompileCached(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := mustCompile(t, c)
	if !bytes.Equal(p1.Filter, want.Filter) || p1.Flags != want.Flags {
		t.Fatalf("cached compile differs from Compile")
	}
	names := cacheEntries(t, dir)
	if len(names) != 1 || !strings.HasSuffix(names[0], ".json") {
		t.Fatalf("cache holds %v, want one entry", names)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode: %v %v", fi.Mode(), err)
	}
	// The second call reads the entry: replace it with another program and
	// see that one come back.
	other := mustCompile(t, errnoProfile("getpgrp"))
	data, _ := json.Marshal(other)
	if err := os.WriteFile(filepath.Join(dir, names[0]), data, 0o600); err != nil {
		t.Fatal(err)
	}
	p2, err := CompileCached(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p2.Filter, other.Filter) {
		t.Errorf("the second compile did not come from the cache")
	}
	// Another profile is another entry.
	if _, err := CompileCached(errnoProfile("getpgrp"), dir); err != nil {
		t.Fatal(err)
	}
	if n := len(cacheEntries(t, dir)); n != 2 {
		t.Errorf("two profiles, %d entries", n)
	}
}

func TestCompileCachedCorruptEntryRecompiled(t *testing.T) {
	dir := t.TempDir()
	c := errnoProfile("getppid")
	if _, err := CompileCached(c, dir); err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(dir, cacheEntries(t, dir)[0])
	for _, bad := range []string{"", "{", `{"filter":"AAAA"}`, `{"filter":null}`} {
		if err := os.WriteFile(entry, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := CompileCached(c, dir)
		if err != nil {
			t.Fatalf("entry %q: %v", bad, err)
		}
		if got := eval(t, p, "getppid"); got != retErrno|1 {
			t.Errorf("entry %q: getppid gives %#x", bad, got)
		}
		if data, _ := os.ReadFile(entry); string(data) == bad {
			t.Errorf("entry %q was not replaced", bad)
		}
	}
}

func TestCompileCachedErrorsNotCached(t *testing.T) {
	dir := t.TempDir()
	c := &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
	for i := 0; i < 2; i++ {
		if _, err := CompileCached(c, dir); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("bad profile: %v", err)
		}
	}
	if names := cacheEntries(t, dir); len(names) != 0 {
		t.Errorf("an error was cached: %v", names)
	}
	if p, err := CompileCached(nil, dir); p != nil || err != nil {
		t.Errorf("nil profile: %v %v", p, err)
	}
}

func TestCompileCachedUnwritableDir(t *testing.T) {
	// A file where the cache dir should be: compiling still works.
	dir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := CompileCached(errnoProfile("getppid"), dir)
	if err != nil || p == nil {
		t.Fatalf("%v %v", p, err)
	}
}

func TestCompileCachedBounded(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < maxCacheEntries+3; i++ {
		c := errnoProfile("getppid")
		c.DefaultErrnoRet = nil
		c.Syscalls[0].ErrnoRet = uintp(uint(i + 1))
		if _, err := CompileCached(c, dir); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(cacheEntries(t, dir)); n > maxCacheEntries {
		t.Errorf("%d entries, bound %d", n, maxCacheEntries)
	}
}
