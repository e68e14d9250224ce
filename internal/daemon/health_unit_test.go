package daemon

import (
	"reflect"
	"strings"
	"testing"
	"time"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/container"
)

func TestProbeCommand(t *testing.T) {
	for _, tc := range []struct {
		test  []string
		shell []string
		want  []string
		runs  bool
	}{
		{[]string{"CMD", "curl", "-f", "x"}, nil, []string{"curl", "-f", "x"}, true},
		{[]string{"CMD-SHELL", "test -f /ok"}, nil, []string{"/bin/sh", "-c", "test -f /ok"}, true},
		{[]string{"CMD-SHELL", "test -f /ok"}, []string{"/bin/ash", "-ec"}, []string{"/bin/ash", "-ec", "test -f /ok"}, true},
		// Without arguments: Docker runs the check, and it fails.
		{[]string{"CMD"}, nil, nil, true},
		{[]string{"CMD-SHELL"}, nil, []string{"/bin/sh", "-c"}, true},
		{[]string{"NONE"}, nil, nil, false},
		{[]string{"WHAT", "x"}, nil, nil, false},
		{nil, nil, nil, false},
	} {
		hc := &api.HealthConfig{Test: tc.test}
		got, runs := probeCommand(hc, tc.shell)
		if runs != tc.runs || len(got) != len(tc.want) || len(got) > 0 && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("test %q shell %q: %q %v, want %q %v", tc.test, tc.shell, got, runs, tc.want, tc.runs)
		}
		// A container has a health state exactly when a checker runs.
		c := &container.Container{Config: &api.Config{Healthcheck: hc, Shell: tc.shell}}
		if h := initialHealth(c); (h != nil) != tc.runs || h != nil && h.Status != api.Starting {
			t.Errorf("test %q: initial health %+v, checker runs %v", tc.test, h, tc.runs)
		}
	}
	if _, runs := probeCommand(nil, nil); runs {
		t.Error("nil config has a check")
	}
	if h := initialHealth(&container.Container{Config: &api.Config{}}); h != nil {
		t.Errorf("container without a health check: %+v", h)
	}
}

func TestHealthPolicy(t *testing.T) {
	p := policyOf(&api.HealthConfig{})
	want := healthPolicy{interval: 30 * time.Second, timeout: 30 * time.Second, startInterval: 5 * time.Second, retries: 3}
	if p != want {
		t.Errorf("defaults %+v, want %+v", p, want)
	}
	p = policyOf(&api.HealthConfig{Interval: time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, StartInterval: 100 * time.Millisecond, Retries: 1})
	if p.next(api.Starting, time.Second) != 100*time.Millisecond {
		t.Error("starting within the start period does not use the start interval")
	}
	if p.next(api.Healthy, time.Second) != time.Second {
		t.Error("healthy within the start period does not use the interval")
	}
	if p.next(api.Starting, 2*time.Minute) != time.Second {
		t.Error("starting after the start period does not use the interval")
	}
}

func TestApplyProbeResult(t *testing.T) {
	started := time.Now()
	p := healthPolicy{retries: 2, startPeriod: time.Minute}
	h := &api.Health{Status: api.Starting}
	res := func(code int, after time.Duration) *api.HealthcheckResult {
		return &api.HealthcheckResult{Start: started.Add(after), End: started.Add(after), ExitCode: code}
	}
	// Failures within the start period do not count.
	for i := range 3 {
		if applyProbeResult(h, res(1, time.Duration(i)*time.Second), p, started) || h.Status != api.Starting || h.FailingStreak != 0 {
			t.Fatalf("failure %d in start period: %+v", i, h)
		}
	}
	// A success in it makes the container healthy.
	if !applyProbeResult(h, res(0, 4*time.Second), p, started) || h.Status != api.Healthy {
		t.Fatalf("success: %+v", h)
	}
	// Failures count once healthy, even in the start period.
	if applyProbeResult(h, res(1, 5*time.Second), p, started) || h.FailingStreak != 1 || h.Status != api.Healthy {
		t.Fatalf("first failure: %+v", h)
	}
	if !applyProbeResult(h, res(-1, 6*time.Second), p, started) || h.FailingStreak != 2 || h.Status != api.Unhealthy {
		t.Fatalf("second failure: %+v", h)
	}
	if applyProbeResult(h, res(2, 7*time.Second), p, started) || h.FailingStreak != 3 {
		t.Fatalf("third failure: %+v", h)
	}
	if len(h.Log) != healthLogEntries || h.Log[len(h.Log)-1].ExitCode != 2 || h.Log[0].Start != started.Add(2*time.Second) {
		t.Errorf("log keeps %d entries, last %+v first %+v", len(h.Log), h.Log[len(h.Log)-1], h.Log[0])
	}
	if !applyProbeResult(h, res(0, 8*time.Second), p, started) || h.FailingStreak != 0 || h.Status != api.Healthy {
		t.Errorf("recovery: %+v", h)
	}

	// Without a start period a starting container's failures count.
	h = &api.Health{Status: api.Starting}
	p.startPeriod = 0
	applyProbeResult(h, res(1, time.Second), p, started)
	if !applyProbeResult(h, res(1, 2*time.Second), p, started) || h.Status != api.Unhealthy {
		t.Errorf("starting without start period: %+v", h)
	}
}

func TestProbeOutput(t *testing.T) {
	var o probeOutput
	o.Write([]byte("hello "))
	if o.String() != "hello " {
		t.Errorf("short output %q", o.String())
	}
	n, err := o.Write([]byte(strings.Repeat("x", probeOutputMax)))
	if n != probeOutputMax || err != nil {
		t.Errorf("write %d %v: a probe's writer must take everything", n, err)
	}
	s := o.String()
	if len(s) != probeOutputMax+3 || !strings.HasPrefix(s, "hello x") || !strings.HasSuffix(s, "x...") {
		t.Errorf("long output: %d bytes, %q...%q", len(s), s[:8], s[len(s)-5:])
	}
}
