//go:build linux

package runtime_test

// linux.resources and cgroupsPath: the limits as the container sees them
// in its cgroup (mounted read-only at /sys/fs/cgroup, in its own cgroup
// namespace) and their effect (pids, devices, memory), the cgroup's place
// and removal from the host, update, and the events command.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// unifiedOnly reports whether the host has only cgroup v2.
func unifiedOnly() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// needV1 skips tests whose files are those of cgroup v1 (v1 and hybrid
// hosts).
func needV1(t *testing.T) {
	t.Helper()
	if unifiedOnly() {
		t.Skip("the files checked are cgroup v1's; this host has only cgroup v2")
	}
}

func resources(mutate func(r *specs.LinuxResources)) func(*specs.Spec) {
	return func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		mutate(s.Linux.Resources)
	}
}

// cgroupDirs maps each cgroup hierarchy's mount point on the host to the
// directory of pid's cgroup in it.
func cgroupDirs(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	mounts := parseMountinfo(t, readTrimmed(t, "/proc/self/mountinfo"))
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, m := range mounts {
			match := false
			if parts[1] == "" {
				match = m.fstype == "cgroup2"
			} else if m.fstype == "cgroup" {
				for _, c := range strings.Split(parts[1], ",") {
					match = match || slices.Contains(m.super, c)
				}
			}
			if !match {
				continue
			}
			rel, err := filepath.Rel(m.root, parts[2])
			if err != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			out[m.point] = filepath.Join(m.point, rel)
			break
		}
	}
	if len(out) == 0 {
		t.Fatalf("no cgroup directories for pid %d:\n%s", pid, data)
	}
	return out
}

// ownCgroup is the test process's cgroup in the hierarchy whose
// /proc/self/cgroup controller list contains ctrl.
func ownCgroup(t *testing.T, ctrl string) string {
	t.Helper()
	for _, line := range strings.Split(readTrimmed(t, "/proc/self/cgroup"), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), ctrl) {
			return parts[2]
		}
	}
	t.Fatalf("no %s cgroup in /proc/self/cgroup", ctrl)
	return ""
}

func TestCgroupMemory(t *testing.T) {
	needV1(t)
	const limit, reservation = 64 << 20, 32 << 20
	memsw := true
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err != nil {
		memsw = false
	}
	out := inside(t, `cd /sys/fs/cgroup/memory; for f in memory.limit_in_bytes memory.soft_limit_in_bytes memory.memsw.limit_in_bytes memory.swappiness; do test -e $f && echo $f=$(cat $f); done`,
		resources(func(r *specs.LinuxResources) {
			r.Memory = &specs.LinuxMemory{Limit: ptr(int64(limit)), Reservation: ptr(int64(reservation)), Swappiness: ptr(uint64(17))}
			if memsw {
				r.Memory.Swap = ptr(int64(limit + 16<<20))
			}
		}))
	want := map[string]string{
		"memory.limit_in_bytes":      strconv.Itoa(limit),
		"memory.soft_limit_in_bytes": strconv.Itoa(reservation),
		"memory.swappiness":          "17",
	}
	if memsw {
		want["memory.memsw.limit_in_bytes"] = strconv.Itoa(limit + 16<<20)
	}
	expect(t, keyValues(out), want)
}

func TestCgroupCPU(t *testing.T) {
	needV1(t)
	out := inside(t, `cd /sys/fs/cgroup; for f in cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpuset/cpuset.cpus cpuset/cpuset.mems; do echo $f=$(cat $f); done
grep -E '^(Cpus|Mems)_allowed_list:' /proc/self/status; echo nproc=$(nproc)`,
		resources(func(r *specs.LinuxResources) {
			r.CPU = &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(200000)), Cpus: "0", Mems: "0"}
		}))
	expect(t, keyValues(out), map[string]string{
		"cpu/cpu.shares": "512", "cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "200000",
		"cpuset/cpuset.cpus": "0", "cpuset/cpuset.mems": "0",
		"Cpus_allowed_list": "0", "Mems_allowed_list": "0", "nproc": "1",
	})
}

