package runtime

import (
	"fmt"
	"os"
	"runtime"

	"github.com/berth-project/berth/internal/loopback"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Making a network namespace is the costliest part of init's clone (every
// network subsystem sets itself up in it: 0.5 ms and more). When the
// container wants a new one and nothing ties it to another namespace, the
// parent makes it, with its loopback up, on a thread of its own while it
// prepares the rest of the container, and init enters it (setns) instead.

// earlyNetNS reports whether spec's new network namespace can be made by
// the parent: only new namespaces, and no user namespace (which would have
// to own the network namespace).
func earlyNetNS(spec *specs.Spec) bool {
	want := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path != "" || ns.Type == specs.UserNamespace {
			return false
		}
		if ns.Type == specs.NetworkNamespace {
			want = true
		}
	}
	return want
}

// netNS is a network namespace being made in the background.
type netNS struct {
	done chan struct{}
	f    *os.File
	err  error
}

// startNetNS starts making a network namespace.
func startNetNS() *netNS {
	n := &netNS{done: make(chan struct{})}
	go func() {
		defer close(n.done)
		n.f, n.err = newNetNS()
	}()
	return n
}

// wait returns the namespace; the caller closes it.
func (n *netNS) wait() (*os.File, error) {
	<-n.done
	return n.f, n.err
}

// discard closes the namespace once it is made.
func (n *netNS) discard() {
	if f, _ := n.wait(); f != nil {
		f.Close()
	}
}

// newNetNS makes a network namespace with its loopback up and returns a
// handle on it. The calling goroutine's thread enters it for the time
// being and goes back to its own before it may serve other goroutines.
func newNetNS() (*os.File, error) {
	runtime.LockOSThread()
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("open own network namespace: %w", err)
	}
	defer own.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("new network namespace: %w", err)
	}
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err == nil {
		err = loopback.Up()
	}
	if serr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); serr == nil {
		runtime.UnlockOSThread()
	} // else the thread ends with this goroutine.
	if err != nil {
		if ns != nil {
			ns.Close()
		}
		return nil, fmt.Errorf("new network namespace: %w", err)
	}
	return ns, nil
}
