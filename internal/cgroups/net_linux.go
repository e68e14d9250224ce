package cgroups

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setNetClsV1 writes the v1 net_cls class id.
func setNetClsV1(dir string, n *specs.LinuxNetwork) error {
	if n == nil || n.ClassID == nil {
		return nil
	}
	return writeFile(dir, "net_cls.classid", strconv.FormatUint(uint64(*n.ClassID), 10))
}

// setNetPrioV1 writes one v1 net_prio.ifpriomap entry per interface.
func setNetPrioV1(dir string, n *specs.LinuxNetwork) error {
	if n == nil {
		return nil
	}
	for _, p := range n.Priorities {
		if err := writeFile(dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
			return err
		}
	}
	return nil
}
