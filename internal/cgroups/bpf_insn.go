package cgroups

import (
	"fmt"
	"math"
	"unsafe"
)

// Opcode parts of the eBPF instruction set (uapi linux/bpf_common.h and
// linux/bpf.h), only those the device filter uses. An opcode is class |
// size | mode for loads, class | op | source for ALU and jumps.
const (
	bpfClassLDX   = 0x01 // BPF_LDX: load from memory into a register
	bpfClassALU   = 0x04 // BPF_ALU: 32-bit arithmetic, zero-extends the result
	bpfClassJMP   = 0x05 // BPF_JMP: 64-bit compares and exit
	bpfClassALU64 = 0x07 // BPF_ALU64: 64-bit arithmetic

	bpfSizeW   = 0x00 // BPF_W: 32-bit access
	bpfModeMEM = 0x60 // BPF_MEM: load from [src + off]

	bpfSrcK = 0x00 // BPF_K: the operand is imm
	bpfSrcX = 0x08 // BPF_X: the operand is the src register

	bpfOpAND = 0x50 // BPF_AND
	bpfOpRSH = 0x70 // BPF_RSH
	bpfOpMOV = 0xb0 // BPF_MOV

	bpfJmpJEQ  = 0x10 // BPF_JEQ: jump if dst == imm
	bpfJmpJNE  = 0x50 // BPF_JNE: jump if dst != imm
	bpfJmpEXIT = 0x90 // BPF_EXIT: return r0
)

// bpfReg is an eBPF register number: r0 holds the return value, r1 the
// context pointer on entry.
type bpfReg uint8

// The registers the device filter uses.
const (
	bpfR0 bpfReg = iota
	bpfR1
	bpfR2
	bpfR3
	bpfR4
	bpfR5
)

// bpfInsn is one eBPF instruction with the layout of the kernel's struct
// bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; }, so a
// []bpfInsn can be handed to BPF_PROG_LOAD as it is.
type bpfInsn struct {
	code uint8
	regs uint8 // dst_reg and src_reg, see bpfRegs
	off  int16
	imm  int32
}

// bpfRegs packs dst and src into the register byte of struct bpf_insn. C
// lays the bit-fields dst_reg:4, src_reg:4 out from the low nibble on
// little-endian targets and from the high nibble on big-endian ones.
func bpfRegs(dst, src bpfReg) uint8 {
	if bpfBigEndian() {
		return uint8(dst)<<4 | uint8(src)&0xf
	}
	return uint8(src)<<4 | uint8(dst)&0xf
}

// dst is the instruction's destination register.
func (i bpfInsn) dst() bpfReg {
	if bpfBigEndian() {
		return bpfReg(i.regs >> 4)
	}
	return bpfReg(i.regs & 0xf)
}

// src is the instruction's source register.
func (i bpfInsn) src() bpfReg {
	if bpfBigEndian() {
		return bpfReg(i.regs & 0xf)
	}
	return bpfReg(i.regs >> 4)
}

// bpfBigEndian reports whether this machine stores the most significant
// byte first. It is computed per call, which the compiler folds, rather
// than at package initialisation.
func bpfBigEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}

// ldxMemW loads the 32-bit word at [src + off] into dst, zero-extended.
func ldxMemW(dst, src bpfReg, off int16) bpfInsn {
	return bpfInsn{code: bpfClassLDX | bpfSizeW | bpfModeMEM, regs: bpfRegs(dst, src), off: off}
}

// and32Imm sets the low 32 bits of dst to dst & imm and clears the high ones.
func and32Imm(dst bpfReg, imm int32) bpfInsn {
	return bpfInsn{code: bpfClassALU | bpfOpAND | bpfSrcK, regs: bpfRegs(dst, 0), imm: imm}
}

// rsh32Imm shifts the low 32 bits of dst right by imm, clearing the high ones.
func rsh32Imm(dst bpfReg, imm int32) bpfInsn {
	return bpfInsn{code: bpfClassALU | bpfOpRSH | bpfSrcK, regs: bpfRegs(dst, 0), imm: imm}
}

// mov32Reg copies the low 32 bits of src into dst, clearing its high ones.
func mov32Reg(dst, src bpfReg) bpfInsn {
	return bpfInsn{code: bpfClassALU | bpfOpMOV | bpfSrcX, regs: bpfRegs(dst, src)}
}

