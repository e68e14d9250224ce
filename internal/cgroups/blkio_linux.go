package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/errdefs"
)

// blkioNeeded reports whether b asks anything of the block I/O controller.
func blkioNeeded(b *specs.LinuxBlockIO) bool {
	return b != nil && (b.Weight != nil || b.LeafWeight != nil || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
		len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0)
}

// throttleFiles pairs the OCI throttle lists with their v1 files and v2
// io.max keys.
func throttleFiles(b *specs.LinuxBlockIO) []struct {
	devs   []specs.LinuxThrottleDevice
	v1File string
	v2Key  string
} {
	return []struct {
		devs   []specs.LinuxThrottleDevice
		v1File string
		v2Key  string
	}{
		{b.ThrottleReadBpsDevice, "blkio.throttle.read_bps_device", "rbps"},
		{b.ThrottleWriteBpsDevice, "blkio.throttle.write_bps_device", "wbps"},
		{b.ThrottleReadIOPSDevice, "blkio.throttle.read_iops_device", "riops"},
		{b.ThrottleWriteIOPSDevice, "blkio.throttle.write_iops_device", "wiops"},
	}
}

// formatDev formats a block device number as the cgroup files want it.
func formatDev(major, minor int64) string {
	return strconv.FormatInt(major, 10) + ":" + strconv.FormatInt(minor, 10)
}

