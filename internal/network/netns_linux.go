package network

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/loopback"
)

// prepareNetNSDir makes dir a mount point with shared propagation, as
// `ip netns` does with /run/netns: a namespace file bind-mounted below it
// then shows up in mount namespaces copied from the host's later, and its
// unmount reaches them too, so no copy keeps a namespace alive.
func prepareNetNSDir(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return fmt.Errorf("check mount %s: %w", dir, err)
	}
	if !mounted {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s on itself: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s a shared mount: %w", dir, err)
	}
	return nil
}

// newNetNS makes a network namespace with loopback up and bind-mounts it on
// path, which must not exist. The work runs on a locked thread that returns
// to its own namespace afterwards (or dies with its goroutine if it cannot).
func newNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("network namespace %s already exists: %w", path, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open the thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		err = unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
		if err != nil {
			err = fmt.Errorf("bind-mount network namespace on %s: %w", path, err)
		} else {
			err = loopback.Up()
		}
		if serr := netns.Set(orig); serr != nil {
			// Leave the thread locked: it exits with this goroutine
			// instead of running other code in the wrong namespace.
			errc <- errors.Join(err, fmt.Errorf("return to the original network namespace: %w", serr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		_ = removeNetNS(path)
		return err
	}
	return nil
}

// removeNetNS unmounts and removes a namespace file; a missing one is not
// an error.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// isNetNS reports whether path is a mounted network namespace.
func isNetNS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// errAddrInUse tells a host process (or another socket) holds the port.
var errAddrInUse = errors.New("address already in use")

// reservePort binds a socket to the host address and port of a published
// port and keeps it, so no host process can take the port while it is
// published; the socket never listens, and the DNAT rules send the
// traffic to the container before it could reach it. SCTP is not
// reserved.
func reservePort(proto string, ip netip.Addr, port uint16) (io.Closer, error) {
	typ := unix.SOCK_STREAM
	switch proto {
	case "udp":
		typ = unix.SOCK_DGRAM
	case "sctp":
		return io.NopCloser(nil), nil
	}
	fam := unix.AF_INET
	if ip.Is6() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	var sa unix.Sockaddr
	if ip.Is6() {
		// The IPv4 port is reserved by its own socket.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("set IPV6_V6ONLY: %w", err)
		}
		sa = &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, errAddrInUse
		}
		return nil, err
	}
	return fdCloser(fd), nil
}

type fdCloser int

func (fd fdCloser) Close() error { return unix.Close(int(fd)) }

// linkExists reports whether a host interface of that name exists.
func linkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	return !errors.As(err, &nf)
}

// turnOnForwarding turns on IPv4 forwarding (IPv6 forwarding with ipv6)
// in the calling thread's network namespace and reports whether it was
// off.
func turnOnForwarding(ipv6 bool) (bool, error) {
	p := "/proc/sys/net/ipv4/ip_forward"
	if ipv6 {
		p = "/proc/sys/net/ipv6/conf/all/forwarding"
	}
	cur, err := os.ReadFile(p)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return false, nil
	}
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
		return false, fmt.Errorf("enable forwarding: %w", err)
	}
	return true, nil
}

// bootID identifies the host's current boot.
func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
