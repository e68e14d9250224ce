//go:build !linux

package firewall

import (
	"fmt"
	"net/netip"

	"github.com/berth-project/berth/internal/errdefs"
)

var errNotLinux = fmt.Errorf("firewall needs Linux nftables: %w", errdefs.ErrNotImplemented)

// Firewall is only implemented on Linux.
type Firewall struct{}

// New is only implemented on Linux.
func New(string) (*Firewall, error) { return nil, errNotLinux }

// Table is only implemented on Linux.
func (*Firewall) Table() string { return "" }

// Init is only implemented on Linux.
func (*Firewall) Init() error { return errNotLinux }

// Sync is only implemented on Linux.
func (*Firewall) Sync([]Network, []PortMapping) error { return errNotLinux }

// Cleanup is only implemented on Linux.
func (*Firewall) Cleanup() error { return errNotLinux }

// SetForwardGuard is only implemented on Linux.
func (*Firewall) SetForwardGuard(bool, bool) error { return errNotLinux }

// AddNetwork is only implemented on Linux.
func (*Firewall) AddNetwork(Network) error { return errNotLinux }

// RemoveNetwork is only implemented on Linux.
func (*Firewall) RemoveNetwork(string) error { return errNotLinux }

// AddPort is only implemented on Linux.
func (*Firewall) AddPort(PortMapping) error { return errNotLinux }

// RemovePort is only implemented on Linux.
func (*Firewall) RemovePort(PortMapping) error { return errNotLinux }

// AddPorts is only implemented on Linux.
func (*Firewall) AddPorts(...PortMapping) error { return errNotLinux }

// RemovePorts is only implemented on Linux.
func (*Firewall) RemovePorts(...PortMapping) error { return errNotLinux }

// RedirectDNS is only implemented on Linux.
func RedirectDNS(string, netip.Addr, uint16, uint16) error { return errNotLinux }