// mov64Imm sets dst to imm, sign-extended to 64 bits.
func mov64Imm(dst bpfReg, imm int32) bpfInsn {
	return bpfInsn{code: bpfClassALU64 | bpfOpMOV | bpfSrcK, regs: bpfRegs(dst, 0), imm: imm}
}

// jneImm jumps off instructions past the next one if dst != imm (imm
// sign-extended to 64 bits). bpfAsm.jump fills off in from a label.
func jneImm(dst bpfReg, imm int32, off int16) bpfInsn {
	return bpfInsn{code: bpfClassJMP | bpfJmpJNE | bpfSrcK, regs: bpfRegs(dst, 0), off: off, imm: imm}
}

// jeqImm jumps off instructions past the next one if dst == imm (imm
// sign-extended to 64 bits). bpfAsm.jump fills off in from a label.
func jeqImm(dst bpfReg, imm int32, off int16) bpfInsn {
	return bpfInsn{code: bpfClassJMP | bpfJmpJEQ | bpfSrcK, regs: bpfRegs(dst, 0), off: off, imm: imm}
}

// exitInsn ends the program, returning r0.
func exitInsn() bpfInsn {
	return bpfInsn{code: bpfClassJMP | bpfJmpEXIT}
}

// bpfLabel names a position in a program being assembled, so that jumps
// can target it before it is known.
type bpfLabel int

// bpfJump is a jump waiting for its label to be placed.
type bpfJump struct {
	at int      // index of the jump instruction
	to bpfLabel // its target
}

// bpfAsm assembles a program with forward jumps only: a jump names a label
// from newLabel, and its offset is filled in when place puts the label at
// the next instruction. Placing a label before a jump to it is an error,
// so the programs it makes have no loops. The zero value is ready to use.
type bpfAsm struct {
	insns  []bpfInsn
	placed []bool    // per label, whether place has been called
	jumps  []bpfJump // jumps whose label is not placed yet
	// targetEnd is one past the highest instruction index a jump targets.
	targetEnd int
	err       error // the first error, reported by program
}

// newLabel returns a fresh label to jump to and place later.
func (a *bpfAsm) newLabel() bpfLabel {
	a.placed = append(a.placed, false)
	return bpfLabel(len(a.placed) - 1)
}

// add appends instructions that are not jumps to labels.
func (a *bpfAsm) add(insns ...bpfInsn) {
	a.insns = append(a.insns, insns...)
}

// jump appends j, a conditional jump from jneImm or jeqImm, whose offset
// will point at label to.
func (a *bpfAsm) jump(j bpfInsn, to bpfLabel) {
	if a.placed[to] && a.err == nil {
		a.err = fmt.Errorf("bpf assembler: jump at instruction %d to label %d, which is placed already: only forward jumps are supported", len(a.insns), to)
	}
	a.jumps = append(a.jumps, bpfJump{at: len(a.insns), to: to})
	a.insns = append(a.insns, j)
}

// place puts label l at the next instruction to be added and resolves the
// jumps to it.
func (a *bpfAsm) place(l bpfLabel) {
	if a.placed[l] && a.err == nil {
		a.err = fmt.Errorf("bpf assembler: label %d placed twice", l)
	}
	a.placed[l] = true
	pending := a.jumps[:0]
	for _, j := range a.jumps {
		if j.to != l {
			pending = append(pending, j)
			continue
		}
		// Offsets count from the instruction after the jump.
		off := len(a.insns) - j.at - 1
		if off > math.MaxInt16 && a.err == nil {
			a.err = fmt.Errorf("bpf assembler: jump at instruction %d to label %d spans %d instructions, more than a jump offset holds", j.at, l, off)
		}
		a.insns[j.at].off = int16(off)
		a.targetEnd = len(a.insns) + 1
	}
	a.jumps = pending
}

// program returns the assembled instructions, or the first error: a jump
// to a label never placed, or to one placed after the last instruction.
func (a *bpfAsm) program() ([]bpfInsn, error) {
	if a.err != nil {
		return nil, a.err
	}
	if len(a.jumps) > 0 {
		j := a.jumps[0]
		return nil, fmt.Errorf("bpf assembler: jump at instruction %d to label %d, which is never placed", j.at, j.to)
	}
	if a.targetEnd > len(a.insns) {
		return nil, fmt.Errorf("bpf assembler: jump to instruction %d, past the end of the program (%d instructions)", a.targetEnd-1, len(a.insns))
	}
	return a.insns, nil
}
