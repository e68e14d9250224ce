package shim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// trimAfter is how long the shim waits after its last call before it
// trims its resident pages: the calls that follow a start (state, attach,
// wait) come first, and would fault the pages straight back in.
const trimAfter = time.Second

// trimResident drops the page-table entries of the shim's own read-only
// file mappings (its text and read-only data): a shim spends nearly all its
// life idle, and a Go binary's pages, faulted in at start (with the
// kernel's fault-around), would otherwise count in every shim's RSS.
// The pages stay in the page cache, shared by all shims; what runs later
// faults back in what it uses. Writable mappings are never touched
// (MADV_DONTNEED would discard their changes).
func trimResident() {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	// The binary is told by device and inode, not by path: once it is
	// replaced on disk (an upgrade while containers run), its path in
	// the maps reads "... (deleted)".
	var exe unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &exe); err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1][1] == 'w' || !sameFile(fields[3], fields[4], &exe) {
			continue
		}
		start, end, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		lo, err1 := strconv.ParseUint(start, 16, 64)
		hi, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || hi <= lo {
			continue
		}
		unix.Syscall(unix.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), unix.MADV_DONTNEED)
	}
}

// sameFile reports whether the device ("fe:00", hexadecimal major and
// minor) and inode of a /proc/self/maps line are st's.
func sameFile(dev, ino string, st *unix.Stat_t) bool {
	maj, min, ok := strings.Cut(dev, ":")
	if !ok {
		return false
	}
	ma, err1 := strconv.ParseUint(maj, 16, 32)
	mi, err2 := strconv.ParseUint(min, 16, 32)
	n, err3 := strconv.ParseUint(ino, 10, 64)
	return err1 == nil && err2 == nil && err3 == nil &&
		unix.Mkdev(uint32(ma), uint32(mi)) == uint64(st.Dev) && n == st.Ino
}
