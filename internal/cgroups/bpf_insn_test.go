package cgroups

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// TestBPFInsnEncoding checks instructions against the bytes clang and
// bpftool show for them on a little-endian machine.
func TestBPFInsnEncoding(t *testing.T) {
	if bpfBigEndian() {
		t.Skip("big-endian CPU: the expected encodings are the little-endian ones clang emits")
	}
	if got := unsafe.Sizeof(bpfInsn{}); got != 8 {
		t.Fatalf("sizeof(bpfInsn) = %d, want 8", got)
	}
	for _, c := range []struct {
		name string
		ins  bpfInsn
		want []byte
	}{
		{"r2 = *(u32 *)(r1 + 4)", ldxMemW(bpfR2, bpfR1, 4), []byte{0x61, 0x12, 4, 0, 0, 0, 0, 0}},
		{"w2 &= 0xffff", and32Imm(bpfR2, 0xffff), []byte{0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0}},
		{"w3 >>= 16", rsh32Imm(bpfR3, 16), []byte{0x74, 0x03, 0, 0, 16, 0, 0, 0}},
		{"w1 = w3", mov32Reg(bpfR1, bpfR3), []byte{0xbc, 0x31, 0, 0, 0, 0, 0, 0}},
		{"r0 = -1", mov64Imm(bpfR0, -1), []byte{0xb7, 0x00, 0, 0, 0xff, 0xff, 0xff, 0xff}},
		{"if r4 != 136 goto +3", jneImm(bpfR4, 136, 3), []byte{0x55, 0x04, 3, 0, 136, 0, 0, 0}},
		{"if r1 == 0 goto +258", jeqImm(bpfR1, 0, 258), []byte{0x15, 0x01, 2, 1, 0, 0, 0, 0}},
		{"exit", exitInsn(), []byte{0x95, 0, 0, 0, 0, 0, 0, 0}},
	} {
		got := unsafe.Slice((*byte)(unsafe.Pointer(&c.ins)), unsafe.Sizeof(c.ins))
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s: encoded % x, want % x", c.name, got, c.want)
		}
	}
	if i := mov32Reg(bpfR5, bpfR3); i.dst() != bpfR5 || i.src() != bpfR3 {
		t.Errorf("mov32Reg(r5, r3): dst, src = r%d, r%d", i.dst(), i.src())
	}
}

func TestBPFAsmLabels(t *testing.T) {
	var a bpfAsm
	l1, l2 := a.newLabel(), a.newLabel()
	a.jump(jneImm(bpfR2, 1, 0), l2) // 0 -> 4
	a.jump(jeqImm(bpfR2, 2, 0), l1) // 1 -> 3
	a.add(mov64Imm(bpfR0, 0))       // 2
	a.place(l1)
	a.jump(jeqImm(bpfR3, 0, 0), l2) // 3 -> 4
	a.place(l2)
	a.add(exitInsn()) // 4
	prog, err := a.program()
	if err != nil {
		t.Fatal(err)
	}
	var offs []int16
	for _, ins := range prog {
		offs = append(offs, ins.off)
	}
	if want := []int16{3, 1, 0, 0, 0}; !slices.Equal(offs, want) {
		t.Errorf("offsets = %v, want %v", offs, want)
	}

	for name, build := range map[string]func(a *bpfAsm){
		"never placed": func(a *bpfAsm) {
			a.jump(jneImm(bpfR2, 1, 0), a.newLabel())
			a.add(exitInsn())
		},
		"placed already": func(a *bpfAsm) {
			l := a.newLabel()
			a.add(exitInsn())
			a.place(l)
			a.jump(jneImm(bpfR2, 1, 0), l)
			a.add(exitInsn())
		},
		"past the end": func(a *bpfAsm) {
			l := a.newLabel()
			a.jump(jneImm(bpfR2, 1, 0), l)
			a.add(exitInsn())
			a.place(l)
		},
		"too far": func(a *bpfAsm) {
			l := a.newLabel()
			a.jump(jneImm(bpfR2, 1, 0), l)
			for range 1 << 15 {
				a.add(mov64Imm(bpfR0, 0))
			}
			a.place(l)
			a.add(exitInsn())
		},
	} {
		var a bpfAsm
		build(&a)
		if _, err := a.program(); err == nil || !strings.Contains(err.Error(), "bpf assembler") {
			t.Errorf("%s: err = %v, want an assembler error", name, err)
		}
	}
}