// TestCgroupPids runs a small fork bomb against pids.limit: forks fail
// once the cgroup holds the limit. The shell reads the counters with
// builtins, as it can no longer fork.
func TestCgroupPids(t *testing.T) {
	needV1(t)
	out := inside(t, `(for i in $(seq 30); do sleep 3600 & done) 2>&1
read cur < /sys/fs/cgroup/pids/pids.current; read max < /sys/fs/cgroup/pids/pids.max; read ev < /sys/fs/cgroup/pids/pids.events
echo current=$cur; echo max=$max; echo events=$ev`,
		resources(func(r *specs.LinuxResources) { r.Pids = &specs.LinuxPids{Limit: ptr(int64(10))} }))
	kv := keyValues(out)
	if !strings.Contains(out, "can't fork") {
		t.Errorf("30 forks under pids.max 10 did not fail:\n%s", out)
	}
	expect(t, kv, map[string]string{"max": "10"})
	if cur, err := strconv.Atoi(kv["current"]); err != nil || cur > 10 || cur < 2 {
		t.Errorf("pids.current = %q, want 2..10", kv["current"])
	}
	if ev := strings.Fields(kv["events"]); len(ev) != 2 || ev[0] != "max" || ev[1] == "0" {
		t.Errorf("pids.events = %q, want max > 0", kv["events"])
	}
}

func TestCgroupBlkioWeight(t *testing.T) {
	needV1(t)
	needRoot(t)
	// The weight file exists only with the CFQ (blkio.weight) or BFQ
	// (blkio.bfq.weight) scheduler: look in a scratch cgroup.
	probe := filepath.Join("/sys/fs/cgroup/blkio", "berth-probe-"+testutil.ContainerID(t))
	if err := os.Mkdir(probe, 0o755); err != nil {
		t.Skipf("no blkio hierarchy: %v", err)
	}
	weightFile := ""
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
		if _, err := os.Stat(filepath.Join(probe, f)); err == nil {
			weightFile = f
			break
		}
	}
	os.Remove(probe)
	if weightFile == "" {
		t.Skip("kernel without a proportional I/O scheduler (CFQ or BFQ): no blkio weight")
	}
	out := inside(t, `echo weight=$(cat /sys/fs/cgroup/blkio/`+weightFile+`)`,
		resources(func(r *specs.LinuxResources) { r.BlockIO = &specs.LinuxBlockIO{Weight: ptr(uint16(321))} }))
	if w := keyValues(out)["weight"]; w != "321" && w != "default 321" {
		t.Errorf("%s = %q, want 321", weightFile, w)
	}
}

func TestCgroupHugetlb(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err != nil {
		t.Skip("kernel without 2MB huge pages")
	}
	b := newBox(t, resources(func(r *specs.LinuxResources) {
		r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
	}))
	pid := b.create()
	var file string
	for mnt, dir := range cgroupDirs(t, pid) {
		for _, name := range []string{"hugetlb.2MB.max", "hugetlb.2MB.limit_in_bytes"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil && (file == "" || strings.HasSuffix(mnt, "hugetlb")) {
				file = filepath.Join(dir, name)
			}
		}
	}
	if file == "" {
		t.Skip("no hierarchy of this host has the hugetlb controller")
	}
	if v := readTrimmed(t, file); v != strconv.Itoa(4<<20) {
		t.Errorf("%s = %s, want %d", file, v, 4<<20)
	}
}

// TestCgroupDevices: the default rules let the standard devices work; a
// device node the spec neither creates nor allows (the host's
// /dev/loop-control, bind mounted) cannot be opened; an allow rule with
// "r" lets it be opened for reading only.
func TestCgroupDevices(t *testing.T) {
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no /dev/loop-control on this host")
	}
	script := `echo null=$(echo x 2>&1 > /dev/null && echo ok); echo zero=$(head -c 1 /dev/zero | wc -c); echo tty=$(stat -c %t:%T /dev/tty)
echo lc-read=$(: 2>&1 < /dev/lc && echo ok); echo lc-rw=$(: 2>&1 <> /dev/lc && echo ok)`
	loop := bindAt("/dev/loop-control", "/dev/lc")
	t.Run("denied", func(t *testing.T) {
		kv := keyValues(inside(t, script, loop))
		expect(t, kv, map[string]string{"null": "ok", "zero": "1", "tty": "5:0"})
		for _, k := range []string{"lc-read", "lc-rw"} {
			if !strings.Contains(kv[k], "Operation not permitted") {
				t.Errorf("%s of a device without a rule: %q, want EPERM", k, kv[k])
			}
		}
	})
	t.Run("allowed-read", func(t *testing.T) {
		kv := keyValues(inside(t, script, loop, resources(func(r *specs.LinuxResources) {
			r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(10)), Minor: ptr(int64(237)), Access: "r"})
		})))
		expect(t, kv, map[string]string{"null": "ok", "lc-read": "ok"})
		if !strings.Contains(kv["lc-rw"], "Operation not permitted") {
			t.Errorf("lc-rw with only an \"r\" rule: %q, want EPERM", kv["lc-rw"])
		}
	})
}

