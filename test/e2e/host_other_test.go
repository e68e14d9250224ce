//go:build !linux

package e2e

import "testing"

// cleanupHost has nothing to remove where berthd does not run.
func (d *Daemon) cleanupHost(t *testing.T) {}

// proc is a process found in /proc.
type proc struct {
	pid     int
	cmdline string
}

// shims finds no shims where berthd does not run.
func (d *Daemon) shims(t *testing.T) []proc { return nil }

func (p proc) kill(t *testing.T, d *Daemon) {}

// unmountAll has nothing to unmount where berthd does not run.
func unmountAll(t *testing.T, dir string) {}
