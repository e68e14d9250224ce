//go:build !linux

package dns

import (
	"errors"
	"net"
	"net/netip"
)

// listen opens the sockets; other namespaces exist only on Linux.
func listen(path string, addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	if path != "" {
		return nil, nil, errors.New("network namespaces need Linux")
	}
	return listenHere(addr)
}
