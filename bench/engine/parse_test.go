//go:build linux

package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseRequestLine(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		line, request string
		d             time.Duration
		ok            bool
	}{
		{`time=2026-11-23T06:47:52.901Z level=DEBUG msg="api request" method=POST path=/v1.50/containers/create duration=58.384938ms`,
			"POST containers/create", 58384938 * time.Nanosecond, true},
		{`time=2026-11-23T06:47:53.039Z level=DEBUG msg="api request" method=POST path=/v1.50/containers/` + id + `/attach duration=131.236234ms`,
			"POST containers/{id}/attach", 131236234 * time.Nanosecond, true},
		{`time=2026-11-23T06:47:53.039Z level=DEBUG msg="api request" method=DELETE path=/v1.41/containers/` + id + ` duration=2.5ms`,
			"DELETE containers/{id}", 2500 * time.Microsecond, true},
		{`time=2026-11-23T06:47:52.571Z level=DEBUG msg="api request" method=HEAD path=/_ping duration=77.946µs`,
			"HEAD _ping", 77946 * time.Nanosecond, true},
		{`time=2026-11-23T06:47:53.217Z level=DEBUG msg="api request failed" method=POST path=/v1.50/containers/` + id + `/start error="network default not found: not found" duration=4.437365ms`,
			"POST containers/{id}/start", 4437365 * time.Nanosecond, true},
		{`time=2026-11-23T06:47:47.366Z level=INFO msg="daemon ready" data-root=/var/tmp/x`, "", 0, false},
		{`time=garbage level=DEBUG msg="api request" method=GET path=/v1.50/info duration=1ms`, "", 0, false},
	} {
		at, request, d, ok := parseRequestLine(tc.line)
		if ok != tc.ok || request != tc.request || d != tc.d {
			t.Errorf("parseRequestLine(%q) = %q, %v, %v; want %q, %v, %v", tc.line, request, d, ok, tc.request, tc.d, tc.ok)
		}
		if ok && at.IsZero() {
			t.Errorf("parseRequestLine(%q): no time", tc.line)
		}
	}
}

func TestParseTrace(t *testing.T) {
	const markDir = "/w/mark"
	// Two runs of a daemon (pid 100) whose shim (200, 300) runs a runtime
	// (201, 301); 900 is a stranger; the second run lacks its last mark
	// and is dropped.
	out := `
   900 10.000000: sched:sched_process_exec: filename=/usr/bin/make pid=900 old_pid=900
   500 10.001000: sched:sched_process_exec: filename=/w/mark/create pid=500 old_pid=500
   501 10.010000: sched:sched_process_exec: filename=/w/mark/start pid=501 old_pid=501
   100 10.011000: sched:sched_process_fork: comm=berthd pid=100 child_comm=berthd child_pid=200
   200 10.012000: sched:sched_process_exec: filename=/bin/berth-shim pid=200 old_pid=200
   200 10.013000: sched:sched_process_fork: comm=berth-shim pid=200 child_comm=berth-shim child_pid=201
   201 10.014000: sched:sched_process_exec: filename=/bin/berth-runtime pid=201 old_pid=201
   201 10.020000: sched:sched_process_exit: comm=berth-runtime pid=202 prio=120 group_dead=false
   201 10.021000: sched:sched_process_exit: comm=berth-runtime pid=201 prio=120 group_dead=true
   900 10.022000: sched:sched_process_exit: comm=make pid=900 prio=120 group_dead=true
   502 10.030000: sched:sched_process_exec: filename=/w/mark/started pid=502 old_pid=502
   503 10.040000: sched:sched_process_exec: filename=/w/mark/waited pid=503 old_pid=503
   200 10.041000: sched:sched_process_exit: comm=berth-shim pid=200 prio=120 group_dead=true
   504 10.050000: sched:sched_process_exec: filename=/w/mark/removed pid=504 old_pid=504
   505 11.000000: sched:sched_process_exec: filename=/w/mark/create pid=505 old_pid=505
   506 11.010000: sched:sched_process_exec: filename=/w/mark/start pid=506 old_pid=506
   100 11.011000: sched:sched_process_fork: comm=berthd pid=100 child_comm=berthd child_pid=300
`
	runs, err := parseTrace([]byte(out), []int{100}, markDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("got %d complete runs, want 1", len(runs))
	}
	r := runs[0]
	if got := r.marks["started"] - r.marks["start"]; got != 20*time.Millisecond {
		t.Errorf("start to started = %v, want 20ms", got)
	}
	var labels []string
	for _, e := range r.events {
		labels = append(labels, e.label)
	}
	want := "exec berth-shim,exec berth-runtime,exit berth-runtime,exit berth-shim"
	if got := strings.Join(labels, ","); got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	if _, err := parseTrace([]byte(out[:strings.Index(out, "   504")]), []int{100}, markDir); err == nil {
		t.Error("a trace without a complete run parsed without error")
	}
}
