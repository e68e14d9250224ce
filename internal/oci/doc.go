// Package oci makes a container's OCI runtime spec from its Docker
// configuration (Generate), with Docker's default capabilities, seccomp
// profile, mounts, masked paths and device rules. The example spec that
// `berth-runtime spec` writes is in internal/runtime/examplespec.
package oci
