package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestV2ApplyFreezeStatsKill(t *testing.T) {
	m, h := newTestV2Manager(t)
	c := startHelper(t, "serve")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if got, want := procCgroups(t, c.pid())[""], strings.TrimPrefix(m.dir, h.Mountpoint); got != want {
		t.Errorf("/proc/%d/cgroup has cgroup2 path %q, want %q", c.pid(), got, want)
	}
	c.call(t, 'e')

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if ev, err := readKeyValues(m.dir, "cgroup.events"); err != nil || ev["frozen"] != 1 {
		t.Errorf("cgroup.events = %v, %v; want frozen 1", ev, err)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen() = %v, %v; want true", frozen, err)
	}
	c.send(t, 'e')
	if b, err := c.tryReply(100 * time.Millisecond); err == nil {
		t.Fatalf("frozen helper answered %q", b)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if got := c.reply(t, 30*time.Second); got != 'e' {
		t.Errorf("thawed helper replied %q", got)
	}
	if frozen, err := m.Frozen(); err != nil || frozen {
		t.Errorf("Frozen() after Thaw = %v, %v; want false", frozen, err)
	}

	pids, err := m.Pids()
	if err != nil || !slices.Equal(pids, []int{c.pid()}) {
		t.Errorf("Pids() = %v, %v; want [%d]", pids, err, c.pid())
	}
	for i := 0; i < 3; i++ {
		c.call(t, 'w')
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.CPU.Usage.Total == 0 || st.CPU.Usage.User+st.CPU.Usage.Kernel == 0 {
		t.Errorf("cpu usage = %+v, want non-zero", st.CPU.Usage)
	}
	if exists(m.dir, "memory.current") && st.Memory.Usage.Usage < 8<<20 {
		t.Errorf("memory usage = %+v, want at least 8 MiB", st.Memory.Usage)
	}
	if exists(m.dir, "pids.current") && st.Pids.Current == 0 {
		t.Errorf("pids.current = 0")
	}

	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if !c.killedBySIGKILL() {
		t.Errorf("after Kill: helper exited with %v, want SIGKILL", c.wait())
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Destroy (%v)", m.dir, err)
	}
}

func TestV2Hugetlb(t *testing.T) {
	m, h := newTestV2Manager(t)
	if !slices.Contains(h.Subsystems, "hugetlb") {
		t.Skip("hugetlb controller not available on cgroup2")
	}
	sizes, err := hugePageSizes()
	if err != nil || !slices.Contains(sizes, "2MB") {
		t.Skipf("no 2MB huge pages (%v, %v)", sizes, err)
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 8 << 20}}}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(mustRead(t, h.Mountpoint, "cgroup.subtree_control")), "hugetlb") {
		t.Error("hugetlb not enabled in the parent's cgroup.subtree_control")
	}
	expectFile(t, m.dir, "hugetlb.2MB.max", strconv.Itoa(8<<20))
	if exists(m.dir, "hugetlb.2MB.rsvd.max") {
		expectFile(t, m.dir, "hugetlb.2MB.rsvd.max", strconv.Itoa(8<<20))
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Hugetlb["2MB"]; got.Limit != 8<<20 || got.Usage != 0 {
		t.Errorf("Stats().Hugetlb[2MB] = %+v, want limit %d and no usage", got, 8<<20)
	}
}

func TestV2ControllerChecks(t *testing.T) {
	m, h := newTestV2Manager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	// Nothing asked: nothing enabled, no error.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{}, CPU: &specs.LinuxCPU{}}); err != nil {
		t.Errorf("empty resources: %v", err)
	}
	for _, ctrl := range []string{"memory", "pids", "cpu", "io"} {
		if slices.Contains(h.Subsystems, ctrl) {
			continue
		}
		r := map[string]*specs.LinuxResources{
			"memory": {Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}},
			"pids":   {Pids: &specs.LinuxPids{Limit: i64(10)}},
			"cpu":    {CPU: &specs.LinuxCPU{Shares: u64(512)}},
			"io":     {BlockIO: &specs.LinuxBlockIO{Weight: u16(100)}},
		}[ctrl]
		err := m.Set(r)
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), strconv.Quote(ctrl)) {
			t.Errorf("%s limit without the controller: err = %v, want unavailable naming %q", ctrl, err, ctrl)
		}
	}
	for name, r := range map[string]*specs.LinuxResources{
		"realtime":   {CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}},
		"swappiness": {Memory: &specs.LinuxMemory{Swappiness: u64(10)}},
		"classid":    {Network: &specs.LinuxNetwork{ClassID: u32(1)}},
	} {
		if err := m.Set(r); !errdefs.IsNotImplemented(err) {
			t.Errorf("%s on v2: err = %v, want not implemented", name, err)
		}
	}
}

