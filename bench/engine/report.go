//go:build linux

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-project/berth/bench/internal/timing"
)

// Issue 4's targets (and issue 5's port throughput: at least docker's).
const (
	runTarget     = 0.20 // berth's `docker run --rm` median at most 1/5 of docker's
	runAim        = 0.10
	manyTarget    = 5.0     // docker's time to start the 50 at least 5x berth's
	shimRSSTarget = 3 << 20 // each shim at most 3 MB RSS
)

// describe says what sc does, for its table's title.
func (b *bench) describe(sc scenario) string {
	net := "--network none"
	if sc.network == "default" {
		net = "default network"
	}
	if sc.floor {
		return fmt.Sprintf("`docker version` (the CLI's start-up, _ping and one request: no container), %d runs per engine after %d warm-up", b.opts.runs, b.opts.warmup)
	}
	if sc.throughput {
		return fmt.Sprintf("1 GiB from the host's 127.0.0.1 through a published port (-p 127.0.0.1::5000) to busybox nc and dd in a container, connect to close; %d rounds after 1 warm-up", b.opts.rounds)
	}
	if sc.many {
		how := "`docker run -d IMG sleep 1000` processes"
		if sc.client == "api" {
			how = "create+start API calls"
		}
		return fmt.Sprintf("%d %s at once (%s), wall time until all run; %d rounds", b.opts.count, how, net, b.opts.rounds)
	}
	if sc.client == "cli" {
		return fmt.Sprintf("`docker run --rm IMG true` (%s), %d runs per engine after %d warm-up", net, b.opts.runs, b.opts.warmup)
	}
	return fmt.Sprintf("create, start, wait, remove of `true` through the API (%s), %d runs per engine after %d warm-up",
		net, b.opts.runs, b.opts.warmup)
}

