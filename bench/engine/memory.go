//go:build linux

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-project/berth/bench/internal/host"
)

const (
	// idleWindow and idleCPU define idle: the daemon's processes and
	// shims used at most idleCPU of CPU time over idleWindow.
	idleWindow = time.Second
	idleCPU    = 20 * time.Millisecond
	// idleLimit bounds the wait for idle; the sample is then taken anyway
	// and marked.
	idleLimit = 20 * time.Second
)

// memSample is the resident memory of one engine's processes.
type memSample struct {
	daemons []namedMemory // berthd; dockerd, containerd
	shims   []memory      // one per container
	notIdle bool          // the engine was still busy after idleLimit
}

type namedMemory struct {
	name string
	memory
}

// daemonRSS is the sum of the daemons' RSS.
func (s memSample) daemonRSS() int64 {
	var n int64
	for _, d := range s.daemons {
		n += d.rss
	}
	return n
}

// shimStats returns the sum, max and mean of the shims' RSS, the sum of
// their PSS and the largest private part.
func (s memSample) shimStats() (sum, maxRSS, mean, pss, maxPrivate int64) {
	for _, m := range s.shims {
		sum += m.rss
		maxRSS = max(maxRSS, m.rss)
		pss += m.pss
		maxPrivate = max(maxPrivate, m.private)
	}
	if len(s.shims) > 0 {
		mean = sum / int64(len(s.shims))
	}
	return sum, maxRSS, mean, pss, maxPrivate
}

// sampleMemory waits until e's daemons and shims are idle (see idleCPU),
// then reads their RSS and PSS.
func (b *bench) sampleMemory(ctx context.Context, e *engine) (memSample, error) {
	var s memSample
	busy := func() (time.Duration, error) {
		var total time.Duration
		pids, err := host.PidsOf(e.shim)
		if err != nil {
			return 0, err
		}
		for _, d := range e.daemons() {
			pids = append(pids, d.pid)
		}
		for _, pid := range pids {
			t, err := cpuTime(pid)
			if err == nil { // a process may exit meanwhile
				total += t
			}
		}
		return total, nil
	}
	deadline := time.Now().Add(idleLimit)
	prev, err := busy()
	if err != nil {
		return s, err
	}
	for {
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(idleWindow):
		}
		cur, err := busy()
		if err != nil {
			return s, err
		}
		if cur-prev <= idleCPU {
			break
		}
		if time.Now().After(deadline) {
			s.notIdle = true
			break
		}
		prev = cur
	}
	for _, d := range e.daemons() {
		m, err := memoryOf(d.pid)
		if err != nil {
			return s, fmt.Errorf("%s memory: %w", d.name, err)
		}
		s.daemons = append(s.daemons, namedMemory{d.name, m})
	}
	pids, err := host.PidsOf(e.shim)
	if err != nil {
		return s, err
	}
	for _, pid := range pids {
		m, err := memoryOf(pid)
		if err != nil {
			return s, fmt.Errorf("shim %d memory: %w", pid, err)
		}
		s.shims = append(s.shims, m)
	}
	return s, nil
}
