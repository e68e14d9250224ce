// Package seccomp turns an OCI seccomp configuration into a BPF program
// (in the runtime parent, with libseccomp) and installs that program in the
// container's init process right before execve (raw syscall, no libseccomp).
package seccomp
