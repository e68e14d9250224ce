package cgroups

import "fmt"

// BPF_DEVCG_DEV_* device types in the low 16 bits of the program context's
// access_type field; the access bits (accRead, ...) are in the high 16.
const (
	bpfDevBlock = 1
	bpfDevChar  = 2
)

// deviceFilterProgram compiles rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program. The context is struct bpf_cgroup_dev_ctx { u32 access_type;
// u32 major; u32 minor; }; the program returns 1 to allow, 0 to deny. The
// exceptions are tested in order, the first match decides with the
// opposite of the default verdict, and no match gets the default, so the
// program decides exactly as rules.allows does.
func deviceFilterProgram(rules *deviceRules) ([]bpfInsn, error) {
	var defaultVerdict, exceptionVerdict int32
	if rules.defaultAllow {
		defaultVerdict = 1
	} else {
		exceptionVerdict = 1
	}
	var a bpfAsm
	a.add(
		ldxMemW(bpfR2, bpfR1, 0), // r2 = device type
		and32Imm(bpfR2, 0xffff),
		ldxMemW(bpfR3, bpfR1, 0), // r3 = requested access
		rsh32Imm(bpfR3, 16),
		ldxMemW(bpfR4, bpfR1, 4), // r4 = major
		ldxMemW(bpfR5, bpfR1, 8), // r5 = minor
	)
	for _, ex := range rules.exceptions {
		// A failed test jumps past this exception's verdict, to the next
		// exception or, after the last, to the default verdict.
		next := a.newLabel()
		switch ex.typ {
		case 'b':
			a.jump(jneImm(bpfR2, bpfDevBlock, 0), next)
		case 'c':
			a.jump(jneImm(bpfR2, bpfDevChar, 0), next)
		default:
			return nil, fmt.Errorf("device rule %s: cannot compile type %q", ex, ex.typ)
		}
		if ex.major != wildcard {
			a.jump(jneImm(bpfR4, int32(ex.major), 0), next)
		}
		if ex.minor != wildcard {
			a.jump(jneImm(bpfR5, int32(ex.minor), 0), next)
		}
		if ex.access != accAll {
			a.add(mov32Reg(bpfR1, bpfR3))
			if rules.defaultAllow {
				// A deny exception applies if it shares a bit with the request.
				a.add(and32Imm(bpfR1, int32(ex.access)))
				a.jump(jeqImm(bpfR1, 0, 0), next)
			} else {
				// An allow exception applies if it grants every requested bit.
				a.add(and32Imm(bpfR1, int32(accAll&^ex.access)))
				a.jump(jneImm(bpfR1, 0, 0), next)
			}
		}
		a.add(mov64Imm(bpfR0, exceptionVerdict), exitInsn())
		a.place(next)
	}
	a.add(mov64Imm(bpfR0, defaultVerdict), exitInsn())
	prog, err := a.program()
	if err != nil {
		return nil, fmt.Errorf("compile device filter: %w", err)
	}
	return prog, nil
}
