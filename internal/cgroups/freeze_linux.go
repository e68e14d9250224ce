package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// A freeze can stall on its own: a thread in execve waits, and cannot be
// frozen meanwhile, for its sibling threads to die, and the freezer may
// already have frozen them. The v1 freezer then stays FREEZING until the
// cgroup is thawed. So freeze waits a short while for the kernel to settle
// and, if it has not, thaws the cgroup to let such a task finish, then
// asks again with a longer wait, until a total bound.

const (
	// freezeTimeout bounds Freeze: the tries, waits and thaws together.
	freezeTimeout = 10 * time.Second
	// killFreezeTimeout bounds the freeze that Kill tries before signalling;
	// past it Kill signals the unfrozen processes, round after round.
	killFreezeTimeout = time.Second
	// firstSettle is how long the first try waits for the cgroup to freeze;
	// each later try waits twice as long, up to maxSettle.
	firstSettle = 2 * time.Millisecond
	maxSettle   = 200 * time.Millisecond
)

// freezerFile is the freezer of one cgroup as freeze drives it.
type freezerFile interface {
	// request asks the kernel to freeze (true) or thaw (false) the cgroup.
	request(frozen bool) error
	// waitFrozen waits until the kernel reports the cgroup frozen or the
	// deadline passes, and reports which.
	waitFrozen(deadline time.Time) (bool, error)
}

// freeze freezes the cgroup of f (in dir) within timeout, thawing it and
// trying again when it does not settle. On failure the cgroup is thawed.
func freeze(f freezerFile, dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	settle := firstSettle
	for try := 1; ; try++ {
		if err := f.request(true); err != nil {
			_ = f.request(false)
			return fmt.Errorf("freeze %s: %w", dir, err)
		}
		wait := time.Now().Add(settle)
		if wait.After(deadline) {
			wait = deadline
		}
		frozen, err := f.waitFrozen(wait)
		if err == nil && frozen {
			return nil
		}
		// Thaw: a task that blocks the freeze waits on a frozen one.
		if terr := f.request(false); terr != nil || err != nil {
			return fmt.Errorf("freeze %s: %w", dir, errors.Join(err, terr))
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("freeze %s: not frozen after %v (%d tries, thawed again)", dir, timeout, try)
		}
		// Give the thawed tasks a moment to run before the next try.
		time.Sleep(min(settle/4, time.Until(deadline)))
		settle = min(2*settle, maxSettle)
	}
}

// v1Freezer is a cgroup's directory in the v1 freezer hierarchy.
type v1Freezer string

func (d v1Freezer) request(frozen bool) error {
	return writeFile(string(d), "freezer.state", map[bool]string{true: "FROZEN", false: "THAWED"}[frozen])
}

// waitFrozen polls freezer.state (v1 has no change notification) with a
// short delay that grows.
func (d v1Freezer) waitFrozen(deadline time.Time) (bool, error) {
	delay := 50 * time.Microsecond
	for {
		s, err := readFile(string(d), "freezer.state")
		if err != nil {
			return false, err
		}
		if s == "FROZEN" {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		time.Sleep(min(delay, left))
		delay = min(2*delay, 5*time.Millisecond)
	}
}

// thawV1 thaws the v1 freezer cgroup dir; the kernel thaws at once unless
// an ancestor is frozen.
func thawV1(dir string) error {
	if err := v1Freezer(dir).request(false); err != nil {
		return fmt.Errorf("thaw %s: %w", dir, err)
	}
	s, err := readFile(dir, "freezer.state")
	if err != nil {
		return fmt.Errorf("thaw %s: %w", dir, err)
	}
	if s != "THAWED" {
		return fmt.Errorf("thaw %s: still %s (is a parent cgroup frozen?)", dir, s)
	}
	return nil
}

// v2Freezer is a cgroup2 directory.
type v2Freezer string

func (d v2Freezer) request(frozen bool) error {
	return writeFile(string(d), "cgroup.freeze", map[bool]string{true: "1", false: "0"}[frozen])
}

// waitFrozen waits for cgroup.events to say "frozen 1". cgroupfs wakes a
// poll(2) for POLLPRI when the file changes, so no busy loop is needed; a
// short poll timeout still re-reads in case a notification is missed.
func (d v2Freezer) waitFrozen(deadline time.Time) (bool, error) {
	p := filepath.Join(string(d), "cgroup.events")
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", p, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 512)
	for {
		n, err := unix.Pread(fd, buf, 0)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", p, err)
		}
		if frozen, ok := eventValue(string(buf[:n]), "frozen"); ok && frozen == 1 {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		wait := min(left, 100*time.Millisecond)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(wait.Milliseconds())+1); err != nil && err != unix.EINTR {
			return false, fmt.Errorf("poll %s: %w", p, err)
		}
	}
}
