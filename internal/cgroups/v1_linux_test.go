package cgroups

import (
	"errors"
	"maps"
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

func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func boolp(v bool) *bool   { return &v }

// newTestV1Manager is newTestManager for tests of the v1 implementation.
func newTestV1Manager(t *testing.T) *v1Manager {
	t.Helper()
	m := newTestManager(t)
	v1, ok := m.(*v1Manager)
	if !ok {
		t.Skip("host has no cgroup v1 controller hierarchies")
	}
	return v1
}

// mountpointOf returns the mountpoint of the hierarchy behind Paths key k.
func (m *v1Manager) mountpointOf(k string) string {
	if k == "" {
		return m.unified.mountpoint
	}
	return m.mounts[k]
}

func TestV1ApplyJoinsEveryHierarchy(t *testing.T) {
	m := newTestV1Manager(t)
	h := startHelper(t, "serve")
	if err := m.Apply(h.pid()); err != nil {
		t.Fatal(err)
	}
	cg := procCgroups(t, h.pid())
	paths := m.Paths()
	if len(paths) < 2 {
		t.Fatalf("Paths() = %v, want one per hierarchy", paths)
	}
	for k, dir := range paths {
		want := strings.TrimPrefix(dir, m.mountpointOf(k))
		if got, ok := cg[k]; !ok || got != want {
			t.Errorf("/proc/%d/cgroup has %q for %q, want %q", h.pid(), got, k, want)
		}
		procs, err := readProcs(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(procs, h.pid()) {
			t.Errorf("%s/cgroup.procs = %v, want it to hold %d", dir, procs, h.pid())
		}
	}
	if _, ok := m.mounts["name=systemd"]; ok {
		if _, ok := paths["name=systemd"]; !ok {
			t.Error("named hierarchy name=systemd missing from Paths")
		}
	}
	if dir, ok := paths["cpuset"]; ok {
		if mustRead(t, dir, "cpuset.cpus") == "" || mustRead(t, dir, "cpuset.mems") == "" {
			t.Error("new cpuset cgroup has empty cpuset.cpus or cpuset.mems")
		}
	}
	if _, ok := paths[""]; !ok && m.unified != nil {
		t.Error("hybrid host: unified directory missing from Paths")
	}
	// The process still runs in its new cgroups.
	h.call(t, 'e')
}

// rootDisk finds the major:minor of a whole disk the throttle files accept.
func rootDisk(t *testing.T) (int64, int64, bool) {
	t.Helper()
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		return 0, 0, false
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "zram") || strings.HasPrefix(name, "ram") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", name, "dev"))
		if err != nil {
			continue
		}
		maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseInt(maj, 10, 64)
		mi, err2 := strconv.ParseInt(min, 10, 64)
		if err1 == nil && err2 == nil {
			return ma, mi, true
		}
	}
	return 0, 0, false
}

