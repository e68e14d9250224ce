package cgroups

import (
	"fmt"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/errdefs"
)

func i64(v int64) *int64 { return &v }

func dev(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major != wildcard {
		d.Major = i64(major)
	}
	if minor != wildcard {
		d.Minor = i64(minor)
	}
	return d
}

// dockerDefault is the device list Docker and containerd generate.
var dockerDefault = []specs.LinuxDeviceCgroup{
	{Allow: false, Access: "rwm"},
	dev(true, "c", wildcard, wildcard, "m"),
	dev(true, "b", wildcard, wildcard, "m"),
	dev(true, "c", 1, 3, "rwm"),
	dev(true, "c", 1, 5, "rwm"),
	dev(true, "c", 1, 7, "rwm"),
	dev(true, "c", 5, 0, "rwm"),
	dev(true, "c", 136, wildcard, "rwm"),
	dev(true, "c", 10, 200, "rwm"),
}

type access struct {
	typ          byte
	major, minor int64
	acc          uint8
	want         bool
}

func TestComputeDeviceRules(t *testing.T) {
	for _, c := range []struct {
		name        string
		rules       []specs.LinuxDeviceCgroup
		wantDefault bool
		wantExc     []string
		checks      []access
	}{
		{
			name:    "docker default",
			rules:   dockerDefault,
			wantExc: []string{"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 136:* rwm", "c 10:200 rwm"},
			checks: []access{
				{'c', 1, 3, accRead | accWrite, true},
				{'c', 1, 9, accRead, false},   // urandom not listed
				{'c', 1, 9, accMknod, true},   // but any char device may be created
				{'b', 8, 0, accRead, false},   // no block devices
				{'b', 8, 0, accMknod, true},   //
				{'c', 136, 4, accWrite, true}, // pty wildcard minor
				{'c', 137, 4, accWrite, false},
			},
		},
		{
			name:    "empty list denies everything",
			rules:   nil,
			wantExc: nil,
			checks:  []access{{'c', 1, 3, accRead, false}},
		},
		{
			name:        "allow all then deny one",
			rules:       []specs.LinuxDeviceCgroup{{Allow: true, Type: "a", Access: "rwm"}, dev(false, "c", 1, 3, "rwm")},
			wantDefault: true,
			wantExc:     []string{"c 1:3 rwm"},
			checks: []access{
				{'c', 1, 3, accRead, false},
				{'c', 1, 5, accRead, true},
				{'b', 1, 3, accRead, true},
			},
		},
		{
			name:        "deny list: partial access denies overlapping requests",
			rules:       []specs.LinuxDeviceCgroup{{Allow: true, Type: "a"}, dev(false, "c", 1, 3, "w")},
			wantDefault: true,
			wantExc:     []string{"c 1:3 w"},
			checks: []access{
				{'c', 1, 3, accRead, true},
				{'c', 1, 3, accRead | accWrite, false},
				{'c', 1, 3, accWrite, false},
			},
		},
		{
			name:    "allow list: one exception must grant every requested bit",
			rules:   []specs.LinuxDeviceCgroup{{Allow: false}, dev(true, "c", 1, 3, "r"), dev(true, "c", wildcard, wildcard, "w")},
			wantExc: []string{"c 1:3 r", "c *:* w"},
			checks: []access{
				{'c', 1, 3, accRead, true},
				{'c', 1, 3, accWrite, true},
				{'c', 1, 3, accRead | accWrite, false}, // as the kernel: no single rule grants rw
			},
		},
		{
			name:    "same device merges access",
			rules:   []specs.LinuxDeviceCgroup{{Allow: false}, dev(true, "c", 1, 3, "r"), dev(true, "c", 1, 3, "w")},
			wantExc: []string{"c 1:3 rw"},
			checks:  []access{{'c', 1, 3, accRead | accWrite, true}, {'c', 1, 3, accMknod, false}},
		},
		{
			name:    "deny removes access from exceptions it covers",
			rules:   []specs.LinuxDeviceCgroup{{Allow: false}, dev(true, "c", 1, 3, "rwm"), dev(true, "c", 1, 5, "rwm"), dev(false, "c", 1, wildcard, "w"), dev(false, "c", 1, 5, "rm")},
			wantExc: []string{"c 1:3 rm"},
			checks:  []access{{'c', 1, 3, accRead, true}, {'c', 1, 3, accWrite, false}, {'c', 1, 5, accRead, false}},
		},
		{
			name:        "a later type a resets the list",
			rules:       append(append([]specs.LinuxDeviceCgroup{}, dockerDefault...), specs.LinuxDeviceCgroup{Allow: true, Type: "a", Access: "r"}),
			wantDefault: true,
			checks:      []access{{'b', 8, 0, accWrite, true}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := computeDeviceRules(c.rules)
			if err != nil {
				t.Fatal(err)
			}
			if s.defaultAllow != c.wantDefault {
				t.Errorf("defaultAllow = %v, want %v", s.defaultAllow, c.wantDefault)
			}
			var got []string
			for _, e := range s.exceptions {
				got = append(got, e.String())
			}
			if !reflect.DeepEqual(got, c.wantExc) {
				t.Errorf("exceptions = %q, want %q", got, c.wantExc)
			}
			insts, err := deviceFilterProgram(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range c.checks {
				if got := s.allows(a.typ, a.major, a.minor, a.acc); got != a.want {
					t.Errorf("allows(%c %d:%d %s) = %v, want %v", a.typ, a.major, a.minor, accessString(a.acc), got, a.want)
				}
				if got := runDeviceFilter(t, insts, a.typ, a.major, a.minor, a.acc); got != a.want {
					t.Errorf("program(%c %d:%d %s) = %v, want %v", a.typ, a.major, a.minor, accessString(a.acc), got, a.want)
				}
			}
		})
	}
}

func TestComputeDeviceRulesInvalid(t *testing.T) {
	for name, rules := range map[string][]specs.LinuxDeviceCgroup{
		"hole in allowed wildcard": {{Allow: false}, dev(true, "c", wildcard, wildcard, "rwm"), dev(false, "c", 1, 3, "r")},
		"hole in denied wildcard":  {{Allow: true}, dev(false, "b", 8, wildcard, "w"), dev(true, "b", 8, 1, "w")},
		"crossing wildcards":       {{Allow: false}, dev(true, "c", 1, wildcard, "r"), dev(false, "c", wildcard, 3, "r")},
		"bad type":                 {dev(true, "u", 1, 3, "r")},
		"bad access":               {dev(true, "c", 1, 3, "x")},
		"negative major":           {dev(true, "c", -7, 3, "r")},
		"huge minor":               {dev(true, "c", 1, 1<<40, "r")},
	} {
		if _, err := computeDeviceRules(rules); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: err = %v, want invalid argument", name, err)
		}
	}
}

