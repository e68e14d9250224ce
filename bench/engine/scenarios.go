//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// scenario is one measured operation, run on every engine.
type scenario struct {
	name    string
	client  string // "cli": the docker CLI; "api": net/http on the socket
	network string // "none" or "default" (no --network: the default bridge)
	many    bool   // start count containers at once instead of one run --rm
	floor   bool   // no container: `docker version`, the CLI's own cost
	// throughput: not a start time but 1 GiB through a published port,
	// from the host's 127.0.0.1 to a container (issue 5)
	throughput bool
}

var allScenarios = []scenario{
	{name: "cli-floor", client: "cli", floor: true},
	{name: "run-cli-none", client: "cli", network: "none"},
	{name: "run-api-none", client: "api", network: "none"},
	{name: "run-cli-default", client: "cli", network: "default"},
	{name: "run-api-default", client: "api", network: "default"},
	{name: "many-cli-none", client: "cli", network: "none", many: true},
	{name: "many-api-none", client: "api", network: "none", many: true},
	{name: "many-cli-default", client: "cli", network: "default", many: true},
	{name: "many-api-default", client: "api", network: "default", many: true},
	{name: "port-throughput", client: "cli", network: "default", throughput: true},
}

// The phases of an API run and of a container in an API "many" round.
var (
	runPhases  = []string{"create", "start", "wait", "remove"}
	manyPhases = []string{"create", "start"}
)

// result is one engine's measurements in one scenario.
type result struct {
	engine string
	wall   []time.Duration            // one per measured run or round
	phases map[string][]time.Duration // API scenarios: per phase
	mem    []memSample                // "many" scenarios: one per round
	err    error                      // the failure that stopped it, if any
}

// runScenario runs sc's warm-up and measured rounds on every engine,
// interleaved (berth, docker, berth, docker, ...). An engine that fails
// drops out of the scenario with its error; the others go on.
func (b *bench) runScenario(ctx context.Context, sc scenario) []*result {
	results := make([]*result, len(b.engines))
	for i, e := range b.engines {
		results[i] = &result{engine: e.name, phases: map[string][]time.Duration{}}
	}
	warmup, runs := b.opts.warmup, b.opts.runs
	if sc.many || sc.throughput {
		warmup, runs = min(warmup, 1), b.opts.rounds
	}
	for round := -warmup; round < runs; round++ {
		for i, e := range b.engines {
			res := results[i]
			if res.err != nil || ctx.Err() != nil {
				continue
			}
			err := settle(ctx)
			switch {
			case err != nil:
			case sc.throughput:
				err = b.throughput(ctx, e, res, round >= 0)
			case sc.many:
				err = b.many(ctx, e, sc, res, round >= 0)
			default:
				err = b.once(ctx, e, sc, res, round >= 0)
			}
			if err != nil {
				res.err = fmt.Errorf("after %d measured runs: %w", len(res.wall), err)
				// Clean up even when interrupted, but not forever: a
				// wedged daemon is stopped by the final clean-up.
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
				if rerr := b.removeAll(rctx, e); rerr != nil {
					res.err = errors.Join(res.err, fmt.Errorf("clean up: %w", rerr))
				}
				cancel()
			}
		}
	}
	if ctx.Err() != nil {
		for _, r := range results {
			if r.err == nil {
				r.err = fmt.Errorf("interrupted: %w", ctx.Err())
			}
		}
	}
	return results
}

// once runs one container running `true` to its end and removes it:
// `docker run --rm` through the CLI, or create, start, wait and remove
// through the API, each phase timed; or, for the floor, `docker version`.
func (b *bench) once(ctx context.Context, e *engine, sc scenario, res *result, record bool) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.timeout)
	defer cancel()
	if sc.client == "cli" {
		args := []string{"version", "--format", "{{.Server.Version}}"}
		if !sc.floor {
			args = []string{"run", "--rm", "--label", b.label}
			if sc.network == "none" {
				args = append(args, "--network", "none")
			}
			args = append(args, imageRef, "true")
		}
		start := time.Now()
		_, err := e.cli.Run(ctx, args...)
		wall := time.Since(start)
		if err != nil {
			return err
		}
		if record {
			res.wall = append(res.wall, wall)
		}
		return nil
	}
	t0 := time.Now()
	id, err := e.api.create(ctx, imageRef, []string{"true"}, sc.network, b.labels())
	if err != nil {
		return err
	}
	t1 := time.Now()
	if err := e.api.start(ctx, id); err != nil {
		return err
	}
	t2 := time.Now()
	code, err := e.api.wait(ctx, id)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("container %s exited %d, want 0", id, code)
	}
	t3 := time.Now()
	if err := e.api.remove(ctx, id, false); err != nil {
		return err
	}
	t4 := time.Now()
	times := []time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)}
	if record {
		res.wall = append(res.wall, t4.Sub(t0))
		for i, p := range runPhases {
			res.phases[p] = append(res.phases[p], times[i])
		}
	}
	return nil
}

// labels is the bench's label as an API label map.
func (b *bench) labels() map[string]string {
	k, v, _ := strings.Cut(b.label, "=")
	return map[string]string{k: v}
}

// many starts b.opts.count containers running `sleep 1000` at once
// (`docker run -d` processes, or create+start API calls, one goroutine
// each) and times until all have returned, that is until all run; then it
// checks that all are running, samples the engine's memory once it is
// idle and removes them (neither is timed).
func (b *bench) many(ctx context.Context, e *engine, sc scenario, res *result, record bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*b.opts.timeout)
	defer cancel()
	n := b.opts.count
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		creates []time.Duration
		starts  []time.Duration
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	ready := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			if sc.client == "cli" {
				args := []string{"run", "-d", "--label", b.label}
				if sc.network == "none" {
					args = append(args, "--network", "none")
				}
				if _, err := e.cli.Run(ctx, append(args, imageRef, "sleep", "1000")...); err != nil {
					fail(err)
				}
				return
			}
			t0 := time.Now()
			id, err := e.api.create(ctx, imageRef, []string{"sleep", "1000"}, sc.network, b.labels())
			if err != nil {
				fail(err)
				return
			}
			t1 := time.Now()
			if err := e.api.start(ctx, id); err != nil {
				fail(err)
				return
			}
			t2 := time.Now()
			mu.Lock()
			creates, starts = append(creates, t1.Sub(t0)), append(starts, t2.Sub(t1))
			mu.Unlock()
		}()
	}
	start := time.Now()
	close(ready)
	wg.Wait()
	wall := time.Since(start)
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d failed: %w", len(errs), n, errs[0])
	}
	cs, err := e.api.list(ctx, b.label)
	if err != nil {
		return err
	}
	running := 0
	for _, c := range cs {
		if c.State == "running" {
			running++
		}
	}
	if running != n || len(cs) != n {
		return fmt.Errorf("%d containers, %d running after all starts returned, want %d running", len(cs), running, n)
	}
	if record {
		m, err := b.sampleMemory(ctx, e)
		if err != nil {
			return err
		}
		if len(m.shims) != n {
			return fmt.Errorf("found %d shims for %d containers", len(m.shims), n)
		}
		res.wall = append(res.wall, wall)
		res.mem = append(res.mem, m)
		res.phases["create"] = append(res.phases["create"], creates...)
		res.phases["start"] = append(res.phases["start"], starts...)
	}
	return b.removeAll(ctx, e)
}