// TestCgroupPaths: where the cgroup goes for an absolute, a relative and
// no cgroupsPath, and that delete removes every directory.
func TestCgroupPaths(t *testing.T) {
	needV1(t)
	for _, kind := range []string{"absolute", "relative", "default"} {
		t.Run(kind, func(t *testing.T) {
			needRoot(t)
			t.Parallel()
			root := testutil.RootDir(t)
			bundle := testutil.Bundle(t, shell(`cat /proc/self/cgroup`))
			b := boxFor(t, root, bundle)
			var want func(own string) string
			switch kind {
			case "absolute":
				b.patchSpec(func(s *specs.Spec) { s.Linux.CgroupsPath = "/berth-abs-" + b.id })
				want = func(string) string { return "/berth-abs-" + b.id }
			case "relative":
				b.patchSpec(func(s *specs.Spec) { s.Linux.CgroupsPath = "berth-rel-" + b.id })
				want = func(own string) string { return filepath.Join(own, "berth-rel-"+b.id) }
			default:
				want = func(own string) string { return filepath.Join(own, b.id) }
			}
			pid := b.create()
			data := readTrimmed(t, fmt.Sprintf("/proc/%d/cgroup", pid))
			for _, ctrl := range []string{"memory", "pids", "cpu", "devices", "freezer"} {
				w := want(ownCgroup(t, ctrl))
				found := false
				for _, line := range strings.Split(data, "\n") {
					parts := strings.SplitN(line, ":", 3)
					if len(parts) == 3 && slices.Contains(strings.Split(parts[1], ","), ctrl) {
						found = true
						if parts[2] != w {
							t.Errorf("%s cgroup of init is %s, want %s", ctrl, parts[2], w)
						}
					}
				}
				if !found {
					t.Errorf("init has no %s cgroup:\n%s", ctrl, data)
				}
			}
			dirs := cgroupDirs(t, pid)
			for _, d := range dirs {
				if _, err := os.Stat(d); err != nil {
					t.Errorf("cgroup directory: %v", err)
				}
			}
			b.must("delete", "--force", b.id)
			for _, d := range dirs {
				if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("cgroup directory %s is still there after delete (%v)", d, err)
				}
			}
		})
	}
}