func TestV1Set(t *testing.T) {
	m := newTestV1Manager(t)
	h := startHelper(t, "serve")
	if err := m.Apply(h.pid()); err != nil {
		t.Fatal(err)
	}
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit:            i64(64 << 20),
			Reservation:      i64(32 << 20),
			Swappiness:       u64(10),
			DisableOOMKiller: boolp(false),
			KernelTCP:        i64(16 << 20),
		},
		CPU:     &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: i64(42)},
		Devices: dockerDefault,
	}
	memDir, haveMem := m.paths["memory"]
	swap := haveMem && exists(memDir, "memory.memsw.limit_in_bytes")
	if swap {
		r.Memory.Swap = i64(128 << 20)
	}
	cpuDir, haveCPU := m.paths["cpu"]
	rt := haveCPU && exists(cpuDir, "cpu.rt_runtime_us")
	if rt {
		r.CPU.RealtimePeriod = u64(1000000)
		r.CPU.RealtimeRuntime = i64(1000)
	}
	blkDir, haveBlk := m.paths["blkio"]
	major, minor, haveDisk := rootDisk(t)
	if haveBlk {
		r.BlockIO = &specs.LinuxBlockIO{}
		if exists(blkDir, "blkio.weight") || exists(blkDir, "blkio.bfq.weight") {
			r.BlockIO.Weight = u16(500)
		}
		if haveDisk {
			d := specs.LinuxThrottleDevice{Rate: 1 << 20}
			d.Major, d.Minor = major, minor
			r.BlockIO.ThrottleReadBpsDevice = []specs.LinuxThrottleDevice{d}
			d.Rate = 1000
			r.BlockIO.ThrottleWriteIOPSDevice = []specs.LinuxThrottleDevice{d}
		}
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	if haveMem {
		expectFile(t, memDir, "memory.limit_in_bytes", strconv.Itoa(64<<20))
		expectFile(t, memDir, "memory.soft_limit_in_bytes", strconv.Itoa(32<<20))
		expectFile(t, memDir, "memory.swappiness", "10")
		if exists(memDir, "memory.kmem.tcp.limit_in_bytes") {
			expectFile(t, memDir, "memory.kmem.tcp.limit_in_bytes", strconv.Itoa(16<<20))
		}
		if oc, err := readKeyValues(memDir, "memory.oom_control"); err != nil || oc["oom_kill_disable"] != 0 {
			t.Errorf("memory.oom_control = %v, %v; want oom_kill_disable 0", oc, err)
		}
		if swap {
			expectFile(t, memDir, "memory.memsw.limit_in_bytes", strconv.Itoa(128<<20))
			// Growing past the current memsw needs memsw first, shrinking
			// below the current limit needs the limit first.
			if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20)}}); err != nil {
				t.Fatalf("grow memory limits: %v", err)
			}
			expectFile(t, memDir, "memory.limit_in_bytes", strconv.Itoa(256<<20))
			expectFile(t, memDir, "memory.memsw.limit_in_bytes", strconv.Itoa(512<<20))
			if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(32 << 20), Swap: i64(48 << 20)}}); err != nil {
				t.Fatalf("shrink memory limits: %v", err)
			}
			expectFile(t, memDir, "memory.limit_in_bytes", strconv.Itoa(32<<20))
			expectFile(t, memDir, "memory.memsw.limit_in_bytes", strconv.Itoa(48<<20))
		}
		if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: boolp(true)}}); err != nil {
			t.Fatal(err)
		}
		if oc, err := readKeyValues(memDir, "memory.oom_control"); err != nil || oc["oom_kill_disable"] != 1 {
			t.Errorf("memory.oom_control = %v, %v; want oom_kill_disable 1", oc, err)
		}
		if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("swappiness 101: err = %v, want invalid argument", err)
		}
	}
	if haveCPU {
		expectFile(t, cpuDir, "cpu.shares", "512")
		expectFile(t, cpuDir, "cpu.cfs_quota_us", "50000")
		expectFile(t, cpuDir, "cpu.cfs_period_us", "100000")
		if rt {
			expectFile(t, cpuDir, "cpu.rt_period_us", "1000000")
			expectFile(t, cpuDir, "cpu.rt_runtime_us", "1000")
		}
		// A period below the current quota's needs the quota written first.
		if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(5000), Period: u64(10000)}}); err != nil {
			t.Fatal(err)
		}
		expectFile(t, cpuDir, "cpu.cfs_quota_us", "5000")
		expectFile(t, cpuDir, "cpu.cfs_period_us", "10000")
		if exists(cpuDir, "cpu.idle") {
			if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64(1)}}); err != nil {
				t.Fatal(err)
			}
			expectFile(t, cpuDir, "cpu.idle", "1")
			if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64(0)}}); err != nil {
				t.Fatal(err)
			}
			expectFile(t, cpuDir, "cpu.idle", "0")
		}
	}
	if dir, ok := m.paths["cpuset"]; ok {
		expectFile(t, dir, "cpuset.cpus", "0")
		expectFile(t, dir, "cpuset.mems", "0")
	}
	if dir, ok := m.paths["pids"]; ok {
		expectFile(t, dir, "pids.max", "42")
		if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}); err != nil {
			t.Fatal(err)
		}
		expectFile(t, dir, "pids.max", "max")
	}
	if dir, ok := m.paths["devices"]; ok {
		expectFile(t, dir, "devices.list", "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 5:0 rwm\nc 136:* rwm\nc 10:200 rwm")
		// An update changes only what differs.
		next := append(slices.Clone(dockerDefault[:len(dockerDefault)-1]), dev(true, "c", 1, 9, "r"), dev(false, "c", 1, 7, "w"))
		if err := m.Set(&specs.LinuxResources{Devices: next}); err != nil {
			t.Fatal(err)
		}
		expectFile(t, dir, "devices.list", "c *:* m\nb *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rm\nc 5:0 rwm\nc 136:* rwm\nc 1:9 r")
		// Specific entries folded into a wildcard.
		if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false}, dev(true, "c", wildcard, wildcard, "rwm"), dev(true, "b", wildcard, wildcard, "m")}}); err != nil {
			t.Fatal(err)
		}
		expectFile(t, dir, "devices.list", "c *:* rwm\nb *:* m")
	}
	if haveBlk && r.BlockIO != nil {
		if r.BlockIO.Weight != nil {
			file := "blkio.weight"
			if !exists(blkDir, file) {
				file = "blkio.bfq.weight"
			}
			expectFile(t, blkDir, file, "500")
		}
		if haveDisk {
			dev := formatDev(major, minor)
			expectFile(t, blkDir, "blkio.throttle.read_bps_device", dev+" 1048576")
			expectFile(t, blkDir, "blkio.throttle.write_iops_device", dev+" 1000")
		}
	}
	// The process survived all of it.
	h.call(t, 'e')
}

