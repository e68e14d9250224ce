package host

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Proc is a process of the host.
type Proc struct {
	Pid  int
	Argv []string
}

// Processes lists the host's processes with their command lines (kernel
// threads and processes that exit meanwhile are left out).
func Processes() ([]Proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(raw) == 0 {
			continue
		}
		out = append(out, Proc{Pid: pid, Argv: strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")})
	}
	return out, nil
}

// PidsOf returns the pids of the processes whose command line match says
// are wanted.
func PidsOf(match func(argv []string) bool) ([]int, error) {
	ps, err := Processes()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range ps {
		if match(p.Argv) {
			pids = append(pids, p.Pid)
		}
	}
	return pids, nil
}

// ArgsUnder says whether one of argv's arguments is a path under dir (or
// names one after "=").
func ArgsUnder(argv []string, dir string) bool {
	for _, a := range argv[1:] {
		if _, v, ok := strings.Cut(a, "="); ok {
			a = v
		}
		if strings.HasPrefix(a, dir+"/") {
			return true
		}
	}
	return false
}
