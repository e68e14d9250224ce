//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-project/berth/bench/internal/timing"
)

// window is when a scenario ran, by the wall clock.
type window struct {
	name       string
	start, end time.Time
}

// requestLine is berthd's debug line for one API request:
// time=2026-11-23T06:47:52.901Z level=DEBUG msg="api request" method=POST path=/v1.50/containers/create duration=58.384938ms
var requestLine = regexp.MustCompile(`^time=(\S+) level=DEBUG msg="api request(?: failed)?" method=(\S+) path=(\S+) .*?duration=(\S+)$`)

var (
	apiPrefix   = regexp.MustCompile(`^/v[0-9.]+/`)
	containerID = regexp.MustCompile(`/[0-9a-f]{64}(/|$)`)
)

// parseRequestLine reads one of berthd's "api request" debug lines: when
// it was logged, the request as "METHOD path" without the API version and
// with container IDs as {id}, and the handler's duration.
func parseRequestLine(line string) (at time.Time, request string, d time.Duration, ok bool) {
	m := requestLine.FindStringSubmatch(line)
	if m == nil {
		return at, "", 0, false
	}
	at, err1 := time.Parse(time.RFC3339Nano, m[1])
	d, err2 := time.ParseDuration(m[4])
	if err1 != nil || err2 != nil {
		return at, "", 0, false
	}
	path := apiPrefix.ReplaceAllString(m[3], "/")
	path = containerID.ReplaceAllString(path, "/{id}$1")
	return at, m[2] + " " + strings.TrimPrefix(path, "/"), d, true
}

// printRequests prints, per scenario, how long berthd took to answer each
// kind of request (from its debug log: the handler's time, from the
// request read to the answer written), which splits a CLI run into the
// calls the CLI makes.
func (b *bench) printRequests(windows []window) error {
	f, err := os.Open(b.berth.LogPath())
	if err != nil {
		return err
	}
	defer f.Close()
	type key struct{ scenario, request string }
	durations := map[key][]time.Duration{}
	var order []key
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		at, request, d, ok := parseRequestLine(sc.Text())
		if !ok {
			continue
		}
		for _, w := range windows {
			// The log's times have millisecond precision.
			if at.Before(w.start.Truncate(time.Millisecond)) || at.After(w.end) {
				continue
			}
			k := key{w.name, request}
			if _, ok := durations[k]; !ok {
				order = append(order, k)
			}
			durations[k] = append(durations[k], d)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	slices.SortStableFunc(order, func(a, b key) int {
		return slices.IndexFunc(windows, func(w window) bool { return w.name == a.scenario }) -
			slices.IndexFunc(windows, func(w window) bool { return w.name == b.scenario })
	})
	fmt.Println("berthd's time per request (its debug log; warm-up runs included):")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\trequest\tcount\tmedian\tp90\t")
	for _, k := range order {
		d := durations[k]
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t\n", k.scenario, k.request, len(d), ms(timing.Median(d)), ms(timing.Percentile(d, 90)))
	}
	w.Flush()
	fmt.Println()
	return nil
}
