//go:build !linux

package main

import (
	"context"
	"fmt"
	"net"

	"github.com/berth-project/berth/internal/errdefs"
)

func checkSocketFree(host string) error { return nil }

func listenUnix(ctx context.Context, path, group string) (net.Listener, error) {
	return nil, fmt.Errorf("unix sockets: %w", errdefs.ErrNotImplemented)
}

func activationListeners() ([]net.Listener, error) {
	return nil, fmt.Errorf("socket activation: %w", errdefs.ErrNotImplemented)
}

func sdNotify(state string) error { return nil }
