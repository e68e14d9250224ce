//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// A run starts once the machine is quiet: at most quietBusy of CPU time
// (all CPUs together) used in the last quietWindow, waiting at most
// quietLimit. Without it, what the previous run left running (the other
// engine's asynchronous clean-up: dockerd's and containerd's, the kernel's
// network namespace teardown) is charged to the next run, of whichever
// engine comes next.
const (
	quietWindow = 50 * time.Millisecond
	quietBusy   = 10 * time.Millisecond
	quietLimit  = 2 * time.Second
)

// settle waits until the machine is quiet (see quietWindow) or quietLimit
// passed; it fails only when ctx ends or /proc/stat cannot be read.
func settle(ctx context.Context) error {
	deadline := time.Now().Add(quietLimit)
	prev, err := busyTime()
	if err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(quietWindow):
		}
		cur, err := busyTime()
		if err != nil {
			return err
		}
		if cur-prev <= quietBusy || time.Now().After(deadline) {
			return nil
		}
		prev = cur
	}
}

// busyTime is the CPU time all CPUs spent not idle since boot, from the
// first line of /proc/stat (in USER_HZ ticks of 10 ms).
func busyTime() (time.Duration, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy int64
	// user nice system idle iowait irq softirq steal guest...: the first
	// seven less idle and iowait (steal is other machines' work).
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 7 {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond, nil
}