// TestDeviceFilterMatchesModel checks the compiled program against the
// rule model over a grid of devices and every access combination.
func TestDeviceFilterMatchesModel(t *testing.T) {
	lists := map[string][]specs.LinuxDeviceCgroup{
		"docker": dockerDefault,
		"deny list": {{Allow: true}, dev(false, "c", 1, 3, "rw"), dev(false, "b", wildcard, wildcard, "m"),
			dev(false, "c", 10, wildcard, "w"), dev(false, "c", wildcard, 7, "r")},
		"allow nothing": {{Allow: false}},
		"allow all":     {{Allow: true}},
	}
	for name, list := range lists {
		s, err := computeDeviceRules(list)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		insts, err := deviceFilterProgram(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, typ := range []byte{'b', 'c'} {
			for _, major := range []int64{0, 1, 5, 8, 10, 136, 4095} {
				for _, minor := range []int64{0, 1, 3, 5, 7, 200, 1 << 19} {
					for acc := uint8(1); acc <= accAll; acc++ {
						want := s.allows(typ, major, minor, acc)
						if got := runDeviceFilter(t, insts, typ, major, minor, acc); got != want {
							t.Fatalf("%s: program(%c %d:%d %s) = %v, model says %v", name, typ, major, minor, accessString(acc), got, want)
						}
					}
				}
			}
		}
	}
}

// runDeviceFilter interprets the few eBPF instructions deviceFilterProgram
// emits, as encoded for the kernel, with a bpf_cgroup_dev_ctx built from
// the arguments.
func runDeviceFilter(t *testing.T, insts []bpfInsn, typ byte, major, minor int64, acc uint8) bool {
	t.Helper()
	devType := uint32(bpfDevChar)
	if typ == 'b' {
		devType = bpfDevBlock
	}
	ctx := [3]uint32{uint32(acc)<<16 | devType, uint32(major), uint32(minor)}
	var r [11]uint64
	for pc, steps := 0, 0; pc < len(insts); steps++ {
		if steps > 10000 {
			t.Fatal("program does not terminate")
		}
		ins := insts[pc]
		if ins.dst() > 10 || ins.src() > 10 {
			t.Fatalf("instruction %d: bad register in %+v", pc, ins)
		}
		switch class := ins.code & 0x07; class {
		case bpfClassLDX:
			if ins.code != bpfClassLDX|bpfSizeW|bpfModeMEM || ins.src() != bpfR1 || ins.off%4 != 0 || ins.off < 0 || ins.off/4 >= 3 {
				t.Fatalf("instruction %d: unexpected load %+v", pc, ins)
			}
			r[ins.dst()] = uint64(ctx[ins.off/4])
		case bpfClassALU, bpfClassALU64:
			src := uint64(int64(ins.imm)) // imm is sign-extended
			if ins.code&bpfSrcX != 0 {
				src = r[ins.src()]
			}
			var v uint64
			switch ins.code & 0xf0 {
			case bpfOpMOV:
				v = src
			case bpfOpAND:
				v = r[ins.dst()] & src
			case bpfOpRSH:
				if class == bpfClassALU {
					v = uint64(uint32(r[ins.dst()]) >> src)
				} else {
					v = r[ins.dst()] >> src
				}
			default:
				t.Fatalf("instruction %d: unexpected ALU op %+v", pc, ins)
			}
			if class == bpfClassALU {
				v = uint64(uint32(v))
			}
			r[ins.dst()] = v
		case bpfClassJMP:
			if ins.code&bpfSrcX != 0 {
				t.Fatalf("instruction %d: unexpected register jump %+v", pc, ins)
			}
			var taken bool
			switch ins.code & 0xf0 {
			case bpfJmpEXIT:
				if r[0] > 1 {
					t.Fatalf("program returned %d", r[0])
				}
				return r[0] == 1
			case bpfJmpJNE:
				taken = r[ins.dst()] != uint64(int64(ins.imm))
			case bpfJmpJEQ:
				taken = r[ins.dst()] == uint64(int64(ins.imm))
			default:
				t.Fatalf("instruction %d: unexpected jump %+v", pc, ins)
			}
			if taken {
				target := pc + 1 + int(ins.off)
				if ins.off < 0 || target >= len(insts) {
					t.Fatalf("instruction %d: jump to %d, outside the program's %d instructions or backwards", pc, target, len(insts))
				}
				pc = target
				continue
			}
		default:
			t.Fatalf("instruction %d: unexpected instruction %+v", pc, ins)
		}
		pc++
	}
	t.Fatal("program fell off its end")
	return false
}

func TestParseDevicesList(t *testing.T) {
	rules, ok, err := parseDevicesList("c 1:3 rwm\nb *:* m\nc 136:* rw\n")
	if err != nil || !ok {
		t.Fatalf("parse: %v, %v", ok, err)
	}
	got := fmt.Sprint(rules)
	if want := "[c 1:3 rwm b *:* m c 136:* rw]"; got != want {
		t.Errorf("rules = %s, want %s", got, want)
	}
	if _, ok, err := parseDevicesList("a *:* rwm\n"); ok || err != nil {
		t.Errorf("allow-all list: ok = %v, err = %v; want false, nil", ok, err)
	}
	if _, _, err := parseDevicesList("c 1 rwm\n"); err == nil {
		t.Error("malformed list parsed without error")
	}
}
