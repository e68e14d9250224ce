package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freezeRounds is how many freeze/thaw rounds the exec race tests run.
const freezeRounds = 50

// freezeBound is how long one Freeze may take in those tests.
const freezeBound = 2 * time.Second

// execCount reads the "reexec" helper's count of execs from its command
// line, or -1 while it is between two images.
func execCount(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return -1
	}
	f := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return -1
	}
	return n
}

// startExecing starts n "reexec" helpers in m and waits until they have
// exec'd a few times; execs returns their total count of execs so far.
func startExecing(t *testing.T, m Manager, n int) (helpers []*helper, execs func() int) {
	t.Helper()
	for i := 0; i < n; i++ {
		h := startHelper(t, "reexec", "0")
		if err := m.Apply(h.pid()); err != nil {
			t.Fatal(err)
		}
		helpers = append(helpers, h)
	}
	execs = func() int {
		total := 0
		for _, h := range helpers {
			total += max(execCount(h.pid()), 0)
		}
		return total
	}
	// Cleanups run last-in first-out: this one, before the helpers' own,
	// makes sure that they are gone before those wait for them.
	t.Cleanup(func() {
		if pids, err := m.Pids(); err == nil && len(pids) > 0 {
			_ = m.Kill()
			waitGone(t, m)
		}
	})
	waitExecs(t, execs, n)
	return helpers, execs
}

// waitGone waits until no process is left in m, failing the test if some
// stay: a frozen or missed process would keep a wait for it hanging.
func waitGone(t *testing.T, m Manager) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for pids, err := m.Pids(); err != nil || len(pids) > 0; pids, err = m.Pids() {
		if time.Now().After(deadline) {
			t.Fatalf("processes %v (%v) still in the cgroup after Kill", pids, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitExecs waits until the helpers have exec'd more times than now.
func waitExecs(t *testing.T, execs func() int, more int) {
	t.Helper()
	before := execs()
	deadline := time.Now().Add(30 * time.Second)
	for execs() <= before+more {
		if time.Now().After(deadline) {
			t.Fatalf("helpers stopped exec'ing at %d execs", before)
		}
		time.Sleep(time.Millisecond)
	}
}

// freezeWhileExecing puts "reexec" helpers in m and freezes and thaws m
// freezeRounds times while they execve, waiting each round until they
// have exec'd again. Every Freeze must succeed within freezeBound and
// leave the cgroup frozen.
func freezeWhileExecing(t *testing.T, m Manager) {
	t.Helper()
	helpers, execs := startExecing(t, m, 2)
	var slowest time.Duration
	for round := 0; round < freezeRounds; round++ {
		waitExecs(t, execs, len(helpers))
		start := time.Now()
		err := m.Freeze()
		took := time.Since(start)
		slowest = max(slowest, took)
		if err != nil {
			t.Fatalf("round %d: freeze after %v: %v", round, took, err)
		}
		if took > freezeBound {
			t.Errorf("round %d: freeze took %v, over %v", round, took, freezeBound)
		}
		if frozen, err := m.Frozen(); err != nil || !frozen {
			t.Fatalf("round %d: Frozen() = %v, %v after Freeze", round, frozen, err)
		}
		if err := m.Thaw(); err != nil {
			t.Fatalf("round %d: thaw: %v", round, err)
		}
	}
	t.Logf("%d freezes during %d execs, slowest %v", freezeRounds, execs(), slowest)
	if err := m.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	waitGone(t, m)
	for _, h := range helpers {
		if !h.killedBySIGKILL() {
			t.Errorf("after Kill: helper exited with %v, want SIGKILL", h.wait())
		}
	}
}

// TestV1FreezeDuringExec freezes a v1 cgroup whose processes keep entering
// execve: a task in execve waits for its frozen sibling threads and holds
// the freezer in FREEZING until the cgroup is thawed.
func TestV1FreezeDuringExec(t *testing.T) {
	m := newTestV1Manager(t)
	if m.freezer() == "" {
		t.Skip("no v1 freezer hierarchy")
	}
	freezeWhileExecing(t, m)
}

// TestV2FreezeDuringExec is the same race on the cgroup2 freezer.
func TestV2FreezeDuringExec(t *testing.T) {
	m, _ := newTestV2Manager(t)
	freezeWhileExecing(t, m)
}

// TestV1KillDuringExec kills exec'ing processes through the v1 freezer
// alone (the way of a host without cgroup.kill), ten times over.
func TestV1KillDuringExec(t *testing.T) {
	for round := 0; round < 10; round++ {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			m := newTestV1Manager(t)
			if m.freezer() == "" {
				t.Skip("no v1 freezer hierarchy")
			}
			helpers, _ := startExecing(t, m, 2)
			dir, err := m.procsDir()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := m.killV1(dir); err != nil {
				t.Fatalf("kill: %v", err)
			}
			if took := time.Since(start); took > freezeBound {
				t.Errorf("kill took %v, over %v", took, freezeBound)
			}
			waitGone(t, m)
			for _, h := range helpers {
				if !h.killedBySIGKILL() {
					t.Errorf("helper exited with %v, want SIGKILL", h.wait())
				}
			}
			expectFile(t, m.freezer(), "freezer.state", "THAWED")
		})
	}
}

// TestV1KillPaused kills the processes of a frozen cgroup: they die, and
// the cgroup is thawed, whichever way Kill takes.
func TestV1KillPaused(t *testing.T) {
	m := newTestV1Manager(t)
	if m.freezer() == "" {
		t.Skip("no v1 freezer hierarchy")
	}
	h := startHelper(t, "serve")
	t.Cleanup(func() { _ = thawV1(m.freezer()) }) // before the helper's cleanup waits for it
	if err := m.Apply(h.pid()); err != nil {
		t.Fatal(err)
	}
	h.call(t, 'e')
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, m)
	if !h.killedBySIGKILL() {
		t.Errorf("helper exited with %v, want SIGKILL", h.wait())
	}
	if frozen, err := m.Frozen(); err != nil || frozen {
		t.Errorf("Frozen() after Kill = %v, %v; want false", frozen, err)
	}
}

