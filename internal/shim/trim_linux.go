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
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || fields[1][1] == 'w' {
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