// TestCgroupMountWithoutNamespace: without a cgroup namespace the
// container's /sys/fs/cgroup still shows its own cgroup, not the host's
// root, and read-only.
func TestCgroupMountWithoutNamespace(t *testing.T) {
	needV1(t)
	out := inside(t, `echo limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); echo procs=$(cat /sys/fs/cgroup/pids/cgroup.procs)
echo write=$(echo 1 2>&1 > /sys/fs/cgroup/pids/pids.max); echo cgroup=$(grep ':memory:' /proc/self/cgroup)
echo top=$(mkdir /sys/fs/cgroup/x 2>&1); echo flags=$(grep ' /sys/fs/cgroup/pids ' /proc/self/mountinfo | cut -d' ' -f6)
echo topflags=$(grep ' /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f6)
echo comounted=$(for l in /sys/fs/cgroup/*; do [ -L $l ] && echo $(basename $l):$(readlink $l); done | tr '\n' ' ')`,
		func(s *specs.Spec) {
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.CgroupNamespace })
		},
		resources(func(r *specs.LinuxResources) { r.Memory = &specs.LinuxMemory{Limit: ptr(int64(48 << 20))} }))
	kv := keyValues(out)
	expect(t, kv, map[string]string{"limit": strconv.Itoa(48 << 20)})
	// Only the container's processes (as its pid namespace numbers them).
	if procs := strings.Fields(kv["procs"]); len(procs) == 0 || len(procs) > 5 || procs[0] != "1" {
		t.Errorf("cgroup.procs of the container's pids cgroup: %q, want sh (1) and its children", kv["procs"])
	}
	if !strings.Contains(kv["write"], "Read-only file system") {
		t.Errorf("writing the cgroup mount: %q, want EROFS", kv["write"])
	}
	if strings.HasSuffix(kv["cgroup"], ":/") {
		t.Errorf("without a cgroup namespace /proc/self/cgroup shows the root: %q", kv["cgroup"])
	}
	// The tmpfs holding the hierarchies and every bind in it are read-only,
	// nosuid, nodev and noexec.
	if !strings.Contains(kv["top"], "Read-only file system") {
		t.Errorf("mkdir in /sys/fs/cgroup: %q, want EROFS", kv["top"])
	}
	// Controllers mounted together are linked to their hierarchy, as on
	// the host (cpu -> cpu,cpuacct).
	for _, l := range hostComounted(t) {
		if !slices.Contains(strings.Fields(kv["comounted"]), l) {
			t.Errorf("links in the container's /sys/fs/cgroup: %q, want %s among them", kv["comounted"], l)
		}
	}
	for _, key := range []string{"flags", "topflags"} {
		for _, want := range []string{"ro", "nosuid", "nodev", "noexec"} {
			if !slices.Contains(strings.Split(kv[key], ","), want) {
				t.Errorf("mount options of %s: %q, want %s among them", key, kv[key], want)
			}
		}
	}
}

// memoryHog doubles a shell string until the memory limit stops it.
var memoryHog = shell(`x=0123456789abcdef; while :; do x=$x$x; done`)

func smallMemory(s *specs.Spec) {
	limit := int64(16 << 20)
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		s.Linux.Resources.Memory.Swap = &limit // no swap to escape to
	}
}

func TestCgroupOOM(t *testing.T) {
	t.Run("run", func(t *testing.T) {
		b := newBox(t, smallMemory, memoryHog)
		if _, stderr, code := b.run(); code != 128+int(syscall.SIGKILL) {
			t.Errorf("run of a container over its memory limit exited %d, want %d (OOM-killed)\nstderr: %s", code, 128+int(syscall.SIGKILL), stderr)
		}
	})
	t.Run("events", func(t *testing.T) {
		b := newBox(t, smallMemory, memoryHog)
		b.create()
		ev := startEvents(t, b, "--interval", "100ms")
		b.must("start", b.id)
		if !ev.waitFor("oom") {
			t.Fatalf("no oom event; events printed:\n%s", ev.lines())
		}
	})
}

// eventsProc is a running "events" command.
type eventsProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	types chan string
	seen  []string
}

// startEvents runs "events" for the box's container in the background,
// for at most 20 seconds; it is killed at the end of the test.
func startEvents(t *testing.T, b *box, flags ...string) *eventsProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	args := append(append([]string{"--root", b.root, "events"}, flags...), b.id)
	cmd := exec.CommandContext(ctx, testutil.RuntimeBinary(t), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &eventsProc{t: t, cmd: cmd, types: make(chan string, 1024)}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	go func() {
		defer close(e.types)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.ID != b.id {
				e.types <- "bad line: " + sc.Text()
				continue
			}
			e.types <- ev.Type
		}
	}()
	return e
}