// TestKillWithoutFreezer kills every process of a cgroup whose freezer
// does not settle: the processes are signalled unfrozen.
func TestKillWithoutFreezer(t *testing.T) {
	m := newTestManager(t)
	helpers, _ := startExecing(t, m, 2)
	forked := startHelper(t, "serve")
	if err := m.Apply(forked.pid()); err != nil {
		t.Fatal(err)
	}
	helpers = append(helpers, forked)
	dir := m.Paths()[""]
	if v1, ok := m.(*v1Manager); ok {
		var err error
		if dir, err = v1.procsDir(); err != nil {
			t.Fatal(err)
		}
	}
	stuck := errors.New("freezer did not settle")
	err := killFrozen(dir, func() error { return stuck }, func() error {
		t.Error("thaw called after a failed freeze")
		return nil
	})
	if err != nil {
		t.Fatalf("kill: %v", err)
	}
	waitGone(t, m)
	for _, h := range helpers {
		if !h.killedBySIGKILL() {
			t.Errorf("helper exited with %v, want SIGKILL", h.wait())
		}
	}
}

// fakeFreezer settles on try settleOn (never if 0) and records requests.
type fakeFreezer struct {
	settleOn   int
	tries      int
	requests   []bool
	requestErr error
	waitErr    error
}

func (f *fakeFreezer) request(frozen bool) error {
	f.requests = append(f.requests, frozen)
	return f.requestErr
}

func (f *fakeFreezer) waitFrozen(deadline time.Time) (bool, error) {
	f.tries++
	if f.settleOn > 0 && f.tries >= f.settleOn {
		return true, nil
	}
	if f.waitErr != nil {
		return false, f.waitErr
	}
	time.Sleep(time.Until(deadline)) // the kernel, not settling
	return false, nil
}

func TestFreezeRetries(t *testing.T) {
	t.Run("settles on the third try", func(t *testing.T) {
		f := &fakeFreezer{settleOn: 3}
		if err := freeze(f, "cg", time.Minute); err != nil {
			t.Fatal(err)
		}
		if want := []bool{true, false, true, false, true}; !slices.Equal(f.requests, want) {
			t.Errorf("requests %v, want %v", f.requests, want)
		}
	})
	t.Run("never settles", func(t *testing.T) {
		f := &fakeFreezer{}
		start := time.Now()
		err := freeze(f, "cg", 300*time.Millisecond)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "freeze cg: not frozen after 300ms") {
			t.Errorf("err = %v", err)
		}
		if took < 300*time.Millisecond || took > 300*time.Millisecond+maxSettle {
			t.Errorf("gave up after %v, want 300ms", took)
		}
		if f.tries < 4 || f.requests[len(f.requests)-1] {
			t.Errorf("%d tries, requests %v: want several, ending thawed", f.tries, f.requests)
		}
	})
	t.Run("errors", func(t *testing.T) {
		bad := errors.New("EIO")
		for _, f := range []*fakeFreezer{{requestErr: bad}, {waitErr: bad}} {
			err := freeze(f, "cg", time.Minute)
			if !errors.Is(err, bad) || !strings.HasPrefix(err.Error(), "freeze cg: ") {
				t.Errorf("err = %v", err)
			}
			if f.requests[len(f.requests)-1] {
				t.Errorf("requests %v do not end thawed", f.requests)
			}
		}
	})
}
