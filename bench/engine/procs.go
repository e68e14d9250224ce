//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// memory is a process's resident memory: RSS (every page it maps that is
// in memory, shared ones in full), PSS (shared pages divided among their
// users) and private (pages no other process maps: what one more process
// of the same binary costs), in bytes.
type memory struct {
	rss, pss, private int64
}

// memoryOf reads pid's RSS from /proc/<pid>/status and PSS and private
// pages from /proc/<pid>/smaps_rollup.
func memoryOf(pid int) (memory, error) {
	var m memory
	var err error
	if m.rss, err = kbField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:"); err != nil {
		return m, err
	}
	rollup := fmt.Sprintf("/proc/%d/smaps_rollup", pid)
	if m.pss, err = kbField(rollup, "Pss:"); err != nil {
		return m, err
	}
	clean, err := kbField(rollup, "Private_Clean:")
	if err != nil {
		return m, err
	}
	dirty, err := kbField(rollup, "Private_Dirty:")
	if err != nil {
		return m, err
	}
	m.private = clean + dirty
	return m, nil
}

// kbField returns the "<key> N kB" line of a /proc file in bytes.
func kbField(path, key string) (int64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == key {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s: %w", path, key, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// cpuTime returns the user+system CPU time pid has used.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses; utime
	// and stime are fields 14 and 15 of stat(5), the slice starts at 3.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	const userHZ = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration(ticks) * time.Second / userHZ, nil
}
