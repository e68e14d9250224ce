package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/errdefs"
)

// Device access bits. They are the BPF_DEVCG_ACC_* values, so a program can
// compare them with the access field of its context directly.
const (
	accMknod uint8 = 1
	accRead  uint8 = 2
	accWrite uint8 = 4
	accAll         = accMknod | accRead | accWrite
)

// wildcard is the major or minor number that matches any device.
const wildcard int64 = -1

// deviceRule is one exception of a device allow or deny list.
type deviceRule struct {
	typ    byte  // 'b' or 'c'
	major  int64 // wildcard for any
	minor  int64 // wildcard for any
	access uint8
}

// String formats r as the devices cgroup files take it: "c 1:3 rwm".
func (r deviceRule) String() string {
	num := func(n int64) string {
		if n == wildcard {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, num(r.major), num(r.minor), accessString(r.access))
}

func accessString(a uint8) string {
	var b strings.Builder
	if a&accRead != 0 {
		b.WriteByte('r')
	}
	if a&accWrite != 0 {
		b.WriteByte('w')
	}
	if a&accMknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

func parseAccess(s string) (uint8, error) {
	if s == "" {
		return accAll, nil
	}
	var a uint8
	for _, c := range s {
		switch c {
		case 'r':
			a |= accRead
		case 'w':
			a |= accWrite
		case 'm':
			a |= accMknod
		default:
			return 0, fmt.Errorf("device access %q: unknown letter %q: %w", s, c, errdefs.ErrInvalidArgument)
		}
	}
	return a, nil
}

// covers reports whether r matches every device o matches, ignoring access.
func (r deviceRule) covers(o deviceRule) bool {
	return r.typ == o.typ &&
		(r.major == wildcard || r.major == o.major) &&
		(r.minor == wildcard || r.minor == o.minor)
}

// intersects reports whether some device is matched by both r and o,
// ignoring access.
func (r deviceRule) intersects(o deviceRule) bool {
	return r.typ == o.typ &&
		(r.major == wildcard || o.major == wildcard || r.major == o.major) &&
		(r.minor == wildcard || o.minor == wildcard || r.minor == o.minor)
}

func (r deviceRule) sameDevices(o deviceRule) bool {
	return r.typ == o.typ && r.major == o.major && r.minor == o.minor
}

// deviceRules is the effective state of a device list: a default verdict
// and exceptions to it, the model of a v1 devices cgroup. With defaultAllow
// false the exceptions are an allow list, otherwise a deny list.
type deviceRules struct {
	defaultAllow bool
	exceptions   []deviceRule
}

// computeDeviceRules applies the OCI device rules in order to a deny-all
// starting state, as v1's devices.allow/devices.deny would (type "a"
// resets the whole list), and returns the result. Rules the model cannot
// express, such as denying one device inside an allowed wildcard, are
// rejected rather than silently widened.
func computeDeviceRules(list []specs.LinuxDeviceCgroup) (*deviceRules, error) {
	s := &deviceRules{}
	for i, d := range list {
		if err := s.apply(d); err != nil {
			return nil, fmt.Errorf("device rule %d: %w", i, err)
		}
	}
	return s, nil
}

func parseSpecNumber(p *int64, what string) (int64, error) {
	if p == nil || *p == wildcard {
		return wildcard, nil
	}
	if *p < 0 || *p > 1<<31-1 {
		return 0, fmt.Errorf("device %s number %d out of range: %w", what, *p, errdefs.ErrInvalidArgument)
	}
	return *p, nil
}

func (s *deviceRules) apply(d specs.LinuxDeviceCgroup) error {
	access, err := parseAccess(d.Access)
	if err != nil {
		return err
	}
	var typ byte
	switch d.Type {
	case "", "a":
		// "a" replaces the whole list, whatever the numbers and access.
		s.defaultAllow = d.Allow
		s.exceptions = nil
		return nil
	case "b", "c":
		typ = d.Type[0]
	default:
		return fmt.Errorf("device type %q: %w", d.Type, errdefs.ErrInvalidArgument)
	}
	major, err := parseSpecNumber(d.Major, "major")
	if err != nil {
		return err
	}
	minor, err := parseSpecNumber(d.Minor, "minor")
	if err != nil {
		return err
	}
	r := deviceRule{typ: typ, major: major, minor: minor, access: access}
	if d.Allow == s.defaultAllow {
		return s.remove(r)
	}
	s.add(r)
	return nil
}

// add records r as an exception, merging access with an exception for the
// same devices as the kernel does.
func (s *deviceRules) add(r deviceRule) {
	for i := range s.exceptions {
		if s.exceptions[i].sameDevices(r) {
			s.exceptions[i].access |= r.access
			return
		}
	}
	s.exceptions = append(s.exceptions, r)
}

// remove takes r's access away from the exceptions it covers. An
// exception that r only partly covers (a wildcard r would punch a hole in)
// cannot be expressed and is an error.
func (s *deviceRules) remove(r deviceRule) error {
	kept := s.exceptions[:0]
	for _, ex := range s.exceptions {
		if !ex.intersects(r) || ex.access&r.access == 0 {
			kept = append(kept, ex)
			continue
		}
		if !r.covers(ex) {
			if s.defaultAllow {
				return fmt.Errorf("cannot allow %q inside denied %q: %w", r.String(), ex.String(), errdefs.ErrInvalidArgument)
			}
			return fmt.Errorf("cannot deny %q inside allowed %q: %w", r.String(), ex.String(), errdefs.ErrInvalidArgument)
		}
		ex.access &^= r.access
		if ex.access != 0 {
			kept = append(kept, ex)
		}
	}
	s.exceptions = kept
	return nil
}

// allows reports the verdict for an access to a device with the kernel's
// v1 semantics: an allow exception must grant every requested access bit
// by itself; a deny exception denies if it shares any bit with the request.
func (s *deviceRules) allows(typ byte, major, minor int64, access uint8) bool {
	for _, ex := range s.exceptions {
		if !ex.covers(deviceRule{typ: typ, major: major, minor: minor}) {
			continue
		}
		if s.defaultAllow {
			if ex.access&access != 0 {
				return false
			}
		} else if access&^ex.access == 0 {
			return true
		}
	}
	return s.defaultAllow
}

// parseDevicesList reads a v1 devices.list. ok is false when the list is
// in allow-all mode, whose deny exceptions the kernel does not show.
func parseDevicesList(data string) (rules []deviceRule, ok bool, err error) {
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, false, fmt.Errorf("devices.list line %q: unexpected format", line)
		}
		if f[0] == "a" {
			return nil, false, nil
		}
		if f[0] != "b" && f[0] != "c" {
			return nil, false, fmt.Errorf("devices.list line %q: unknown type", line)
		}
		maj, min, found := strings.Cut(f[1], ":")
		if !found {
			return nil, false, fmt.Errorf("devices.list line %q: no major:minor", line)
		}
		r := deviceRule{typ: f[0][0]}
		if r.major, err = parseDevNum(maj); err != nil {
			return nil, false, fmt.Errorf("devices.list line %q: %w", line, err)
		}
		if r.minor, err = parseDevNum(min); err != nil {
			return nil, false, fmt.Errorf("devices.list line %q: %w", line, err)
		}
		if r.access, err = parseAccess(f[2]); err != nil {
			return nil, false, fmt.Errorf("devices.list line %q: %w", line, err)
		}
		rules = append(rules, r)
	}
	return rules, true, nil
}

func parseDevNum(s string) (int64, error) {
	if s == "*" {
		return wildcard, nil
	}
	return strconv.ParseInt(s, 10, 64)
}
