//go:build linux

package main

import (
	"context"
	"fmt"
	"time"
)

// scenario is one kind of build, run on every engine.
type scenario struct {
	name string
	what string // for the table's title
	// cold: reset the engine before each build; warm: nothing may
	// change, the image ID must stay; touch: rewrite a context file
	// before each round.
	cold, warm, touch bool
}

var allScenarios = []scenario{
	{name: "cold", cold: true, what: "no image and no build cache (removed before each round, outside the timing)"},
	{name: "warm", warm: true, what: "the same build again, nothing changed: every step cached"},
	{name: "touch", touch: true, what: "one context file rewritten: COPY src and what follows it built again"},
}

// result is one engine's measurements in one scenario.
type result struct {
	engine string
	wall   []time.Duration // one per measured build
	err    error           // the failure that stopped it, if any
	// steps and cached: the last measured build's steps and cache hits
	steps, cached int
}

// runScenario runs sc's warm-up and measured rounds, berth then docker in
// each. An engine that fails drops out of the scenario with its error;
// the others go on.
func (b *bench) runScenario(ctx context.Context, sc scenario) []*result {
	results := make([]*result, len(b.engines))
	for i, e := range b.engines {
		results[i] = &result{engine: e.name}
	}
	for round := -b.opts.warmup; round < b.opts.runs; round++ {
		if sc.touch {
			if err := touch(b.contextDir, b.opts.files, round); err != nil {
				for _, r := range results {
					r.err = err
				}
				break
			}
		}
		for i, e := range b.engines {
			res := results[i]
			if res.err != nil || ctx.Err() != nil {
				continue
			}
			d, err := b.round(ctx, e, sc)
			if err != nil {
				res.err = fmt.Errorf("after %d measured builds: %w", len(res.wall), err)
				continue
			}
			if round >= 0 {
				res.wall = append(res.wall, d)
				res.steps, res.cached = e.steps, e.cached
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

// round prepares e for sc (outside the timing) and times one build.
func (b *bench) round(ctx context.Context, e *engine, sc scenario) (time.Duration, error) {
	if sc.cold || e.lastID == "" {
		// A warm or touch round needs a build before it: the first
		// after a failed one is not warm.
		if err := b.reset(ctx, e); err != nil {
			return 0, err
		}
		if !sc.cold {
			if _, err := b.build(ctx, e); err != nil {
				return 0, fmt.Errorf("build before a %s round: %w", sc.name, err)
			}
		}
	}
	before := e.lastID
	d, err := b.build(ctx, e)
	if err != nil {
		return 0, err
	}
	switch {
	case sc.warm && e.lastID != before:
		return 0, fmt.Errorf("a build with nothing changed made image %s, the one before %s: a step missed the cache", e.lastID, before)
	case sc.touch && e.lastID == before:
		return 0, fmt.Errorf("a build after a context file changed made the same image %s: the COPY hit the cache", before)
	}
	return d, nil
}
