package nsinit

import "github.com/berth-project/berth/internal/mountopt"

// parsedMount is a spec mount's options split into what mount(2) takes.
type parsedMount struct {
	flags       uintptr
	propagation []uintptr
	data        string
	// recursiveRO is "rro": read-only applied to every submount.
	recursiveRO bool
	// copyUp is "tmpcopyup": a tmpfs starts with a copy of what it covers.
	copyUp bool
}

// parseMountOptions splits OCI mount options into flags, propagation changes
// and the filesystem-specific data string.
func parseMountOptions(options []string) parsedMount {
	var pm parsedMount
	rest := make([]string, 0, len(options))
	for _, o := range options {
		switch o {
		case "rro":
			pm.recursiveRO = true
		case "tmpcopyup":
			pm.copyUp = true
		case "rrw":
		default:
			rest = append(rest, o)
		}
	}
	p := mountopt.Parse(rest)
	pm.flags, pm.propagation, pm.data = p.Flags, p.Propagation, p.Data
	return pm
}

// PropagationFlags maps a rootfsPropagation value to mount flags; ok is
// false for an unknown value.
func PropagationFlags(s string) (uintptr, bool) { return mountopt.Propagation(s) }

// MountOptionNames lists every mount option word init understands.
func MountOptionNames() map[string]bool {
	out := map[string]bool{"rro": true, "rrw": true, "tmpcopyup": true}
	for _, w := range mountopt.Words() {
		out[w] = true
	}
	return out
}
