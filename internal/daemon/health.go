package daemon

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	api "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/shim"
)

// Docker's health check defaults and bounds.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	// healthLogEntries is how many results Health.Log keeps.
	healthLogEntries = 5
	// probeOutputMax bounds the output kept of one probe.
	probeOutputMax = 4096
	// probeCleanupTimeout bounds killing and forgetting a probe that ran
	// too long.
	probeCleanupTimeout = 10 * time.Second
)

// initialHealth is the health state of a container at start: "starting"
// when it has a health check that a checker runs (see probeCommand), nil
// when not.
func initialHealth(c *container.Container) *api.Health {
	if _, ok := probeCommand(c.Config.Healthcheck, c.Config.Shell); !ok {
		return nil
	}
	return &api.Health{Status: api.Starting}
}

// noProbeCommand is the result of each probe of a "CMD" test without a
// command.
const noProbeCommand = "health check has no command to run"

// probeCommand returns the command of a health check's test and whether a
// checker runs it, decided as Docker does by the test's kind: "CMD" runs
// its arguments, "CMD-SHELL" its arguments after the container's shell
// (default /bin/sh -c). "NONE", no test or an unknown kind (which Docker
// ignores) run nothing and give the container no health state. A "CMD"
// without arguments still runs: each of its probes fails.
func probeCommand(hc *api.HealthConfig, shell []string) ([]string, bool) {
	if hc == nil || len(hc.Test) == 0 {
		return nil, false
	}
	switch hc.Test[0] {
	case "CMD":
		return slices.Clone(hc.Test[1:]), true
	case "CMD-SHELL":
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(slices.Clone(shell), hc.Test[1:]...), true
	}
	return nil, false
}

// healthPolicy is a health check's timing with Docker's defaults filled in.
type healthPolicy struct {
	interval, timeout          time.Duration
	startPeriod, startInterval time.Duration
	retries                    int
}

func policyOf(hc *api.HealthConfig) healthPolicy {
	or := func(v, def time.Duration) time.Duration {
		if v <= 0 {
			return def
		}
		return v
	}
	p := healthPolicy{
		interval:      or(hc.Interval, defaultProbeInterval),
		timeout:       or(hc.Timeout, defaultProbeTimeout),
		startPeriod:   or(hc.StartPeriod, 0),
		startInterval: or(hc.StartInterval, defaultStartInterval),
		retries:       hc.Retries,
	}
	if p.retries <= 0 {
		p.retries = defaultProbeRetries
	}
	return p
}

// next is the wait before the next probe: the start interval while the
// container is starting within its start period, else the interval.
func (p healthPolicy) next(status api.HealthStatus, sinceStart time.Duration) time.Duration {
	if sinceStart < p.startPeriod && status == api.Starting {
		return p.startInterval
	}
	return p.interval
}

// applyProbeResult records r in h as Docker does and reports whether the
// status changed: a success makes the container healthy; a failure
// counts towards retries, except while the container is starting within
// its start period; retries failures in a row make it unhealthy.
func applyProbeResult(h *api.Health, r *api.HealthcheckResult, p healthPolicy, startedAt time.Time) bool {
	old := h.Status
	h.Log = append(h.Log, r)
	if n := len(h.Log); n > healthLogEntries {
		h.Log = slices.Clone(h.Log[n-healthLogEntries:])
	}
	if r.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = api.Healthy
		return old != h.Status
	}
	if h.Status == api.Starting && r.Start.Sub(startedAt) < p.startPeriod {
		return false
	}
	h.FailingStreak++
	if h.FailingStreak >= p.retries {
		h.Status = api.Unhealthy
	}
	return old != h.Status
}

// startHealthCheck starts the health checker of a running container (at
// its start, and again when a restarted daemon restores it); e.mu is held.
// The checker keeps the recorded health and goes on from it.
func (d *Daemon) startHealthCheck(e *ctrEntry) {
	c := e.c
	cmd, ok := probeCommand(c.Config.Healthcheck, c.Config.Shell)
	if !ok || e.shim == nil || !c.State.Running() {
		return
	}
	d.stopHealthCheck(e)
	if c.State.Health == nil {
		c.State.Health = &api.Health{Status: api.Starting}
	}
	ctx, cancel := context.WithCancel(d.runCtx)
	e.healthCancel = cancel
	chk := &healthChecker{
		d: d, e: e, cl: e.shim, cmd: cmd,
		policy:    policyOf(c.Config.Healthcheck),
		startedAt: c.State.StartedAt,
		bundle:    d.bundleDir(c.ID),
		ctrEnv:    slices.Clone(c.Config.Env),
	}
	d.wg.Add(1)
	go chk.run(ctx)
}

// stopHealthCheck stops it; e.mu is held.
func (d *Daemon) stopHealthCheck(e *ctrEntry) {
	if e.healthCancel != nil {
		e.healthCancel()
		e.healthCancel = nil
	}
}

