//go:build !linux

package docker

// detachMount does nothing where berthd mounts nothing.
func detachMount(string) error { return nil }
