package cgroups

import (
	"encoding/json"
	"testing"
)

// TestStatsJSON pins the JSON names consumers of runc's `events --stats`
// output rely on.
func TestStatsJSON(t *testing.T) {
	st := Stats{
		CPU: CPUStats{
			Usage:      CPUUsage{Total: 1, Percpu: []uint64{1}, Kernel: 2, User: 3},
			Throttling: Throttling{Periods: 4, ThrottledPeriods: 5, ThrottledTime: 6},
		},
		Memory: MemoryStats{
			Usage: MemoryEntry{Limit: 7, Usage: 8, Max: 9, Failcnt: 10},
			Swap:  MemoryEntry{Limit: 11},
			Raw:   map[string]uint64{"rss": 12},
		},
		Pids:    PidsStats{Current: 13, Limit: 14},
		Blkio:   BlkioStats{IoServiceBytesRecursive: []BlkioEntry{{Major: 8, Op: "Read", Value: 15}}},
		Hugetlb: map[string]HugetlbStats{"2MB": {Usage: 16, Failcnt: 17}},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path []string
		want float64
	}{
		{[]string{"cpu", "usage", "total"}, 1},
		{[]string{"cpu", "usage", "kernel"}, 2},
		{[]string{"cpu", "usage", "user"}, 3},
		{[]string{"cpu", "throttling", "periods"}, 4},
		{[]string{"cpu", "throttling", "throttledPeriods"}, 5},
		{[]string{"cpu", "throttling", "throttledTime"}, 6},
		{[]string{"memory", "usage", "limit"}, 7},
		{[]string{"memory", "usage", "usage"}, 8},
		{[]string{"memory", "usage", "max"}, 9},
		{[]string{"memory", "usage", "failcnt"}, 10},
		{[]string{"memory", "swap", "limit"}, 11},
		{[]string{"memory", "raw", "rss"}, 12},
		{[]string{"pids", "current"}, 13},
		{[]string{"pids", "limit"}, 14},
		{[]string{"hugetlb", "2MB", "usage"}, 16},
		{[]string{"hugetlb", "2MB", "failcnt"}, 17},
	} {
		var v any = m
		for _, k := range c.path {
			obj, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: %v is not an object in %s", c.path, v, b)
			}
			v = obj[k]
		}
		if v != c.want {
			t.Errorf("%v = %v, want %v", c.path, v, c.want)
		}
	}
	blk := m["blkio"].(map[string]any)["ioServiceBytesRecursive"].([]any)[0].(map[string]any)
	if blk["major"] != float64(8) || blk["op"] != "Read" || blk["value"] != float64(15) {
		t.Errorf("blkio entry = %v", blk)
	}
	if pc := m["cpu"].(map[string]any)["usage"].(map[string]any)["percpu"]; pc == nil {
		t.Error("cpu.usage.percpu missing")
	}
}