// waitFor reads events until one of type typ, the end of the command, or
// 15 seconds.
func (e *eventsProc) waitFor(typ string) bool {
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ty, ok := <-e.types:
			if !ok {
				return false
			}
			e.seen = append(e.seen, ty)
			if ty == typ {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

func (e *eventsProc) lines() string { return strings.Join(e.seen, "\n") }

// TestCgroupUpdate changes the resources of a running container, by flags
// and by a resources file, and checks its cgroup files.
func TestCgroupUpdate(t *testing.T) {
	needV1(t)
	b := newBox(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "3600"} })
	pid := b.create()
	b.must("start", b.id)
	b.must("update", "--memory", "128m", "--memory-reservation", "64m", "--cpu-share", "256",
		"--cpu-quota", "20000", "--cpu-period", "100000", "--pids-limit", "42", "--cpuset-cpus", "0", b.id)
	dirs := cgroupDirs(t, pid)
	check := func(hier, file, want string) {
		t.Helper()
		if got := readTrimmed(t, filepath.Join(dirs["/sys/fs/cgroup/"+hier], file)); got != want {
			t.Errorf("%s = %s, want %s", file, got, want)
		}
	}
	check("memory", "memory.limit_in_bytes", strconv.Itoa(128<<20))
	check("memory", "memory.soft_limit_in_bytes", strconv.Itoa(64<<20))
	check("cpu", "cpu.shares", "256")
	check("cpu", "cpu.cfs_quota_us", "20000")
	check("cpu", "cpu.cfs_period_us", "100000")
	check("pids", "pids.max", "42")
	check("cpuset", "cpuset.cpus", "0")

	res := filepath.Join(t.TempDir(), "resources.json")
	data, err := json.Marshal(specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(96 << 20))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(17))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(res, data, 0o644); err != nil {
		t.Fatal(err)
	}
	b.must("update", "--resources", res, b.id)
	check("memory", "memory.limit_in_bytes", strconv.Itoa(96<<20))
	check("pids", "pids.max", "17")
	check("cpu", "cpu.shares", "256") // untouched by the second update
}

// TestEventsStats: the counters of "events --stats" move when the
// container works.
func TestEventsStats(t *testing.T) {
	sync := filepath.Join(hostDir(t), "fifo")
	if err := syscall.Mkfifo(sync, 0o666); err != nil {
		t.Fatal(err)
	}
	b := newBox(t, bindAt(filepath.Dir(sync), "/sync"),
		shell(`i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; x=$(head -c 4000000 /dev/zero | tr '\0' a); echo done > /sync/fifo; exec sleep 3600`))
	b.create()
	before := b.stats()
	if before.Pids.Current < 1 {
		t.Errorf("created container: pids.current %d, want init counted", before.Pids.Current)
	}
	b.must("start", b.id)
	// Wait for the container to finish its work: it writes to the fifo.
	done := make(chan error, 1)
	go func() {
		f, err := os.Open(sync)
		if err == nil {
			_, err = bufio.NewReader(f).ReadString('\n')
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the container did not finish its work")
	}
	after := b.stats()
	if after.CPU.Usage.Total <= before.CPU.Usage.Total {
		t.Errorf("cpu usage did not grow: %d -> %d", before.CPU.Usage.Total, after.CPU.Usage.Total)
	}
	if after.Memory.Usage.Max <= before.Memory.Usage.Max && after.Memory.Usage.Usage <= before.Memory.Usage.Usage {
		t.Errorf("memory usage did not grow: %+v -> %+v", before.Memory.Usage, after.Memory.Usage)
	}
	if after.Pids.Current < 1 {
		t.Errorf("running container: pids.current %d", after.Pids.Current)
	}
}

// statsData is the part of "events --stats" data the tests read.
type statsData struct {
	CPU struct {
		Usage struct {
			Total uint64 `json:"total"`
		} `json:"usage"`
	} `json:"cpu"`
	Memory struct {
		Usage struct {
			Usage uint64 `json:"usage"`
			Max   uint64 `json:"max"`
		} `json:"usage"`
	} `json:"memory"`
	Pids struct {
		Current uint64 `json:"current"`
	} `json:"pids"`
}

func (b *box) stats() statsData {
	b.t.Helper()
	out := b.must("events", "--stats", b.id)
	var ev struct {
		Type string    `json:"type"`
		ID   string    `json:"id"`
		Data statsData `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		b.t.Fatalf("events --stats: %v\n%s", err, out)
	}
	if ev.Type != "stats" || ev.ID != b.id {
		b.t.Fatalf("events --stats printed %q", out)
	}
	return ev.Data
}

// hostComounted lists the host's /sys/fs/cgroup links from a controller
// to the v1 hierarchy that mounts it with others, as "cpu:cpu,cpuacct".
func hostComounted(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, e := range entries {
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(filepath.Join("/sys/fs/cgroup", e.Name()))
		if err == nil && strings.Contains(target, ",") && !strings.Contains(target, "/") {
			links = append(links, e.Name()+":"+target)
		}
	}
	if len(links) == 0 {
		t.Log("the host links no controller to a shared v1 hierarchy: nothing to compare")
	}
	return links
}
