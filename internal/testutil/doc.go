// Package testutil provides offline fixtures for berth's tests and
// benchmarks: a busybox root filesystem built from Debian's busybox-static,
// OCI bundles around it, the berth-runtime binary under test, fresh state
// roots and container ids, a runner for the runtime with a timeout, and a
// leak check for mounts, cgroups and processes left behind by a container.
//
// Functions that take a testing.TB fail the test on error and clean up after
// it; their counterparts without one (BusyboxRootfs, WriteBundle, Leaks)
// return errors so that non-test programs such as the bench can use them.
package testutil
