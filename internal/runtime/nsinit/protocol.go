// Package nsinit is the part of berth-runtime that runs inside the new
// namespaces as the container's first process ("berth-runtime init"): it
// builds the root filesystem, sets up the process (user, capabilities,
// rlimits, seccomp, terminal) and finally execve()s the user's program.
//
// The runtime parent starts it with the namespaces already created (clone
// flags) or joined (the nsenter constructor), and talks to it over a
// syncpipe. The whole conversation for create is:
//
//	parent (berth-runtime create)              child (berth-runtime init)
//	-----------------------------              --------------------------
//	start child, join cgroup, set limits
//	Config (spec, rootfs, seccomp BPF) ----->   (syncpipe's binary encoding)
//	                                           mount rootfs, mounts, devices
//	                               <---------- {"type":"hooks"}   (only with prestart/createRuntime hooks)
//	run prestart, createRuntime hooks
//	{"type":"hooksDone"} ------------------->
//	                                           createContainer hooks, pivot_root,
//	                                           masked/readonly paths, console,
//	                                           sysctls, rlimits, user, caps, cwd
//	                               <---------- {"type":"seccompFd","fd":N} (only with listenerPath;
//	pidfd_getfd(init, N), send it to                 plain write(2), the filter is loaded)
//	the seccomp agent
//	{"type":"seccompFdDone"} --------------->  (read with plain read(2))
//	                               <---------- close (success) or {"type":"error"}
//	write state.json, exit
//	                                           block opening the exec fifo for write
//	(berth-runtime start) open fifo, read ---> fifo opened, write one byte,
//	                                           startContainer hooks, execve
//	read until EOF, poststart hooks <--------- execve closes the fifo (O_CLOEXEC)
//
// Run (create and start in one process) needs no fifo: with
// Config.StartByPipe, init keeps the pipe instead of closing it and start
// goes over it:
//
//	                               <---------- {"type":"ready"}
//	write state.json
//	{"type":"start"} ----------------------->  (read with plain read(2))
//	                               <---------- {"type":"started"}
//	                                           startContainer hooks, execve
//	read until EOF, poststart hooks <--------- execve closes the pipe (O_CLOEXEC)
//
// Until start, such a container has no exec fifo, so its status reads
// "running" rather than "created"; only the run that made it can start it.
//
// Any failure in the child is sent as {"type":"error","error":"..."} and the
// child exits; the parent reports the message verbatim and removes everything
// it created.
package nsinit

import (
	"github.com/berth-project/berth/internal/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Message types on the sync pipe.
const (
	MsgHooks         = "hooks"
	MsgHooksDone     = "hooksDone"
	MsgSeccompFd     = "seccompFd"
	MsgSeccompFdDone = "seccompFdDone"
	MsgError         = "error"
	// MsgReady, MsgStart and MsgStarted replace the exec fifo for run.
	MsgReady   = "ready"
	MsgStart   = "start"
	MsgStarted = "started"
)

// Message is one message of the sync protocol other than the Config.
type Message struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
	// Fd is init's descriptor number of the seccomp listener.
	Fd int `json:"fd,omitempty"`
}

// Environment variables through which the parent tells init its descriptors.
const (
	EnvSyncFD    = "_BERTH_INIT_SYNC_FD"
	EnvFifoFD    = "_BERTH_INIT_FIFO_FD"
	EnvConsoleFD = "_BERTH_INIT_CONSOLE_FD"
	// EnvNetNSFD names the container's network namespace, which init
	// enters instead of having clone make one: a new one the parent made
	// (loopback up) while it prepared the rest, or the one the spec joins
	// by path when nothing else needs the nsenter constructor.
	EnvNetNSFD  = "_BERTH_INIT_NETNS_FD"
	EnvLogLevel = "_BERTH_INIT_DEBUG"
)

// CgroupMount is one cgroup hierarchy mounted on the host, as mountinfo
// shows it.
type CgroupMount struct {
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"` // "cgroup" or "cgroup2"
	Root       string `json:"root"`
	Options    string `json:"options"` // super-block options, e.g. "rw,memory"
}

// Config is everything init needs, sent by the parent as the first
// message in syncpipe's binary encoding (see syncpipe.AppendBinary), which
// init decodes far faster than JSON; the json tags only serve tests and
// debugging.
type Config struct {
	// ID is the container id.
	ID string `json:"id"`
	// Spec is the validated OCI configuration.
	Spec *specs.Spec `json:"spec"`
	// Rootfs is the absolute host path of the root filesystem.
	Rootfs string `json:"rootfs"`
	// Bundle is the bundle directory, for hook state.
	Bundle string `json:"bundle"`
	// HostPid is init's pid as the host sees it, for hook state.
	HostPid int `json:"hostPid,omitempty"`
	// Exec is set when init joins an existing container to run an extra
	// process: no root filesystem or namespace setup is done then.
	Exec bool `json:"exec,omitempty"`
	// Seccomp is the compiled filter, nil for none.
	Seccomp *seccomp.Program `json:"seccomp,omitempty"`
	// RuntimeHooks tells init to stop for prestart/createRuntime hooks.
	RuntimeHooks bool `json:"runtimeHooks,omitempty"`
	// NoPivot makes init chroot instead of pivot_root (runc's --no-pivot).
	NoPivot bool `json:"noPivot,omitempty"`
	// NoNewKeyring keeps the caller's session keyring.
	NoNewKeyring bool `json:"noNewKeyring,omitempty"`
	// CgroupPaths are the container's cgroup directories on the host, keyed
	// by controller ("" for the unified v2 directory), used to mount
	// /sys/fs/cgroup when there is no cgroup namespace.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// CgroupMounts are the host's cgroup hierarchies as the runtime read
	// them from mountinfo to make the cgroup, so that init need not read
	// it again (empty: init reads it).
	CgroupMounts []CgroupMount `json:"cgroupMounts,omitempty"`
	// PreserveFDs is the number of extra descriptors (from 3) the process keeps.
	PreserveFDs int `json:"preserveFds,omitempty"`
	// StartByPipe makes init wait for start on the sync pipe instead of
	// the exec fifo (run).
	StartByPipe bool `json:"startByPipe,omitempty"`
}
