//go:build !linux

package cgroups

import (
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// New is only implemented on Linux.
func New(cgroupsPath, containerID string) (Manager, error) {
	return nil, fmt.Errorf("cgroups: %w", errdefs.ErrNotImplemented)
}

// Load is only implemented on Linux.
func Load(paths map[string]string) (Manager, error) {
	return nil, fmt.Errorf("cgroups: %w", errdefs.ErrNotImplemented)
}

// HostMounts is only implemented on Linux.
func HostMounts() ([]Hierarchy, error) {
	return nil, fmt.Errorf("cgroups: %w", errdefs.ErrNotImplemented)
}

// Hierarchies is nil outside Linux.
func Hierarchies(m Manager) []Hierarchy { return nil }

// IsUnified is false outside Linux.
func IsUnified() bool { return false }

// NotifyOOM is only implemented on Linux.
func NotifyOOM(m Manager) (<-chan struct{}, func(), error) {
	return nil, nil, fmt.Errorf("cgroups: %w", errdefs.ErrNotImplemented)
}
