package cgroups

import (
	"math"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setPids writes pids.max, the same file on v1 and v2. A negative limit is
// "max"; 0 is a real limit (no new task may be created), as the OCI spec
// says.
func setPids(dir string, p *specs.LinuxPids) error {
	if p == nil || p.Limit == nil {
		return nil
	}
	return writeFile(dir, "pids.max", limitString(*p.Limit))
}

// pidsStats reads pids.current and pids.max (no limit is reported as 0).
func pidsStats(dir string, st *Stats) error {
	cur, err := readUint(dir, "pids.current")
	if err != nil {
		return err
	}
	limit, err := readUint(dir, "pids.max")
	if err != nil {
		return err
	}
	if limit == math.MaxUint64 {
		limit = 0
	}
	st.Pids = PidsStats{Current: cur, Limit: limit}
	return nil
}
