package loopback

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// loFlags reads lo's interface flags in the calling thread's namespace.
func loFlags() (uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return 0, err
	}
	return ifr.Uint16(), nil
}

// TestUp: in a new network namespace lo starts down, and Up brings it up.
func TestUp(t *testing.T) {
	type result struct {
		before, after uint16
		err           error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, left in the new namespace, ends with
		// this goroutine.
		runtime.LockOSThread()
		var r result
		if r.err = unix.Unshare(unix.CLONE_NEWNET); r.err != nil {
			done <- r
			return
		}
		if r.before, r.err = loFlags(); r.err == nil {
			if r.err = Up(); r.err == nil {
				r.after, r.err = loFlags()
			}
		}
		done <- r
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.before&unix.IFF_UP != 0 {
		t.Fatalf("lo of a new network namespace is already up (flags %#x)", r.before)
	}
	if r.after&unix.IFF_UP == 0 {
		t.Errorf("lo is still down after Up (flags %#x)", r.after)
	}
}
