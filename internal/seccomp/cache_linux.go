package seccomp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cacheFormat names the layout of a cached program; a change of Program or
// of Compile's output bumps it.
const cacheFormat = "berth-seccomp-cache/1"

// maxCacheEntries bounds the cache: when a new entry would pass it, the
// others are dropped (profiles are few; a host cycling through more is
// served correctly, only slower).
const maxCacheEntries = 64

// CompileCached is Compile with a cache of compiled programs in dir (made
// 0700 if missing). Compiling Docker's default profile with libseccomp
// takes about 17 ms, and every container of a daemon uses the same few
// profiles, so the program is kept under a key made of the configuration,
// the kernel (Compile probes it for flags) and this very binary (its
// device, inode, size and mtime: an upgraded runtime never reads an older
// one's entries). The cache is an optimisation only: an entry that cannot
// be read or decoded is compiled again and replaced, and a cache that
// cannot be written is reported nowhere. Errors are Compile's and are
// never cached.
func CompileCached(c *specs.LinuxSeccomp, dir string) (*Program, error) {
	if c == nil || (c.DefaultAction == "" && len(c.Syscalls) == 0) {
		return nil, nil
	}
	key, err := cacheKey(c)
	if err != nil {
		return Compile(c)
	}
	path := filepath.Join(dir, key+".json")
	if data, err := os.ReadFile(path); err == nil {
		var p Program
		if json.Unmarshal(data, &p) == nil && len(p.Filter) > 0 && len(p.Filter)%sockFilterSize == 0 {
			return &p, nil
		}
	}
	p, err := Compile(c)
	if err != nil || p == nil {
		return p, err
	}
	storeCached(dir, path, p)
	return p, nil
}

// cacheKey hashes what a compiled program depends on.
func cacheKey(c *specs.LinuxSeccomp) (string, error) {
	conf, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "", err
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s %s %s\n%d %d %d %d.%d\n", cacheFormat,
		unix.ByteSliceToString(uts.Release[:]), unix.ByteSliceToString(uts.Version[:]), unix.ByteSliceToString(uts.Machine[:]),
		st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	h.Write(conf)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// storeCached writes p to path atomically (a temporary file renamed into
// place), so that concurrent runtimes read a whole entry or none.
func storeCached(dir, path string, p *Program) {
	data, err := json.Marshal(p)
	if err != nil {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) >= maxCacheEntries {
		for _, e := range entries {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	tmp, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		os.Remove(tmp.Name())
	}
}
