//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/bench/internal/timing"
)

// The trace shows where a container's start goes in each engine: it runs
// API runs of `true` (--network none) under `perf record` of the
// scheduler's fork, exec and exit tracepoints, host-wide, and places every
// exec and exit in the daemon's process tree (shims, runtimes, the
// container's init and process, hooks) on the run's time line. The bench
// marks the time line by exec'ing symlinks to /bin/true named after the
// moment (create, start, started, waited, removed) just before sending a
// request or just after its answer, so that perf's own clock orders
// everything.

// markNames are the moments of one traced run, in order.
var markNames = []string{"create", "start", "started", "waited", "removed"}

// traceEvent is one exec or exit in a daemon's process tree.
type traceEvent struct {
	at    time.Duration // perf's clock
	label string        // "exec berth-shim", "exit runc"...
}

// traceRun is one traced run: its marks and the tree's events between
// them.
type traceRun struct {
	marks  map[string]time.Duration
	events []traceEvent
}

// trace runs n traced API runs on each engine and prints the median time
// line of each.
func (b *bench) trace(ctx context.Context, n int) error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("-trace needs perf (Debian's linux-perf): %w", err)
	}
	markDir := filepath.Join(b.dir, "mark")
	if err := os.MkdirAll(markDir, 0o755); err != nil {
		return err
	}
	for _, m := range markNames {
		if err := os.Symlink("/bin/true", filepath.Join(markDir, m)); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	mark := func(name string) error {
		return exec.Command(filepath.Join(markDir, name)).Run()
	}
	for _, e := range b.engines {
		data := filepath.Join(b.dir, "perf-"+e.name+".data")
		rec, err := startPerf(ctx, perf, data, filepath.Join(b.dir, "perf-"+e.name))
		if err != nil {
			return err
		}
		var runErr error
		for i := 0; i < n && runErr == nil; i++ {
			runErr = b.tracedRun(ctx, e, mark)
		}
		if err := rec.stop(); err != nil && runErr == nil {
			runErr = err
		}
		if runErr != nil {
			return fmt.Errorf("%s: %w", e.name, runErr)
		}
		out, err := exec.Command(perf, "script", "-i", data, "-F", "pid,time,event,trace").Output()
		if err != nil {
			return fmt.Errorf("perf script: %w", err)
		}
		var roots []int
		for _, d := range e.daemons() {
			roots = append(roots, d.pid)
		}
		runs, err := parseTrace(out, roots, markDir)
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		printTrace(e.name, runs)
		_ = os.Remove(data)
	}
	return nil
}

// perfRecord is a running `perf record` of the scheduler's process
// tracepoints, host-wide.
type perfRecord struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

// startPerf starts perf record into data with its events disabled, then
// enables them through its control fifo (prefix.ctl, prefix.ack) and
// returns once perf acknowledged: from then on every event is recorded.
func startPerf(ctx context.Context, perf, data, prefix string) (*perfRecord, error) {
	ctl, ack := prefix+".ctl", prefix+".ack"
	for _, f := range []string{ctl, ack} {
		if err := unix.Mkfifo(f, 0o600); err != nil {
			return nil, fmt.Errorf("make perf control fifo: %w", err)
		}
	}
	p := &perfRecord{done: make(chan error, 1)}
	p.cmd = exec.Command(perf, "record", "-q", "-o", data, "-a", "-D", "-1",
		"--control", "fifo:"+ctl+","+ack,
		"-e", "sched:sched_process_fork", "-e", "sched:sched_process_exec", "-e", "sched:sched_process_exit")
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf record: %w", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	enabled := make(chan error, 1)
	go func() {
		// Each open waits until perf has opened its end.
		c, err := os.OpenFile(ctl, os.O_WRONLY, 0)
		if err != nil {
			enabled <- err
			return
		}
		defer c.Close()
		a, err := os.Open(ack)
		if err != nil {
			enabled <- err
			return
		}
		defer a.Close()
		if _, err := c.WriteString("enable\n"); err != nil {
			enabled <- err
			return
		}
		buf := make([]byte, 16)
		n, err := a.Read(buf)
		if err == nil && !strings.HasPrefix(string(buf[:n]), "ack") {
			err = fmt.Errorf("perf answered %q to enable", buf[:n])
		}
		enabled <- err
	}()
	select {
	case err := <-enabled:
		if err != nil {
			return nil, errors.Join(fmt.Errorf("enable perf record: %w", err), p.stop())
		}
		return p, nil
	case err := <-p.done:
		p.done <- err
		return nil, fmt.Errorf("perf record exited: %v: %s", err, bytes.TrimSpace(p.stderr.Bytes()))
	case <-time.After(30 * time.Second):
		return nil, errors.Join(errors.New("perf record did not acknowledge enable in 30s"), p.stop())
	case <-ctx.Done():
		return nil, errors.Join(ctx.Err(), p.stop())
	}
}

