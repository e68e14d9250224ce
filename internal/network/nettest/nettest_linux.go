package nettest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/berth-project/berth/internal/network/ipam"
)

// RequireRoot fails the test when it does not run as root: berth's tests
// always run as root, so not being root is a setup error, not a reason to skip.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces, netlink, nftables)")
	}
}

// RandName returns prefix followed by random hex digits, at most 15
// characters in all (IFNAMSIZ-1).
func RandName(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	s := prefix + hex.EncodeToString(b)
	if len(s) > 15 {
		s = s[:15]
	}
	return s
}

// NewNS creates a named network namespace (visible to `ip netns`) and
// returns its path; it is removed when the test ends. The calling thread's
// namespace is left unchanged.
func NewNS(t testing.TB) string {
	t.Helper()
	name := RandName("btns")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("get current netns: %v", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		_ = netns.Set(orig)
		t.Fatalf("create netns %s: %v", name, err)
	}
	ns.Close()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: let it die with the
		// goroutine rather than serve other code.
		t.Fatalf("return to host netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return filepath.Join("/run/netns", name)
}

// Do runs fn on a thread that has joined the namespace at path. Sockets
// fn creates stay in that namespace and may be used from any goroutine.
// The thread returns to its own namespace afterwards, so it holds no
// reference that would keep the namespace (and its veths) alive; if it
// cannot, it exits with its goroutine instead of serving other code.
func Do(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open the thread's netns: %w", err)
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", path, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", path, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Listen opens a TCP listener inside the namespace at path that answers
// every connection with reply, or with the client's address when reply is
// "", and closes it; the listener is closed when the test ends.
func Listen(t testing.TB, path, addr, reply string) net.Addr {
	t.Helper()
	var l net.Listener
	if err := Do(path, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, path, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			msg := reply
			if msg == "" {
				msg = c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap().String()
			}
			_, _ = c.Write([]byte(msg))
			c.Close()
		}
	}()
	return l.Addr()
}

// Fetch connects to addr over TCP from the namespace at path ("" for the
// test's own) and returns what the server sends before closing.
func Fetch(path, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp", addr, timeout)
		return err
	}
	var err error
	if path == "" {
		err = dial()
	} else {
		err = Do(path, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	buf := make([]byte, 256)
	var out []byte
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(out), nil
}

var (
	subnetMu   sync.Mutex
	subnetUsed []netip.Prefix
)

// Subnet returns a /24 inside base that overlaps no host route and no
// subnet handed out before in this process. Give each test package its own
// base (packages' tests run in parallel) inside 10.250.0.0/16.
func Subnet(t testing.TB, base string) netip.Prefix {
	t.Helper()
	routes, err := ipam.HostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	subnetMu.Lock()
	defer subnetMu.Unlock()
	p, err := ipam.PickSubnet([]ipam.Pool{{Base: netip.MustParsePrefix(base), Size: 24}}, append(routes, subnetUsed...))
	if err != nil {
		t.Fatalf("pick a test subnet in %s: %v", base, err)
	}
	subnetUsed = append(subnetUsed, p)
	return p
}
