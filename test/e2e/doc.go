// Package e2e holds berth's black-box tests: they start the real berthd
// with its own data root, exec root and socket in a temporary directory and
// drive it with the real docker CLI, against registries on loopback.
package e2e
