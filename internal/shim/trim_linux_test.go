package shim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// exeReadOnlyRSS sums the resident kB of this process's read-only
// mappings of its own executable, from /proc/self/smaps.
func exeReadOnlyRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total, inExe := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			inExe = len(fields) >= 6 && fields[5] == exe && fields[1][1] != 'w'
		case inExe && fields[0] == "Rss:":
			n, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
	}
	return total
}

func TestTrimResident(t *testing.T) {
	before := exeReadOnlyRSS(t)
	trimResident()
	after := exeReadOnlyRSS(t)
	t.Logf("executable's read-only pages resident: %d kB before the trim, %d kB after", before, after)
	// Reading smaps again faults some pages back in (with the kernel's
	// fault-around, 64 KiB at a time), so the drop is not to zero.
	if before == 0 || after > before*3/4 {
		t.Errorf("resident %d kB after the trim, %d kB before: want at most three quarters", after, before)
	}
}
