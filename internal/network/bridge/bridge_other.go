//go:build !linux

package bridge

import (
	"fmt"
	"net/netip"

	"github.com/berth-project/berth/internal/errdefs"
)

var errNotLinux = fmt.Errorf("bridge networks need Linux: %w", errdefs.ErrNotImplemented)

// Create is only implemented on Linux.
func Create(Config) error { return errNotLinux }

// Delete is only implemented on Linux.
func Delete(string) error { return errNotLinux }

// Ports is only implemented on Linux.
func Ports(string) ([]string, error) { return nil, errNotLinux }

// Addrs is only implemented on Linux.
func Addrs(string) ([]netip.Prefix, error) { return nil, errNotLinux }

// Attach is only implemented on Linux.
func Attach(string, Endpoint) error { return errNotLinux }

// Detach is only implemented on Linux.
func Detach(string) error { return errNotLinux }

// RemoveStrayPairs is only implemented on Linux.
func RemoveStrayPairs() ([]string, error) { return nil, errNotLinux }
