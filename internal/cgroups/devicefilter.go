package cgroups

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
)

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
func deviceFilterProgram(rules *deviceRules) (asm.Instructions, error) {
	var defaultVerdict, exceptionVerdict int32
	if rules.defaultAllow {
		defaultVerdict = 1
	} else {
		exceptionVerdict = 1
	}
	insts := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word), // r2 = device type
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word), // r3 = requested access
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word), // r4 = major
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word), // r5 = minor
	}
	label := func(i int) string {
		if i == len(rules.exceptions) {
			return "default"
		}
		return fmt.Sprintf("rule%d", i)
	}
	for i, ex := range rules.exceptions {
		next := label(i + 1)
		var block asm.Instructions
		switch ex.typ {
		case 'b':
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevBlock, next))
		case 'c':
			block = append(block, asm.JNE.Imm(asm.R2, bpfDevChar, next))
		default:
			return nil, fmt.Errorf("device rule %s: cannot compile type %q", ex, ex.typ)
		}
		if ex.major != wildcard {
			block = append(block, asm.JNE.Imm(asm.R4, int32(ex.major), next))
		}
		if ex.minor != wildcard {
			block = append(block, asm.JNE.Imm(asm.R5, int32(ex.minor), next))
		}
		if ex.access != accAll {
			block = append(block, asm.Mov.Reg32(asm.R1, asm.R3))
			if rules.defaultAllow {
				// A deny exception applies if it shares a bit with the request.
				block = append(block,
					asm.And.Imm32(asm.R1, int32(ex.access)),
					asm.JEq.Imm(asm.R1, 0, next))
			} else {
				// An allow exception applies if it grants every requested bit.
				block = append(block,
					asm.And.Imm32(asm.R1, int32(accAll&^ex.access)),
					asm.JNE.Imm(asm.R1, 0, next))
			}
		}
		block = append(block, asm.Mov.Imm(asm.R0, exceptionVerdict), asm.Return())
		block[0] = block[0].WithSymbol(label(i))
		insts = append(insts, block...)
	}
	insts = append(insts,
		asm.Mov.Imm(asm.R0, defaultVerdict).WithSymbol("default"),
		asm.Return())
	return insts, nil
}