// stop ends perf record (SIGINT makes it write its file) and waits for it.
func (p *perfRecord) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		// With its events enabled through the control fifo, perf ends
		// by the signal itself once it has written its data; perf
		// script then tells whether the file is whole.
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("perf record: %w: %s", err, bytes.TrimSpace(p.stderr.Bytes()))
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("perf record did not exit in 30s after SIGINT: killed")
	}
}

// tracedRun is one API run of `true` with its marks.
func (b *bench) tracedRun(ctx context.Context, e *engine, mark func(string) error) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.timeout)
	defer cancel()
	if err := mark("create"); err != nil {
		return err
	}
	id, err := e.api.create(ctx, imageRef, []string{"true"}, "none", b.labels())
	if err != nil {
		return err
	}
	if err := mark("start"); err != nil {
		return err
	}
	if err := e.api.start(ctx, id); err != nil {
		return err
	}
	if err := mark("started"); err != nil {
		return err
	}
	if _, err := e.api.wait(ctx, id); err != nil {
		return err
	}
	if err := mark("waited"); err != nil {
		return err
	}
	if err := e.api.remove(ctx, id, false); err != nil {
		return err
	}
	return mark("removed")
}

// perfLine is a line of `perf script -F pid,time,event,trace`:
// "  1234 12345.678901: sched:sched_process_exec: filename=/bin/true pid=1234 old_pid=1234".
var perfLine = regexp.MustCompile(`^\s*(\d+)\s+([\d.]+):\s+sched:(\w+):\s+(.*)$`)

// parseTrace splits perf's events into runs (by their marks) and keeps the
// execs and process exits of the processes descending from roots.
func parseTrace(out []byte, roots []int, markDir string) ([]traceRun, error) {
	tree := map[int]bool{}
	for _, r := range roots {
		tree[r] = true
	}
	names := map[int]string{} // the file each process last exec'd
	var runs []traceRun
	var cur *traceRun
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		sec, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		at := time.Duration(sec * float64(time.Second))
		fields := traceFields(m[4])
		switch m[3] {
		case "sched_process_fork":
			if child, err := strconv.Atoi(fields["child_pid"]); err == nil && tree[pid] {
				tree[child] = true // threads too: harmless
			}
		case "sched_process_exec":
			file := fields["filename"]
			if filepath.Dir(file) == markDir {
				name := filepath.Base(file)
				if name == "create" {
					runs = append(runs, traceRun{marks: map[string]time.Duration{}})
					cur = &runs[len(runs)-1]
				}
				if cur != nil {
					cur.marks[name] = at
				}
				continue
			}
			if tree[pid] && !slices.Contains(roots, pid) {
				names[pid] = filepath.Base(file)
				if cur != nil {
					cur.events = append(cur.events, traceEvent{at, "exec " + names[pid]})
				}
			}
		case "sched_process_exit":
			if tree[pid] && !slices.Contains(roots, pid) && fields["group_dead"] == "true" && cur != nil {
				name := names[pid]
				if name == "" {
					name = fields["comm"] + " (forked)"
				}
				cur.events = append(cur.events, traceEvent{at, "exit " + name})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var complete []traceRun
	for _, r := range runs {
		if len(r.marks) == len(markNames) {
			complete = append(complete, r)
		}
	}
	if len(complete) == 0 {
		return nil, errors.New("perf recorded no complete run")
	}
	return complete, nil
}

// traceFields parses "k=v k=v" (a value ends at the next space).
func traceFields(s string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

// printTrace prints the median time, relative to the start request, of
// each mark and of the k-th occurrence of each event, in time order.
func printTrace(engine string, runs []traceRun) {
	at := map[string][]time.Duration{}
	for _, r := range runs {
		start := r.marks["start"]
		for name, t := range r.marks {
			at["[API] "+name] = append(at["[API] "+name], t-start)
		}
		seen := map[string]int{}
		for _, e := range r.events {
			if e.at < r.marks["create"] || e.at > r.marks["removed"] {
				continue
			}
			seen[e.label]++
			key := fmt.Sprintf("%s #%d", e.label, seen[e.label])
			at[key] = append(at[key], e.at-start)
		}
	}
	keys := make([]string, 0, len(at))
	for k := range at {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return int(timing.Median(at[a]) - timing.Median(at[b])) })
	fmt.Printf("trace-%s: process time line of %d API runs of `true` (--network none), median ms after the start request (markers [API]: request sent or answer received)\n", engine, len(runs))
	for _, k := range keys {
		fmt.Printf("  %+8.1f  %-40s (in %d of %d runs)\n", float64(timing.Median(at[k]))/float64(time.Millisecond), k, len(at[k]), len(runs))
	}
	fmt.Println()
}
