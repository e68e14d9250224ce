//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-project/berth/bench/internal/timing"
)

// target is issue 7's: berth's cold and warm build each at most half of
// docker's time (ratio of medians).
const target = 0.5

// printScenario prints one scenario's table: median and p90 wall time and
// the ratio of medians to docker's.
func (b *bench) printScenario(sc scenario, results []*result) {
	fmt.Printf("%s: %s; %d builds per engine after %d warm-up\n", sc.name, sc.what, b.opts.runs, b.opts.warmup)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "engine\tmedian\tp90\tvs docker\t")
	base := timing.Median(results[len(results)-1].wall) // docker's
	for _, r := range results {
		if len(r.wall) == 0 {
			fmt.Fprintf(w, "%s\tn/a\tn/a\tn/a\t\n", r.engine)
			continue
		}
		ratio := "n/a"
		if base > 0 {
			ratio = fmt.Sprintf("%.3f", float64(timing.Median(r.wall))/float64(base))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\n", r.engine, secs(timing.Median(r.wall)), secs(timing.Percentile(r.wall, 90)), ratio)
	}
	w.Flush()
	var hits []string
	for _, r := range results {
		if r.steps > 0 {
			hits = append(hits, fmt.Sprintf("%s %d of %d", r.engine, r.cached, r.steps))
		}
	}
	if len(hits) > 0 {
		fmt.Printf("  steps from the cache in the last build: %s\n", strings.Join(hits, ", "))
	}
	for _, r := range results {
		if r.err != nil {
			fmt.Printf("  %s FAILED: %v\n", r.engine, r.err)
		}
	}
	fmt.Println()
}

// printTargets prints issue 7's four numbers (berth and docker, cold and
// warm medians) and whether each ratio meets the target.
func printTargets(all map[string][]*result) {
	fmt.Println("issue 7 targets (berth's median at most half of docker's):")
	for _, name := range []string{"cold", "warm"} {
		results, ok := all[name]
		if !ok {
			continue
		}
		bm, dm := median(results, "berth"), median(results, "docker")
		if bm == 0 || dm == 0 {
			fmt.Printf("  %-5s berth %s, docker %s: NOT MEASURED\n", name, secs(bm), secs(dm))
			continue
		}
		ratio := float64(bm) / float64(dm)
		verdict := "met"
		if ratio > target {
			verdict = "MISSED"
		}
		fmt.Printf("  %-5s berth %s, docker %s: berth/docker %.3f (target <= %.2f): %s\n", name, secs(bm), secs(dm), ratio, target, verdict)
	}
}

// median returns engine's median in results, or 0 if it has none.
func median(results []*result, engine string) time.Duration {
	for _, r := range results {
		if r.engine == engine {
			return timing.Median(r.wall)
		}
	}
	return 0
}

// secs formats d in seconds with millisecond precision ("-" for none).
func secs(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}
