package oci

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
)

// ownBoundingSet reads CapBnd of /proc/self/status.
func ownBoundingSet(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("CapBnd %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return 0
}

// TestCapabilitiesFollowBoundingSet checks that what --privileged grants
// is exactly the capabilities the kernel supports and this process's
// bounding set holds (on this machine, CAP_SYS_RESOURCE is missing from
// it), and that --cap-add refuses the others with Docker's message.
func TestCapabilitiesFollowBoundingSet(t *testing.T) {
	bnd := ownBoundingSet(t)
	supported, err := capability.ListSupported()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(supported)
	var want, missing []string
	for _, c := range supported {
		if bnd&(1<<uint(c)) != 0 {
			want = append(want, capName(c.String()))
		} else {
			missing = append(missing, capName(c.String()))
		}
	}
	all := AllCapabilities()
	if !slices.Equal(all, want) || !slices.Contains(all, "CAP_SYS_ADMIN") {
		t.Errorf("AllCapabilities() = %q\nwant (bounding set %x) %q", all, bnd, want)
	}
	if s, err := capabilitySet(nil, nil, true); err != nil || !slices.Equal(s, want) {
		t.Errorf("privileged set = %q, %v", s, err)
	}
	if s, err := capabilitySet([]string{"ALL"}, []string{"CAP_NET_RAW"}, false); err != nil || len(s) != len(want)-1 || slices.Contains(s, "CAP_NET_RAW") {
		t.Errorf("--cap-add ALL --cap-drop NET_RAW = %q, %v", s, err)
	}
	t.Logf("capabilities outside the bounding set: %q", missing)
	for _, c := range missing {
		_, err := capabilitySet([]string{c}, nil, false)
		if err == nil || !strings.Contains(err.Error(), "not available in the current environment") {
			t.Errorf("--cap-add %s: %v", c, err)
		}
	}
}