func TestV1SetNetwork(t *testing.T) {
	m := newTestV1Manager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	// Nothing asked of a controller: no error even if it is missing.
	if err := m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{}}); err != nil {
		t.Errorf("empty network settings: %v", err)
	}
	classID := &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(0x100001)}}
	if dir, ok := m.paths["net_cls"]; ok {
		if err := m.Set(classID); err != nil {
			t.Fatal(err)
		}
		expectFile(t, dir, "net_cls.classid", strconv.Itoa(0x100001))
	} else if err := m.Set(classID); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), `"net_cls"`) {
		t.Errorf("classid without net_cls: err = %v, want an unavailable error naming net_cls", err)
	}
	prio := &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 5}}}}
	if dir, ok := m.paths["net_prio"]; ok {
		if err := m.Set(prio); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(mustRead(t, dir, "net_prio.ifpriomap"), "lo 5") {
			t.Errorf("net_prio.ifpriomap = %q, want lo 5", mustRead(t, dir, "net_prio.ifpriomap"))
		}
	} else if err := m.Set(prio); !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), `"net_prio"`) {
		t.Errorf("priorities without net_prio: err = %v, want an unavailable error naming net_prio", err)
	}
}

func TestV1SetUnified(t *testing.T) {
	m := newTestV1Manager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	r := &specs.LinuxResources{Unified: map[string]string{"cgroup.max.descendants": "5"}}
	if m.unified == nil {
		if err := m.Set(r); !errdefs.IsNotImplemented(err) {
			t.Errorf("unified resources on pure v1: err = %v, want not implemented", err)
		}
		return
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	expectFile(t, m.unified.dir, "cgroup.max.descendants", "5")
	for _, bad := range []string{"../cgroup.max.descendants", "cgroup.no_such_file", "cgroup.procs", ""} {
		if err := m.Set(&specs.LinuxResources{Unified: map[string]string{bad: "1"}}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("unified key %q: err = %v, want invalid argument", bad, err)
		}
	}
}

func TestV1HybridHugetlb(t *testing.T) {
	m := newTestV1Manager(t)
	if _, ok := m.paths["hugetlb"]; ok || m.unified == nil {
		t.Skip("needs a hybrid host with hugetlb on cgroup2 only")
	}
	if !slices.Contains(unifiedMount(t).Subsystems, "hugetlb") {
		t.Skip("hugetlb controller not available on cgroup2")
	}
	sizes, err := hugePageSizes()
	if err != nil || !slices.Contains(sizes, "2MB") {
		t.Skipf("no 2MB huge pages (%v, %v)", sizes, err)
	}
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}}); err != nil {
		t.Fatal(err)
	}
	expectFile(t, m.unified.dir, "hugetlb.2MB.max", strconv.Itoa(4<<20))
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Hugetlb["2MB"].Limit; got != 4<<20 {
		t.Errorf("Stats().Hugetlb[2MB].Limit = %d, want %d", got, 4<<20)
	}
	err = m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}})
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("page size 3MB: err = %v, want invalid argument", err)
	}
}

