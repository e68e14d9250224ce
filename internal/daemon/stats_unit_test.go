package daemon

import (
	"math"
	"reflect"
	"strings"
	"testing"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/cgroups"
)

func TestParseProcStat(t *testing.T) {
	const stat = `cpu  100 20 30 400 5 6 7 8 0 0
cpu0 50 10 15 200 2 3 3 4 0 0
cpu1 50 10 15 200 3 3 4 4 0 0
intr 12345
ctxt 999
cpufreq 1
`
	total, cpus, err := parseProcStat(strings.NewReader(stat))
	if err != nil {
		t.Fatal(err)
	}
	// user..softirq = 100+20+30+400+5+6+7 = 568 ticks of 10ms.
	if total != 568*10_000_000 || cpus != 2 {
		t.Errorf("total %d cpus %d", total, cpus)
	}
	for _, bad := range []string{"intr 1\n", "cpu 1 2 3\n", "cpu 1 2 3 4 5 6 x 8\n"} {
		if _, _, err := parseProcStat(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseMemTotal(t *testing.T) {
	n, err := parseMemTotal(strings.NewReader("MemFree:  10 kB\nMemTotal:       16318412 kB\n"))
	if err != nil || n != 16318412*1024 {
		t.Errorf("%d %v", n, err)
	}
	if _, err := parseMemTotal(strings.NewReader("MemFree: 1 kB\n")); err == nil {
		t.Error("no MemTotal: no error")
	}
}

func TestParseNetDev(t *testing.T) {
	const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      656       8    3    4    0     0       0          0
`
	got, err := parseNetDev(strings.NewReader(dev))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]api.NetworkStats{"eth0": {
		RxBytes: 1296, RxPackets: 16, RxErrors: 1, RxDropped: 2,
		TxBytes: 656, TxPackets: 8, TxErrors: 3, TxDropped: 4,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseNetDev(strings.NewReader("eth0: 1 2 3\n")); err == nil {
		t.Error("short line: no error")
	}
}

func TestFillCgroupStats(t *testing.T) {
	st := &cgroups.Stats{
		CPU: cgroups.CPUStats{
			Usage:      cgroups.CPUUsage{Total: 1000, Percpu: []uint64{600, 400}, Kernel: 300, User: 700},
			Throttling: cgroups.Throttling{Periods: 5, ThrottledPeriods: 2, ThrottledTime: 99},
		},
		Memory: cgroups.MemoryStats{
			Usage: cgroups.MemoryEntry{Usage: 4096, Max: 8192, Failcnt: 1, Limit: math.MaxUint64},
			Raw:   map[string]uint64{"cache": 10, "rss": 20, "total_inactive_file": 5},
		},
		Pids:  cgroups.PidsStats{Current: 3, Limit: 100},
		Blkio: cgroups.BlkioStats{IoServiceBytesRecursive: []cgroups.BlkioEntry{{Major: 8, Minor: 0, Op: "Read", Value: 512}}},
	}
	var s StatsSample
	fillCgroupStats(&s, st)
	cpu := s.CPUStats
	if cpu.CPUUsage.TotalUsage != 1000 || !reflect.DeepEqual(cpu.CPUUsage.PercpuUsage, []uint64{600, 400}) ||
		cpu.CPUUsage.UsageInKernelmode != 300 || cpu.CPUUsage.UsageInUsermode != 700 ||
		cpu.ThrottlingData != (api.ThrottlingData{Periods: 5, ThrottledPeriods: 2, ThrottledTime: 99}) {
		t.Errorf("cpu %+v", cpu)
	}
	m := s.MemoryStats
	if m.Usage != 4096 || m.MaxUsage != 8192 || m.Failcnt != 1 || m.Limit != math.MaxUint64 || m.Stats["total_inactive_file"] != 5 || len(m.Stats) != 3 {
		t.Errorf("memory %+v", m)
	}
	st.Memory.Raw["rss"] = 0
	if m.Stats["rss"] != 20 {
		t.Error("memory stats share the cgroup reading's map")
	}
	if s.PidsStats != (api.PidsStats{Current: 3, Limit: 100}) {
		t.Errorf("pids %+v", s.PidsStats)
	}
	if want := []api.BlkioStatEntry{{Major: 8, Op: "Read", Value: 512}}; !reflect.DeepEqual(s.BlkioStats.IoServiceBytesRecursive, want) || s.BlkioStats.IoServicedRecursive != nil {
		t.Errorf("blkio %+v", s.BlkioStats)
	}
}
