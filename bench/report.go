//go:build linux

package main

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-project/berth/bench/internal/timing"
)

func printHeader(rts []*runner, n, warmup int) {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mode := cgroupMode()
	if mode == "hybrid" {
		if c := strings.Fields(unifiedControllers()); len(c) > 0 {
			mode += " (v2 controllers: " + strings.Join(c, " ") + ")"
		}
	}
	fmt.Printf("berth bench: %d measured runs per runtime after %d warm-up rounds, interleaved\n", n, warmup)
	fmt.Printf("kernel %s, %d CPUs, cgroups %s\n", strings.TrimSpace(string(kernel)), goruntime.NumCPU(), mode)
	for _, rt := range rts {
		if rt.unavailable != "" {
			fmt.Printf("%-6s n/a: %s\n", rt.name, rt.unavailable)
			continue
		}
		fmt.Printf("%-6s %s: %s\n", rt.name, rt.path, rt.version)
		if rt.note != "" {
			fmt.Printf("%-6s %s\n", "", rt.note)
		}
	}
	fmt.Println()
}

// printResults prints one scenario's table: median, p90 and the ratio of
// medians to runc's for each runtime.
func printResults(sc scenario, rts []*runner, results map[*runner][]time.Duration) {
	var baseline time.Duration
	for _, rt := range rts {
		if rt.name == "runc" && len(results[rt]) > 0 {
			baseline = timing.Median(results[rt])
		}
	}
	fmt.Printf("%s: %s\n", sc.name, sc.doc)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "runtime\tmedian\tp90\tvs runc\t")
	for _, rt := range rts {
		d := results[rt]
		if len(d) == 0 {
			reason := rt.unavailable
			if reason == "" {
				reason = "no results"
			}
			fmt.Fprintf(w, "%s\tn/a\tn/a\tn/a\t  %s\n", rt.name, reason)
			continue
		}
		ratio := "n/a"
		if baseline > 0 {
			ratio = fmt.Sprintf("%.2f", float64(timing.Median(d))/float64(baseline))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t\n", rt.name, ms(timing.Median(d)), ms(timing.Percentile(d, 90)), ratio)
	}
	w.Flush()
	fmt.Println()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
