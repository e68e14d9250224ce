package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"
)

// listen opens the sockets inside the namespace at path ("" for the
// caller's) from a locked thread that joins it and comes back; sockets
// keep their namespace and serve from any thread.
func listen(path string, addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	if path == "" {
		return listenHere(addr)
	}
	type result struct {
		pc  net.PacketConn
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open the thread's network namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open network namespace: %w", err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		var r result
		r.pc, r.l, r.err = listenHere(addr)
		if err := netns.Set(orig); err != nil {
			// The thread stays locked and exits with the goroutine.
			if r.err == nil {
				r.pc.Close()
				r.l.Close()
			}
			ch <- result{err: errors.Join(r.err, fmt.Errorf("return to the original network namespace: %w", err))}
			return
		}
		runtime.UnlockOSThread()
		ch <- r
	}()
	r := <-ch
	return r.pc, r.l, r.err
}
