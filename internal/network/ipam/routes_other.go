//go:build !linux

package ipam

import (
	"fmt"
	"net/netip"

	"github.com/berth-project/berth/internal/errdefs"
)

// HostRoutes is only implemented on Linux.
func HostRoutes() ([]netip.Prefix, error) {
	return nil, fmt.Errorf("ipam: host routes: %w", errdefs.ErrNotImplemented)
}
