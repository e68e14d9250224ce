//go:build !linux

package docker

import "net"

// watchHangup cannot tell a closed client from a half-closed one here:
// the channel never closes.
func watchHangup(net.Conn) (<-chan struct{}, func()) { return nil, func() {} }