// printScenario prints one scenario's table: median and p90 wall time,
// the ratio of medians to docker's and, for the API, the median of each
// phase.
func (b *bench) printScenario(sc scenario, results []*result) {
	fmt.Printf("%s: %s\n", sc.name, b.describe(sc))
	phases := []string(nil)
	if sc.client == "api" {
		phases = runPhases
		if sc.many {
			phases = manyPhases
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	if sc.throughput {
		b.printThroughput(results)
		return
	}
	head := "engine\tmedian\tp90\tvs docker\t"
	for _, p := range phases {
		head += p + "\t"
	}
	fmt.Fprintln(w, head)
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
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t", r.engine, ms(timing.Median(r.wall)), ms(timing.Percentile(r.wall, 90)), ratio)
		for _, p := range phases {
			line += ms(timing.Median(r.phases[p])) + "\t"
		}
		fmt.Fprintln(w, line)
	}
	w.Flush()
	if sc.many && sc.client == "api" {
		fmt.Printf("  (create and start: median latency of one container's call while the %d run at once)\n", b.opts.count)
	}
	for _, r := range results {
		if r.err != nil {
			fmt.Printf("  %s FAILED: %v\n", r.engine, r.err)
		}
	}
	fmt.Println()
}

// printThroughput prints the port-throughput table: median time and rate
// per engine and berth's rate over docker's.
func (b *bench) printThroughput(results []*result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "engine\tmedian\trate\tvs docker\t")
	base := mibPerSec(throughputBytes, timing.Median(results[len(results)-1].wall))
	for _, r := range results {
		if len(r.wall) == 0 {
			fmt.Fprintf(w, "%s\tn/a\tn/a\tn/a\t\n", r.engine)
			continue
		}
		rate := mibPerSec(throughputBytes, timing.Median(r.wall))
		ratio := "n/a"
		if base > 0 {
			ratio = fmt.Sprintf("%.2fx", rate/base)
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f MiB/s\t%s\t\n", r.engine, ms(timing.Median(r.wall)), rate, ratio)
	}
	w.Flush()
	for _, r := range results {
		if r.err != nil {
			fmt.Printf("  %s FAILED: %v\n", r.engine, r.err)
		}
	}
	fmt.Println()
}

// ratioOf is berth's median over docker's for one run, docker's over
// berth's for many, or 0 when a side has no results.
func ratioOf(sc scenario, berth, docker *result) float64 {
	bm, dm := timing.Median(berth.wall), timing.Median(docker.wall)
	if bm == 0 || dm == 0 {
		return 0
	}
	if sc.many {
		return float64(dm) / float64(bm)
	}
	return float64(bm) / float64(dm)
}

// printMemory prints, per network mode, each engine's memory with the
// containers of the "many" scenarios running (medians over the rounds;
// the largest shim over all of them), and the idle daemons' before any.
func (b *bench) printMemory(all map[string][]*result) {
	fmt.Printf("memory (RSS; PSS divides shared pages among their users), daemons and shims idle:\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "engine\tcontainers\tdaemons RSS\tshims\tshim RSS sum\tmax\tmean\tshim PSS sum\tmax private\ttotal RSS\t")
	for _, e := range b.engines {
		s := b.idle[e.name]
		fmt.Fprintf(w, "%s\t0\t%s\t-\t-\t-\t-\t-\t-\t%s\t\n", e.name, daemonsText(s), mib(s.daemonRSS()))
	}
	for _, network := range []string{"none", "default"} {
		for i, e := range b.engines {
			var samples []memSample
			for _, sc := range allScenarios {
				if sc.many && sc.network == network {
					if rs := all[sc.name]; rs != nil {
						samples = append(samples, rs[i].mem...)
					}
				}
			}
			if len(samples) == 0 {
				continue
			}
			var sums, means, psss, totals []int64
			var maxShim, maxPrivate int64
			notIdle := 0
			for _, s := range samples {
				sum, mx, mean, pss, priv := s.shimStats()
				sums, means, psss = append(sums, sum), append(means, mean), append(psss, pss)
				totals = append(totals, s.daemonRSS()+sum)
				maxShim, maxPrivate = max(maxShim, mx), max(maxPrivate, priv)
				if s.notIdle {
					notIdle++
				}
			}
			mid := samples[len(samples)/2]
			note := ""
			if notIdle > 0 {
				note = fmt.Sprintf("  (%d samples taken while still busy)", notIdle)
			}
			fmt.Fprintf(w, "%s\t%d (%s)\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.name, len(mid.shims), network,
				daemonsText(mid), len(mid.shims), mib(medianInt(sums)), mib(maxShim), mib(medianInt(means)),
				mib(medianInt(psss)), mib(maxPrivate), mib(medianInt(totals)), note)
		}
	}
	w.Flush()
	fmt.Printf("  (rows with containers: median over %d rounds per scenario, CLI and API rounds together; max and max private: the largest shim seen, private being the pages\n"+
		"   no other process maps, i.e. what one more shim costs, the rest of its RSS being the binary's pages all shims share; daemons RSS of the middle sample)\n\n", b.opts.rounds)
}

// daemonsText lists the daemons' RSS: "berthd 21.0 MiB".
func daemonsText(s memSample) string {
	var parts []string
	for _, d := range s.daemons {
		parts = append(parts, d.name+" "+mib(d.rss))
	}
	return strings.Join(parts, " + ")
}

// printTargets checks issue 4's targets against the results.
func (b *bench) printTargets(all map[string][]*result) {
	fmt.Println("issue 4 and 5 targets:")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	for _, sc := range allScenarios {
		rs := all[sc.name]
		if rs == nil || sc.floor {
			continue
		}
		q := ratioOf(sc, rs[0], rs[1])
		switch {
		case sc.throughput:
			if q > 0 {
				fmt.Printf("  %-17s berth's rate %.2fx docker's (issue 5 target >= 1x): %s\n", sc.name, 1/q, verdict(q <= 1))
			}
		case q == 0:
			fmt.Printf("  %-17s no ratio (a side failed)\n", sc.name)
		case sc.many:
			fmt.Printf("  %-17s docker/berth %.1fx (target >= %.0fx): %s\n", sc.name, q, manyTarget, verdict(q >= manyTarget))
		default:
			fmt.Printf("  %-17s berth/docker %.3f (target <= %.2f, aim %.2f): %s\n", sc.name, q, runTarget, runAim, verdict(q <= runTarget))
		}
	}
	var maxShim, maxPrivate int64
	seen := false
	for _, sc := range allScenarios {
		if rs := all[sc.name]; sc.many && rs != nil {
			for _, s := range rs[0].mem {
				_, mx, _, _, priv := s.shimStats()
				maxShim, maxPrivate, seen = max(maxShim, mx), max(maxPrivate, priv), true
			}
		}
	}
	if seen {
		fmt.Printf("  %-17s largest berth-shim RSS %s, private %s (target <= %s RSS each): %s\n", "shim-rss",
			mib(maxShim), mib(maxPrivate), mib(shimRSSTarget), verdict(maxShim <= shimRSSTarget))
	}
	fmt.Println()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// medianInt returns the median of v (the lower middle one for an even
// count), or 0 for none.
func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	return s[(len(s)-1)/2]
}
