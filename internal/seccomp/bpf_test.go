//go:build linux && cgo

package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data, the input of a seccomp filter.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 0, 64)
	b = binary.NativeEndian.AppendUint32(b, uint32(d.nr))
	b = binary.NativeEndian.AppendUint32(b, d.arch)
	b = binary.NativeEndian.AppendUint64(b, d.ip)
	for _, a := range d.args {
		b = binary.NativeEndian.AppendUint64(b, a)
	}
	return b
}

// runBPF interprets a classic BPF program over d the way the kernel runs a
// seccomp filter, and returns the filter's return value. It fails the test
// on anything the kernel would refuse to run (unknown opcode, out of range
// load or jump, falling off the end).
func runBPF(t *testing.T, prog []byte, d seccompData) uint32 {
	t.Helper()
	insns := decodeInsns(prog)
	data := d.bytes()
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(insns); pc++ {
		in := insns[pc]
		src := in.K
		if in.Code&unix.BPF_X != 0 {
			src = x
		}
		jump := func(cond bool) {
			if cond {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || int(in.K)+4 > len(data) {
				t.Fatalf("bpf %d: load at %d out of seccomp_data", pc, in.K)
			}
			a = binary.NativeEndian.Uint32(data[in.K:])
		case unix.BPF_LD | unix.BPF_W | unix.BPF_LEN:
			a = uint32(len(data))
		case unix.BPF_LD | unix.BPF_IMM:
			a = in.K
		case unix.BPF_LDX | unix.BPF_IMM:
			x = in.K
		case unix.BPF_LD | unix.BPF_MEM:
			a = mem[in.K]
		case unix.BPF_LDX | unix.BPF_MEM:
			x = mem[in.K]
		case unix.BPF_ST:
			mem[in.K] = a
		case unix.BPF_STX:
			mem[in.K] = x
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_ALU | unix.BPF_AND | unix.BPF_X:
			a &= src
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K, unix.BPF_ALU | unix.BPF_OR | unix.BPF_X:
			a |= src
		case unix.BPF_ALU | unix.BPF_ADD | unix.BPF_K, unix.BPF_ALU | unix.BPF_ADD | unix.BPF_X:
			a += src
		case unix.BPF_ALU | unix.BPF_SUB | unix.BPF_K, unix.BPF_ALU | unix.BPF_SUB | unix.BPF_X:
			a -= src
		case unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K:
			a >>= src
		case unix.BPF_ALU | unix.BPF_LSH | unix.BPF_K:
			a <<= src
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_X:
			jump(a == src)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_X:
			jump(a > src)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_X:
			jump(a >= src)
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_X:
			jump(a&src != 0)
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		case unix.BPF_RET | unix.BPF_A:
			return a
		default:
			t.Fatalf("bpf %d: unsupported opcode %#x", pc, in.Code)
		}
		if pc+1 > len(insns) {
			t.Fatalf("bpf %d: jump past the end of the program", pc)
		}
	}
	t.Fatalf("bpf: program ended without a return")
	return 0
}

func TestRunBPF(t *testing.T) {
	// ld [0]; jeq #7, 0, 1; ret #1; ld [16]; jset #4, 0, 1; ret #2; ret #3
	prog := encodeInsns([]unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 7, Jt: 0, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: 1},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 16},
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: 4, Jt: 0, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: 2},
		{Code: unix.BPF_RET | unix.BPF_K, K: 3},
	})
	for _, tc := range []struct {
		d    seccompData
		want uint32
	}{
		{seccompData{nr: 7}, 1},
		{seccompData{nr: 8, args: [6]uint64{4}}, 2},
		{seccompData{nr: 8, args: [6]uint64{3}}, 3},
	} {
		if got := runBPF(t, prog, tc.d); got != tc.want {
			t.Errorf("runBPF(%+v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}