func TestV1FreezeThaw(t *testing.T) {
	m := newTestV1Manager(t)
	if m.freezer() == "" {
		t.Skip("no v1 freezer hierarchy")
	}
	h := startHelper(t, "serve")
	if err := m.Apply(h.pid()); err != nil {
		t.Fatal(err)
	}
	h.call(t, 'e') // the helper is now blocked reading stdin
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, m.freezer(), "freezer.state", "FROZEN")
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Errorf("Frozen() = %v, %v; want true", frozen, err)
	}
	// v1 frozen tasks sit in the refrigerator in uninterruptible sleep.
	if s := procState(t, h.pid()); !strings.HasPrefix(s, "D") {
		t.Errorf("frozen helper state = %q, want D", s)
	}
	h.send(t, 'e')
	if b, err := h.tryReply(100 * time.Millisecond); err == nil {
		t.Fatalf("frozen helper answered %q", b)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	expectFile(t, m.freezer(), "freezer.state", "THAWED")
	if frozen, err := m.Frozen(); err != nil || frozen {
		t.Errorf("Frozen() after Thaw = %v, %v; want false", frozen, err)
	}
	// The pending command is served once thawed.
	if got := h.reply(t, 30*time.Second); got != 'e' {
		t.Errorf("thawed helper replied %q", got)
	}
}

// directIOFile creates a 1 MiB file on disk for the helper to read with
// O_DIRECT, or returns "" if the temp dir is not on a block device.
func directIOFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		return ""
	}
	p := filepath.Join(dir, "data")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestV1PidsStatsKill(t *testing.T) {
	m := newTestV1Manager(t)
	file := directIOFile(t)
	h1 := startHelper(t, "serve", file)
	h2 := startHelper(t, "serve")
	if err := m.Apply(h1.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(h2.pid()); err != nil {
		t.Fatal(err)
	}
	// Move h2 into a sub-cgroup in every hierarchy: Pids and Kill recurse.
	for k, dir := range m.Paths() {
		sub := filepath.Join(dir, "sub")
		var err error
		if k == "cpuset" {
			err = mkdirCpuset(m.mounts["cpuset"], sub)
		} else if err = os.Mkdir(sub, 0o755); os.IsExist(err) {
			err = nil // co-mounted controllers share a directory
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFile(sub, "cgroup.procs", strconv.Itoa(h2.pid())); err != nil {
			t.Fatal(err)
		}
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pids)
	want := []int{h1.pid(), h2.pid()}
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Errorf("Pids() = %v, want %v", pids, want)
	}
	for i := 0; i < 3; i++ {
		h1.call(t, 'w')
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.paths["cpuacct"]; ok {
		if st.CPU.Usage.Total == 0 || st.CPU.Usage.User+st.CPU.Usage.Kernel == 0 || len(st.CPU.Usage.Percpu) == 0 {
			t.Errorf("cpu usage = %+v, want non-zero total, user+kernel and per-CPU figures", st.CPU.Usage)
		}
	}
	if _, ok := m.paths["memory"]; ok {
		if st.Memory.Usage.Usage < 8<<20 || st.Memory.Usage.Limit == 0 || st.Memory.Raw["rss"]+st.Memory.Raw["total_rss"] == 0 {
			t.Errorf("memory usage = %+v (rss %d), want at least the 8 MiB the helper touched", st.Memory.Usage, st.Memory.Raw["rss"])
		}
	}
	if _, ok := m.paths["pids"]; ok && st.Pids.Current < 2 {
		t.Errorf("pids.current = %d, want >= 2", st.Pids.Current)
	}
	if _, ok := m.paths["blkio"]; ok && file != "" {
		var read uint64
		for _, e := range st.Blkio.IoServiceBytesRecursive {
			if e.Op == "Read" {
				read += e.Value
			}
		}
		if read == 0 {
			t.Errorf("blkio service bytes = %+v, want reads after O_DIRECT reads", st.Blkio.IoServiceBytesRecursive)
		}
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if !h1.killedBySIGKILL() || !h2.killedBySIGKILL() {
		t.Errorf("after Kill: helpers exited with %v and %v, want SIGKILL", h1.wait(), h2.wait())
	}
	if frozen, err := m.Frozen(); err == nil && frozen {
		t.Error("cgroup left frozen by Kill")
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Paths() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Destroy (%v)", d, err)
		}
	}
	// Destroying again is fine.
	if err := m.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestV1DestroyBusy(t *testing.T) {
	m := newTestV1Manager(t)
	h := startHelper(t, "serve")
	if err := m.Apply(h.pid()); err != nil {
		t.Fatal(err)
	}
	err := m.Destroy()
	if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), strconv.Itoa(h.pid())) {
		t.Fatalf("Destroy with a live process: err = %v, want a conflict naming pid %d", err, h.pid())
	}
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = h.wait()
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy after the process exited: %v", err)
	}
}

