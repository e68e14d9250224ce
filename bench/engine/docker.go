//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/bench/internal/dockerd"
	"github.com/berth-project/berth/bench/internal/host"
)

// refDocker is the reference dockerd with what the bench made for it: a
// bridge for its default network (with an address of a free /24) and a
// cgroup parent of its own.
type refDocker struct {
	*dockerd.Daemon
	api          *apiClient
	bridge       string
	subnet       *net.IPNet
	cgroupParent string // "/bbe-<suffix>"
}

// startDocker makes dockerd's bridge and starts dockerd under dir. Its
// default network is that bridge, without iptables, forwarding or
// masquerading (--iptables=false --ip6tables=false --ip-forward=false
// --ip-masq=false): dockerd leaves the host's firewall alone. On error
// whatever it made is removed.
func startDocker(ctx context.Context, dir, bridge, cgroupParent string) (d *refDocker, err error) {
	d = &refDocker{bridge: bridge, cgroupParent: cgroupParent}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.stop())
		}
	}()
	if d.subnet, err = makeBridge(bridge); err != nil {
		return d, err
	}
	d.Daemon, err = dockerd.Start(ctx, dir,
		"--bridge="+bridge, "--iptables=false", "--ip6tables=false",
		"--ip-forward=false", "--ip-masq=false", "--cgroup-parent="+cgroupParent)
	if err != nil {
		d.Daemon = nil
		return d, err
	}
	d.api = newAPIClient(d.Socket)
	return d, nil
}

// shimOf says whether argv is one of this dockerd's container shims:
// containerd-shim-runc-v2 with its containerd's address under the exec
// root.
func (d *refDocker) shimOf(argv []string) bool {
	return d.Daemon != nil && len(argv) > 0 && filepath.Base(argv[0]) == "containerd-shim-runc-v2" && host.ArgsUnder(argv, d.ExecRoot)
}

// stop stops dockerd and its containerd (killing any shim left: the
// caller removes the containers first) and any process left in its
// cgroup parent, then deletes the bridge and the cgroup parent's
// directories. A nil d is a no-op.
func (d *refDocker) stop() error {
	if d == nil {
		return nil
	}
	var errs []error
	if d.Daemon != nil {
		errs = append(errs, d.Daemon.Stop())
		if ps, err := host.Processes(); err == nil {
			for _, p := range ps {
				if d.shimOf(p.Argv) {
					_ = unix.Kill(p.Pid, unix.SIGKILL)
					errs = append(errs, fmt.Errorf("containerd-shim %d outlived its containers: killed", p.Pid))
				}
			}
		}
	}
	errs = append(errs, host.DeleteLink(d.bridge))
	if d.cgroupParent != "" {
		// Empty once dockerd removed the containers; a container it
		// could not remove still has its processes there.
		killed, err := host.RemoveCgroup(d.cgroupParent)
		if killed > 0 {
			errs = append(errs, fmt.Errorf("%d processes of dockerd's containers outlived it: killed", killed))
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// makeBridge creates the bridge name with the first address of a /24 in
// 10.231.0.0/16 that no route of the host but the default one overlaps,
// and brings it up.
func makeBridge(name string) (*net.IPNet, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var subnet *net.IPNet
	start := rand.IntN(256)
	for i := range 256 {
		n := &net.IPNet{IP: net.IPv4(10, 231, byte((start+i)%256), 0).To4(), Mask: net.CIDRMask(24, 32)}
		free := true
		for _, r := range routes {
			if r.Dst == nil {
				continue
			}
			if ones, _ := r.Dst.Mask.Size(); ones > 0 && (r.Dst.Contains(n.IP) || n.Contains(r.Dst.IP)) {
				free = false
				break
			}
		}
		if free {
			subnet = n
			break
		}
	}
	if subnet == nil {
		return nil, errors.New("no free /24 in 10.231.0.0/16 for dockerd's bridge")
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("create bridge %s: %w", name, err)
	}
	gw := &net.IPNet{IP: net.IPv4(subnet.IP[0], subnet.IP[1], subnet.IP[2], 1).To4(), Mask: subnet.Mask}
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: gw}); err != nil {
		return nil, fmt.Errorf("address bridge %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("bring bridge %s up: %w", name, err)
	}
	return subnet, nil
}
