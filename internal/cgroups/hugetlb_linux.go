package cgroups

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/errdefs"
)

// hugePageSizes lists the huge page sizes the kernel supports, named as
// hugetlb cgroup files name them ("2MB", "1GB").
func hugePageSizes() ([]string, error) {
	entries, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		return nil, fmt.Errorf("list huge page sizes: %w", err)
	}
	var sizes []string
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(s, "kB"), 10, 64)
		if err != nil {
			continue
		}
		sizes = append(sizes, pageSizeName(kb))
	}
	return sizes, nil
}

// setHugetlb writes the limit of each page size to file(size), and to
// rsvdFile(size) too where the kernel has reservation accounting.
func setHugetlb(dir string, limits []specs.LinuxHugepageLimit, file, rsvdFile func(string) string) error {
	if len(limits) == 0 {
		return nil
	}
	sizes, err := hugePageSizes()
	if err != nil {
		return err
	}
	for _, l := range limits {
		if !slices.Contains(sizes, l.Pagesize) {
			return fmt.Errorf("huge page size %q is not one of %v: %w", l.Pagesize, sizes, errdefs.ErrInvalidArgument)
		}
		v := strconv.FormatUint(l.Limit, 10)
		if err := writeFile(dir, file(l.Pagesize), v); err != nil {
			return err
		}
		if rsvd := rsvdFile(l.Pagesize); exists(dir, rsvd) {
			if err := writeFile(dir, rsvd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func setHugetlbV1(dir string, limits []specs.LinuxHugepageLimit) error {
	return setHugetlb(dir, limits,
		func(s string) string { return "hugetlb." + s + ".limit_in_bytes" },
		func(s string) string { return "hugetlb." + s + ".rsvd.limit_in_bytes" })
}

func setHugetlbV2(dir string, limits []specs.LinuxHugepageLimit) error {
	return setHugetlb(dir, limits,
		func(s string) string { return "hugetlb." + s + ".max" },
		func(s string) string { return "hugetlb." + s + ".rsvd.max" })
}

func hugetlbStatsV1(dir string, st *Stats) error {
	sizes, err := hugePageSizes()
	if err != nil {
		return err
	}
	for _, s := range sizes {
		var h HugetlbStats
		p := "hugetlb." + s + "."
		if h.Usage, err = readUint(dir, p+"usage_in_bytes"); err != nil {
			return err
		}
		if h.Max, err = readUint(dir, p+"max_usage_in_bytes"); err != nil {
			return err
		}
		if h.Limit, err = readUint(dir, p+"limit_in_bytes"); err != nil {
			return err
		}
		if h.Failcnt, err = readUint(dir, p+"failcnt"); err != nil {
			return err
		}
		if st.Hugetlb == nil {
			st.Hugetlb = make(map[string]HugetlbStats)
		}
		st.Hugetlb[s] = h
	}
	return nil
}

func hugetlbStatsV2(dir string, st *Stats) error {
	sizes, err := hugePageSizes()
	if err != nil {
		return err
	}
	for _, s := range sizes {
		var h HugetlbStats
		p := "hugetlb." + s + "."
		if h.Usage, err = readUint(dir, p+"current"); err != nil {
			return err
		}
		if h.Limit, err = readUint(dir, p+"max"); err != nil {
			return err
		}
		ev, err := readKeyValues(dir, p+"events")
		if err != nil {
			return err
		}
		h.Failcnt = ev["max"]
		if st.Hugetlb == nil {
			st.Hugetlb = make(map[string]HugetlbStats)
		}
		st.Hugetlb[s] = h
	}
	return nil
}