// runDeviceChecks runs the "devices" helper in a cgroup made by apply and
// returns its results.
func runDeviceChecks(t *testing.T, apply func(pid int), checks ...string) []string {
	t.Helper()
	h := startHelper(t, "devices", checks...)
	apply(h.pid())
	h.send(t, 'g')
	if err := h.out.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	buf := make([]byte, 256)
	for {
		n, err := h.out.Read(buf)
		b.Write(buf[:n])
		if err != nil || strings.HasSuffix(b.String(), "\n") {
			break
		}
	}
	if err := h.wait(); err != nil {
		t.Fatalf("device helper: %v (output %q)", err, b.String())
	}
	return strings.Fields(b.String())
}

func TestV1Devices(t *testing.T) {
	tmp := t.TempDir()
	checks := []string{"r:/dev/null", "r:/dev/zero", "m:c:1:3:" + tmp + "/null", "m:b:7:0:" + tmp + "/loop"}
	for _, c := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  []string
	}{
		{
			name:  "allow list without /dev/null",
			rules: slices.DeleteFunc(slices.Clone(dockerDefault), func(d specs.LinuxDeviceCgroup) bool { return d.Minor != nil && *d.Minor == 3 }),
			want:  []string{"EPERM", "ok", "ok", "ok"},
		},
		{
			name:  "deny list with /dev/null",
			rules: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}, dev(false, "c", 1, 3, "rwm"), dev(false, "b", wildcard, wildcard, "m")},
			want:  []string{"EPERM", "ok", "EPERM", "EPERM"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newTestV1Manager(t)
			if _, ok := m.paths["devices"]; !ok {
				t.Skip("no v1 devices hierarchy")
			}
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
		})
	}
}

func TestLoad(t *testing.T) {
	m := newTestManager(t)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	for _, d := range paths {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("Apply(-1) did not create %s: %v", d, err)
		}
	}
	l, err := Load(paths)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Paths(); !maps.Equal(got, paths) {
		t.Errorf("Load(%v).Paths() = %v", paths, got)
	}
	if _, err := l.Pids(); err != nil {
		t.Errorf("Pids of loaded manager: %v", err)
	}
	if err := l.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, d := range paths {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("loaded manager's Destroy left %s (%v)", d, err)
		}
	}
	bad := []map[string]string{
		nil,
		{"memory": "/tmp/not-a-cgroup"},
		{"memory": "relative/path"},
		{"": "/sys/fs/cgroup/../../etc"},
	}
	if d, ok := paths["cpu"]; ok {
		bad = append(bad, map[string]string{"memory": d}) // wrong hierarchy
	}
	for _, p := range bad {
		if _, err := Load(p); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Load(%v): err = %v, want invalid argument", p, err)
		}
	}
}