// setBlkioV1 writes weights (CFQ's blkio.weight or, without CFQ, BFQ's
// blkio.bfq.weight) and throttles; 0 removes a device's throttle.
func setBlkioV1(dir string, b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	weight, weightDev := "blkio.weight", "blkio.weight_device"
	if !exists(dir, weight) && exists(dir, "blkio.bfq.weight") {
		weight, weightDev = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	need := func(file string) error {
		if !exists(dir, file) {
			return fmt.Errorf("%s is not supported by this kernel's I/O schedulers: %w", file, errdefs.ErrUnavailable)
		}
		return nil
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := need(weight); err != nil {
			return err
		}
		if err := writeFile(dir, weight, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := need("blkio.leaf_weight"); err != nil {
			return err
		}
		if err := writeFile(dir, "blkio.leaf_weight", strconv.FormatUint(uint64(*b.LeafWeight), 10)); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		dev := formatDev(wd.Major, wd.Minor)
		if wd.Weight != nil {
			if err := need(weightDev); err != nil {
				return err
			}
			if err := writeFile(dir, weightDev, dev+" "+strconv.FormatUint(uint64(*wd.Weight), 10)); err != nil {
				return err
			}
		}
		if wd.LeafWeight != nil {
			if err := need("blkio.leaf_weight_device"); err != nil {
				return err
			}
			if err := writeFile(dir, "blkio.leaf_weight_device", dev+" "+strconv.FormatUint(uint64(*wd.LeafWeight), 10)); err != nil {
				return err
			}
		}
	}
	for _, t := range throttleFiles(b) {
		for _, d := range t.devs {
			if err := writeFile(dir, t.v1File, formatDev(d.Major, d.Minor)+" "+strconv.FormatUint(d.Rate, 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setIOV2 writes io.bfq.weight (the blkio scale, when BFQ is available) or
// else io.weight (converted with BlkioWeightToIOWeight), and io.max for
// throttles (a rate of 0 is "max"). Leaf weights have no v2 equivalent and
// are ignored.
func setIOV2(dir string, b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	bfq := exists(dir, "io.bfq.weight")
	weightValue := func(w uint16) (string, string) {
		if bfq {
			return "io.bfq.weight", strconv.FormatUint(uint64(w), 10)
		}
		return "io.weight", strconv.FormatUint(BlkioWeightToIOWeight(uint64(w)), 10)
	}
	if b.Weight != nil && *b.Weight != 0 {
		file, v := weightValue(*b.Weight)
		if err := writeFile(dir, file, v); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight == nil {
			continue
		}
		file, v := weightValue(*wd.Weight)
		if err := writeFile(dir, file, formatDev(wd.Major, wd.Minor)+" "+v); err != nil {
			return err
		}
	}
	for _, t := range throttleFiles(b) {
		for _, d := range t.devs {
			rate := "max"
			if d.Rate != 0 {
				rate = strconv.FormatUint(d.Rate, 10)
			}
			if err := writeFile(dir, "io.max", formatDev(d.Major, d.Minor)+" "+t.v2Key+"="+rate); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseBlkioV1 parses a v1 blkio stats file ("8:0 Read 4096" lines; the
// device-less "Total" line is dropped).
func parseBlkioV1(content string) ([]BlkioEntry, error) {
	var out []BlkioEntry
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			return nil, fmt.Errorf("blkio stats line %q: no major:minor", line)
		}
		var e BlkioEntry
		var err error
		if e.Major, err = strconv.ParseUint(maj, 10, 64); err != nil {
			return nil, fmt.Errorf("blkio stats line %q: %w", line, err)
		}
		if e.Minor, err = strconv.ParseUint(min, 10, 64); err != nil {
			return nil, fmt.Errorf("blkio stats line %q: %w", line, err)
		}
		if e.Value, err = strconv.ParseUint(f[2], 10, 64); err != nil {
			return nil, fmt.Errorf("blkio stats line %q: %w", line, err)
		}
		e.Op = f[1]
		out = append(out, e)
	}
	return out, nil
}

// blkioStatsV1 reads the recursive byte and I/O counters from the first
// of CFQ, BFQ and the throttle layer that has any, in runc's order.
func blkioStatsV1(dir string, st *Stats) error {
	for _, prefix := range []string{"blkio.", "blkio.bfq.", "blkio.throttle."} {
		bytes, err := readFile(dir, prefix+"io_service_bytes_recursive")
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return err
		}
		ios, err := readFile(dir, prefix+"io_serviced_recursive")
		if err != nil {
			return err
		}
		b, err := parseBlkioV1(bytes)
		if err != nil {
			return err
		}
		i, err := parseBlkioV1(ios)
		if err != nil {
			return err
		}
		st.Blkio = BlkioStats{IoServiceBytesRecursive: b, IoServicedRecursive: i}
		if len(b) > 0 || len(i) > 0 {
			break
		}
	}
	return nil
}

// parseIOStat parses v2 io.stat lines ("8:0 rbytes=1 wbytes=2 rios=3 ...").
func parseIOStat(content string) (BlkioStats, error) {
	var st BlkioStats
	ops := map[string]struct {
		op    string
		bytes bool
	}{
		"rbytes": {"Read", true}, "wbytes": {"Write", true}, "dbytes": {"Discard", true},
		"rios": {"Read", false}, "wios": {"Write", false}, "dios": {"Discard", false},
	}
	for _, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			return st, fmt.Errorf("io.stat line %q: no major:minor", line)
		}
		major, err := strconv.ParseUint(maj, 10, 64)
		if err != nil {
			return st, fmt.Errorf("io.stat line %q: %w", line, err)
		}
		minor, err := strconv.ParseUint(min, 10, 64)
		if err != nil {
			return st, fmt.Errorf("io.stat line %q: %w", line, err)
		}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			o, known := ops[k]
			if !ok || !known {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return st, fmt.Errorf("io.stat line %q: %w", line, err)
			}
			e := BlkioEntry{Major: major, Minor: minor, Op: o.op, Value: n}
			if o.bytes {
				st.IoServiceBytesRecursive = append(st.IoServiceBytesRecursive, e)
			} else {
				st.IoServicedRecursive = append(st.IoServicedRecursive, e)
			}
		}
	}
	return st, nil
}

func ioStatsV2(dir string, st *Stats) error {
	s, err := readFile(dir, "io.stat")
	if err != nil {
		return err
	}
	b, err := parseIOStat(s)
	if err != nil {
		return err
	}
	st.Blkio = b
	return nil
}
