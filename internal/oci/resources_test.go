//go:build linux

package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// checkEqual fails the test when got and want differ, showing both as JSON.
func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s:\n got  %s\n want %s", what, g, w)
	}
}

// loopDevice returns a block device node for the blkio tests: one made in
// a temporary directory (the conversion only stats it), so the test needs
// no particular disk on the machine.
func loopDevice(t *testing.T) (string, int64, int64) {
	t.Helper()
	const major, minor = 7, 42
	p := filepath.Join(t.TempDir(), "blk")
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatalf("mknod a block device node (tests run as root): %v", err)
	}
	return p, major, minor
}

func TestResources(t *testing.T) {
	dev, major, minor := loopDevice(t)
	blk := func(m, n int64) specs.LinuxBlockIODevice { return specs.LinuxBlockIODevice{Major: m, Minor: n} }
	for _, tc := range []struct {
		name string
		in   container.Resources
		want specs.LinuxResources
	}{
		{"nothing set", container.Resources{}, specs.LinuxResources{}},
		{"memory", container.Resources{Memory: 64 << 20},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}}},
		{"memory and swap", container.Resources{Memory: 64 << 20, MemorySwap: 128 << 20},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20))}}},
		{"unlimited swap", container.Resources{Memory: 64 << 20, MemorySwap: -1},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(-1))}}},
		{"reservation", container.Resources{MemoryReservation: 32 << 20},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Reservation: ptr(int64(32 << 20))}}},
		{"swappiness", container.Resources{MemorySwappiness: ptr(int64(0))},
			specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr(uint64(0))}}},
		{"swappiness -1 is unset", container.Resources{MemorySwappiness: ptr(int64(-1))}, specs.LinuxResources{}},
		{"oom kill disable", container.Resources{OomKillDisable: ptr(true)},
			specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: ptr(true)}}},
		{"nano cpus", container.Resources{NanoCPUs: 1500000000},
			specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr(uint64(100000)), Quota: ptr(int64(150000))}}},
		{"cpu shares", container.Resources{CPUShares: 512}, specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(512))}}},
		{"cpu quota and period", container.Resources{CPUQuota: 50000, CPUPeriod: 200000},
			specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr(uint64(200000)), Quota: ptr(int64(50000))}}},
		{"realtime", container.Resources{CPURealtimePeriod: 1000000, CPURealtimeRuntime: 950000},
			specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimePeriod: ptr(uint64(1000000)), RealtimeRuntime: ptr(int64(950000))}}},
		{"cpuset", container.Resources{CpusetCpus: "0-1,3", CpusetMems: "0"},
			specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-1,3", Mems: "0"}}},
		{"pids limit", container.Resources{PidsLimit: ptr(int64(100))}, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(100))}}},
		{"pids limit 0 is unlimited", container.Resources{PidsLimit: ptr(int64(0))}, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}}},
		{"pids limit -1 is unlimited", container.Resources{PidsLimit: ptr(int64(-1))}, specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}}},
		{"blkio weight", container.Resources{BlkioWeight: 300}, specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(300))}}},
		{"blkio devices", container.Resources{
			BlkioWeightDevice:    []*blkiodev.WeightDevice{{Path: dev, Weight: 200}},
			BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{{Path: dev, Rate: 1 << 20}},
			BlkioDeviceWriteBps:  []*blkiodev.ThrottleDevice{{Path: dev, Rate: 2 << 20}},
			BlkioDeviceReadIOps:  []*blkiodev.ThrottleDevice{{Path: dev, Rate: 100}},
			BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{{Path: dev, Rate: 200}},
		}, specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: blk(major, minor), Weight: ptr(uint16(200))}},
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: blk(major, minor), Rate: 1 << 20}},
			ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: blk(major, minor), Rate: 2 << 20}},
			ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: blk(major, minor), Rate: 100}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: blk(major, minor), Rate: 200}},
		}}},
		{"ulimits and devices are not cgroup resources", container.Resources{
			Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1, Hard: 2}}, DeviceCgroupRules: []string{"c 1:3 rwm"},
		}, specs.LinuxResources{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resources(&tc.in)
			if err != nil {
				t.Fatal(err)
			}
			checkEqual(t, "resources", got, &tc.want)
		})
	}
	if got, err := Resources(nil); err != nil || !reflect.DeepEqual(got, &specs.LinuxResources{}) {
		t.Errorf("Resources(nil) = %+v, %v; want empty resources", got, err)
	}
}

func TestResourcesErrors(t *testing.T) {
	ncpu := runtime.NumCPU()
	notBlock, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	notBlock.Close()
	for _, tc := range []struct {
		in   container.Resources
		want string
	}{
		{container.Resources{Memory: 4 << 20}, "Minimum memory limit allowed is 6MB"},
		{container.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{container.Resources{MemorySwap: -2}, "invalid memory swap limit -2: use -1 for unlimited swap"},
		{container.Resources{MemoryReservation: 1 << 20}, "Minimum memory reservation allowed is 6MB"},
		{container.Resources{Memory: 16 << 20, MemoryReservation: 32 << 20}, "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{container.Resources{MemorySwappiness: ptr(int64(101))}, "Invalid value: 101, valid memory swappiness range is 0-100"},
		{container.Resources{NanoCPUs: 1e9, CPUPeriod: 100000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{container.Resources{NanoCPUs: 1e9, CPUQuota: 50000}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{container.Resources{NanoCPUs: int64(ncpu+1) * 1e9}, fmt.Sprintf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", ncpu, ncpu)},
		{container.Resources{CPUShares: -1}, "shares: invalid argument"},
		{container.Resources{CPUPeriod: 999}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{container.Resources{CPUQuota: 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"},
		{container.Resources{CPURealtimePeriod: 1000, CPURealtimeRuntime: 2000}, "cpu-rt-runtime cannot be higher than cpu-rt-period"},
		{container.Resources{CpusetCpus: "0-a"}, "Invalid value 0-a for cpuset cpus: invalid format: 0-a"},
		{container.Resources{CpusetMems: "3-1"}, "Invalid value 3-1 for cpuset mems: invalid format: 3-1"},
		{container.Resources{BlkioWeight: 5}, "Range of blkio weight is from 10 to 1000"},
		{container.Resources{BlkioWeightDevice: []*blkiodev.WeightDevice{{Path: "/dev/null", Weight: 5000}}}, "invalid weight for device /dev/null: 5000, the range is from 10 to 1000"},
		{container.Resources{BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{{Path: "/dev/nonexistent", Rate: 1}}}, "blkio read bps device: stat /dev/nonexistent: no such file or directory"},
		{container.Resources{BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{{Path: notBlock.Name(), Rate: 1}}}, "blkio write iops device: " + notBlock.Name() + " is not a block device"},
		{container.Resources{IOMaximumIOps: 10}, "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps"},
	} {
		_, err := Resources(&tc.in)
		if err == nil || err.Error() != tc.want || !errdefs.IsInvalidArgument(err) {
			t.Errorf("Resources(%+v): error %v, want invalid argument %q", tc.in, err, tc.want)
		}
	}
}