// healthChecker probes one run of a container.
type healthChecker struct {
	d         *Daemon
	e         *ctrEntry
	cl        *shim.Client
	cmd       []string
	policy    healthPolicy
	startedAt time.Time
	bundle    string
	ctrEnv    []string
	// proc is the probe's process, made at the first probe.
	proc *specs.Process
}

// run probes until ctx ends. Its results change e only while ctx is live,
// which stopHealthCheck (under e.mu) ends.
func (h *healthChecker) run(ctx context.Context) {
	defer h.d.wg.Done()
	e := h.e
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.mu.Lock()
		status := api.Starting
		if e.c.State.Health != nil {
			status = e.c.State.Health.Status
		}
		e.mu.Unlock()
		timer.Reset(h.policy.next(status, time.Since(h.startedAt)))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		e.mu.Lock()
		paused := e.c.State.Status == api.StatePaused
		e.mu.Unlock()
		if paused {
			continue // a frozen container cannot run a probe
		}
		r := h.probe(ctx)
		if r == nil {
			return
		}
		e.mu.Lock()
		if ctx.Err() != nil || e.c.State.Health == nil {
			e.mu.Unlock()
			return
		}
		health := e.c.State.Health
		changed := applyProbeResult(health, r, h.policy, h.startedAt)
		if err := h.d.save(e); err != nil {
			log.G(ctx).Warn("record health check result", "container", e.c.ID, "error", err)
		}
		if changed {
			h.d.publishContainer("health_status: "+string(health.Status), e.c, nil)
		}
		e.mu.Unlock()
	}
}

// probe runs the health check once, as an exec that is not listed among
// the container's execs (but has Docker's exec events), and returns its
// result; nil when ctx ended meanwhile.
func (h *healthChecker) probe(ctx context.Context) *api.HealthcheckResult {
	start := time.Now()
	fail := func(msg string) *api.HealthcheckResult {
		return &api.HealthcheckResult{Start: start, End: time.Now(), ExitCode: -1, Output: msg}
	}
	if len(h.cmd) == 0 {
		return fail(noProbeCommand)
	}
	if h.proc == nil {
		base, err := readRunProcess(h.bundle)
		if err != nil {
			return fail(err.Error())
		}
		h.proc = execProcess(base, h.ctrEnv, ExecCreateOptions{Cmd: h.cmd}, nil, nil, nil)
	}
	id := container.NewID()
	h.event(execAction("exec_create", h.cmd), id, nil)
	h.event(execAction("exec_start", h.cmd), id, nil)
	out := &probeOutput{}
	if err := h.cl.Exec(ctx, id, h.proc, shim.ExecIO{Stdout: out, Stderr: out}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		h.event("exec_die", id, map[string]string{"exitCode": fmt.Sprint(execStartFailedCode)})
		return fail(err.Error())
	}
	tctx, cancel := context.WithTimeout(ctx, h.policy.timeout)
	st, err := h.cl.ExecWait(tctx, id)
	timedOut := tctx.Err() == context.DeadlineExceeded
	cancel()
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), probeCleanupTimeout)
	defer ccancel()
	if err != nil {
		// Kill it and wait for it, so that slow probes do not pile up.
		h.cl.ExecKill(cctx, id, syscall.SIGKILL)
		var werr error
		if st, werr = h.cl.ExecWait(cctx, id); werr != nil {
			st.Code = lostExecCode
		}
	}
	h.cl.ExecDelete(cctx, id)
	h.event("exec_die", id, map[string]string{"exitCode": fmt.Sprint(st.Code)})
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil && timedOut:
		msg := fmt.Sprintf("Health check exceeded timeout (%v)", h.policy.timeout)
		if o := out.String(); o != "" {
			msg += ": " + o
		}
		return fail(msg)
	case err != nil:
		return fail(err.Error())
	}
	return &api.HealthcheckResult{Start: start, End: time.Now(), ExitCode: st.Code, Output: out.String()}
}

// event publishes an exec event of a probe.
func (h *healthChecker) event(action, id string, extra map[string]string) {
	attrs := map[string]string{"execID": id}
	for k, v := range extra {
		attrs[k] = v
	}
	h.e.mu.Lock()
	h.d.publishContainer(action, h.e.c, attrs)
	h.e.mu.Unlock()
}

// probeOutput keeps the first probeOutputMax bytes written to it (both
// streams of a probe) and notes that more came.
type probeOutput struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

func (o *probeOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	keep := min(len(p), probeOutputMax-o.buf.Len())
	o.buf.Write(p[:keep])
	if keep < len(p) {
		o.truncated = true
	}
	return len(p), nil
}

// String is the kept output, with "..." when some was cut.
func (o *probeOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.truncated {
		return o.buf.String() + "..."
	}
	return o.buf.String()
}
