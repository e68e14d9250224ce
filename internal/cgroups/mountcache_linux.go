package cgroups

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// mountCacheFile, when set by CacheMounts, keeps the host's cgroup
// hierarchies between processes.
var mountCacheFile string

// CacheMounts has this process keep the host's cgroup hierarchies in
// file, and use them from there while they still hold, instead of reading
// /proc/self/mountinfo: on a host with many containers the kernel's
// formatting of every mount line makes that read cost half a millisecond,
// and the runtime reads it on every call. Call it before anything else in
// the package. The file is only ever a shortcut: it is used when the
// mount namespace is the same, every hierarchy's mountpoint still has the
// same mount on it (the kernel's unique mount id, Linux 6.8+), and the
// process belongs to the same hierarchies (/proc/self/cgroup); otherwise
// mountinfo is read and the file written again.
func CacheMounts(file string) { mountCacheFile = file }

// cachedMounts is the content of the mount cache file.
type cachedMounts struct {
	MountNS     string      `json:"mountNS"`
	Memberships []string    `json:"memberships"`
	MountIDs    []uint64    `json:"mountIDs"`
	Hierarchies []Hierarchy `json:"hierarchies"`
}

// currentMountKeys returns what a cache entry is checked against: the
// mount namespace and the hierarchies this process is a member of.
func currentMountKeys() (ns string, memberships []string, err error) {
	if ns, err = os.Readlink("/proc/self/ns/mnt"); err != nil {
		return "", nil, err
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", nil, err
	}
	for line := range bytes.Lines(bytes.TrimSpace(data)) {
		// "id:controllers:path"; the path differs between processes.
		if f := bytes.SplitN(line, []byte(":"), 3); len(f) == 3 {
			memberships = append(memberships, string(f[0])+":"+string(f[1]))
		}
	}
	slices.Sort(memberships)
	return ns, memberships, nil
}

// mountID returns the unique id of the mount at path, or false where the
// kernel has none.
func mountID(path string) (uint64, bool) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, unix.STATX_MNT_ID_UNIQUE, &st); err != nil {
		return 0, false
	}
	return st.Mnt_id, st.Mask&unix.STATX_MNT_ID_UNIQUE != 0
}

// cachedCgroupMounts returns the hierarchies from the cache file if it is
// set, readable and still true.
func cachedCgroupMounts() ([]Hierarchy, bool) {
	if mountCacheFile == "" {
		return nil, false
	}
	data, err := os.ReadFile(mountCacheFile)
	if err != nil {
		return nil, false
	}
	var c cachedMounts
	if json.Unmarshal(data, &c) != nil || len(c.MountIDs) != len(c.Hierarchies) {
		return nil, false
	}
	ns, memberships, err := currentMountKeys()
	if err != nil || ns != c.MountNS || !slices.Equal(memberships, c.Memberships) {
		return nil, false
	}
	for i, h := range c.Hierarchies {
		if id, ok := mountID(h.Mountpoint); !ok || id != c.MountIDs[i] {
			return nil, false
		}
	}
	return c.Hierarchies, true
}

// saveCgroupMounts writes hs to the cache file, if set; a failure only
// leaves the next process to read mountinfo.
func saveCgroupMounts(hs []Hierarchy) {
	if mountCacheFile == "" {
		return
	}
	c := cachedMounts{Hierarchies: hs}
	var err error
	if c.MountNS, c.Memberships, err = currentMountKeys(); err != nil {
		return
	}
	for _, h := range hs {
		id, ok := mountID(h.Mountpoint)
		if !ok {
			return
		}
		c.MountIDs = append(c.MountIDs, id)
	}
	data, err := json.Marshal(&c)
	if err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(mountCacheFile), ".cgroup-mounts-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), mountCacheFile) != nil {
		os.Remove(tmp.Name())
	}
}