func TestV2Unified(t *testing.T) {
	m, _ := newTestV2Manager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.max.descendants": "7", "cgroup.max.depth": "3"}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, m.dir, "cgroup.max.descendants", "7")
	expectFile(t, m.dir, "cgroup.max.depth", "3")
	for _, bad := range []string{"a/b", "../cgroup.max.depth", "cgroup.nope", "cgroup.kill", "cgroup.subtree_control"} {
		if err := m.Set(&specs.LinuxResources{Unified: map[string]string{bad: "1"}}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("unified key %q: err = %v, want invalid argument", bad, err)
		}
	}
	// A kernel refusal comes back with the file named.
	err := m.Set(&specs.LinuxResources{Unified: map[string]string{"cgroup.max.depth": "nonsense"}})
	if err == nil || !strings.Contains(err.Error(), "cgroup.max.depth") {
		t.Errorf("bad value: err = %v, want an error naming the file", err)
	}
}

// deviceFilters lists the ids of our device filters attached to dir.
func deviceFilters(t *testing.T, dir string) []uint32 {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	all, err := bpfProgQuery(fd, unix.BPF_CGROUP_DEVICE)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, id := range all {
		p, ours, err := deviceProgramIsOurs(id)
		if err != nil {
			t.Fatal(err)
		}
		if ours {
			unix.Close(p)
			ids = append(ids, id)
		}
	}
	return ids
}

func TestV2DeviceFilter(t *testing.T) {
	tmp := t.TempDir()
	checks := []string{"r:/dev/null", "w:/dev/null", "r:/dev/zero", "m:c:1:3:" + tmp + "/null", "m:b:7:0:" + tmp + "/loop"}
	noNull := slices.DeleteFunc(slices.Clone(dockerDefault), func(d specs.LinuxDeviceCgroup) bool { return d.Minor != nil && *d.Minor == 3 })
	for _, c := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  []string
	}{
		{name: "allow list without /dev/null", rules: noNull, want: []string{"EPERM", "EPERM", "ok", "ok", "ok"}},
		{
			name:  "deny list",
			rules: []specs.LinuxDeviceCgroup{{Allow: true}, dev(false, "c", 1, 3, "w"), dev(false, "b", wildcard, wildcard, "m")},
			want:  []string{"ok", "EPERM", "ok", "ok", "EPERM"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _ := newTestV2Manager(t)
			got := runDeviceChecks(t, func(pid int) {
				if err := m.Apply(pid); err != nil {
					t.Fatal(err)
				}
				if err := m.Set(&specs.LinuxResources{Devices: c.rules}); err != nil {
					t.Fatal(err)
				}
			}, checks...)
			if !slices.Equal(got, c.want) {
				t.Errorf("checks %v = %v, want %v", checks, got, c.want)
			}
			if ids := deviceFilters(t, m.dir); len(ids) != 1 {
				t.Errorf("device filters attached = %v, want one", ids)
			}
		})
	}

	t.Run("second Set replaces the filter", func(t *testing.T) {
		m, _ := newTestV2Manager(t)
		if err := m.Apply(-1); err != nil {
			t.Fatal(err)
		}
		if err := m.Set(&specs.LinuxResources{Devices: noNull}); err != nil {
			t.Fatal(err)
		}
		first := deviceFilters(t, m.dir)
		// Another process (the runtime's "update") reopens the cgroup.
		l, err := Load(m.Paths())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Set(&specs.LinuxResources{Devices: dockerDefault}); err != nil {
			t.Fatal(err)
		}
		second := deviceFilters(t, m.dir)
		if len(first) != 1 || len(second) != 1 || first[0] == second[0] {
			t.Errorf("filters before and after the second Set: %v, %v; want one each, different", first, second)
		}
		got := runDeviceChecks(t, func(pid int) {
			if err := m.Apply(pid); err != nil {
				t.Fatal(err)
			}
		}, checks...)
		if want := []string{"ok", "ok", "ok", "ok", "ok"}; !slices.Equal(got, want) {
			t.Errorf("after replacing: checks %v = %v, want %v", checks, got, want)
		}
	})
}

