package shim

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// exeReadOnlyRSS sums the resident kB of this process's read-only
// mappings of its own executable, from /proc/self/smaps.
func exeReadOnlyRSS(t *testing.T) int {
	t.Helper()
	var exe unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &exe); err != nil {
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
			inExe = len(fields) >= 6 && sameFile(fields[3], fields[4], &exe) && fields[1][1] != 'w'
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

// deleteSelfEnv, set, has TestTrimResident remove its own executable
// first, as an upgrade that replaces the binary under a running shim does.
const deleteSelfEnv = "BERTH_TEST_TRIM_DELETE_SELF"

func TestTrimResident(t *testing.T) {
	if os.Getenv(deleteSelfEnv) != "" {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(self); err != nil {
			t.Fatal(err)
		}
		if target, _ := os.Readlink("/proc/self/exe"); !strings.HasSuffix(target, " (deleted)") {
			t.Fatalf("/proc/self/exe is %q after removing the binary", target)
		}
	}
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

// TestTrimResidentDeletedBinary runs TestTrimResident in a copy of this
// test binary that removes itself first: the trim still finds its pages.
func TestTrimResidentDeletedBinary(t *testing.T) {
	if os.Getenv(deleteSelfEnv) != "" {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "shim.test")
	if err := os.WriteFile(cp, data, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cp, "-test.run", "^TestTrimResident$", "-test.v")
	cmd.Env = append(os.Environ(), deleteSelfEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestTrimResident") {
		t.Errorf("TestTrimResident with its binary removed: %v\n%s", err, out)
	}
}