// TestV2SetMapping checks how OCI values map onto v2 files, on plain files
// standing in for the interface files of controllers this host may lack.
func TestV2SetMapping(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.idle", "cpu.max.burst", "pids.max", "io.weight", "io.max", "cpuset.cpus", "cpuset.mems"} {
		write(f, "")
	}
	write("cpu.max", "max 100000")
	read := func(name string) string { return mustRead(t, dir, name) }
	check := func(name, want string) {
		t.Helper()
		if got := read(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(setMemoryV2(dir, &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(192 << 20), Reservation: i64(32 << 20)}))
	check("memory.max", strconv.Itoa(64<<20))
	check("memory.swap.max", strconv.Itoa(128<<20))
	check("memory.low", strconv.Itoa(32<<20))
	must(setMemoryV2(dir, &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(64 << 20)}))
	check("memory.swap.max", "0")
	must(setMemoryV2(dir, &specs.LinuxMemory{Limit: i64(-1)}))
	check("memory.max", "max")
	check("memory.swap.max", "max")
	if err := setMemoryV2(dir, &specs.LinuxMemory{Swap: i64(64 << 20)}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("swap without memory limit: err = %v, want invalid argument", err)
	}

	must(setCPUV2(dir, &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000)}))
	check("cpu.weight", "100")
	check("cpu.max", "50000 100000")
	must(setCPUV2(dir, &specs.LinuxCPU{Period: u64(200000)}))
	check("cpu.max", "50000 200000")
	must(setCPUV2(dir, &specs.LinuxCPU{Quota: i64(-1)}))
	check("cpu.max", "max 200000")
	must(setCPUV2(dir, &specs.LinuxCPU{Burst: u64(1000), Idle: i64(1), Cpus: "0-1", Mems: "0"}))
	check("cpu.max.burst", "1000")
	check("cpu.idle", "1")
	must(setCpusetV2(dir, &specs.LinuxCPU{Cpus: "0-1", Mems: "0"}))
	check("cpuset.cpus", "0-1")
	check("cpuset.mems", "0")

	must(setPids(dir, &specs.LinuxPids{Limit: i64(-1)}))
	check("pids.max", "max")
	must(setPids(dir, &specs.LinuxPids{Limit: i64(0)}))
	check("pids.max", "0")

	d := specs.LinuxThrottleDevice{Rate: 1 << 20}
	d.Major, d.Minor = 8, 0
	must(setIOV2(dir, &specs.LinuxBlockIO{Weight: u16(500), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{d}}))
	check("io.weight", "4950")
	check("io.max", "8:0 rbps=1048576")
	d.Rate = 0
	must(setIOV2(dir, &specs.LinuxBlockIO{ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{d}}))
	check("io.max", "8:0 wiops=max")
	write("io.bfq.weight", "")
	wd := specs.LinuxWeightDevice{Weight: u16(300)}
	wd.Major, wd.Minor = 8, 16
	must(setIOV2(dir, &specs.LinuxBlockIO{Weight: u16(500)}))
	check("io.bfq.weight", "500")
	must(setIOV2(dir, &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{wd}}))
	check("io.bfq.weight", "8:16 300")

	// Without swap accounting, "no limit" is fine and a limit is not.
	must(os.Remove(filepath.Join(dir, "memory.swap.max")))
	must(setMemoryV2(dir, &specs.LinuxMemory{Limit: i64(-1)}))
	if err := setMemoryV2(dir, &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20)}); err == nil {
		t.Error("swap limit without memory.swap.max: no error")
	}
}

func TestControllersFor(t *testing.T) {
	r := &specs.LinuxResources{
		CPU:            &specs.LinuxCPU{Shares: u64(0), Cpus: "0"},
		Memory:         &specs.LinuxMemory{Swappiness: u64(1)},
		Pids:           &specs.LinuxPids{Limit: i64(1)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB"}},
		Unified:        map[string]string{"memory.high": "1", "cgroup.max.depth": "1", "misc.max": "x 1"},
	}
	got := controllersFor(r)
	if want := []string{"cpuset", "hugetlb", "memory", "misc", "pids"}; !slices.Equal(got, want) {
		t.Errorf("controllersFor = %v, want %v", got, want)
	}
	if got := controllersFor(&specs.LinuxResources{Memory: &specs.LinuxMemory{}}); len(got) != 0 {
		t.Errorf("controllersFor(empty memory) = %v, want none", got)
	}
}
