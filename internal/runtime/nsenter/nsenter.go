// Package nsenter joins existing namespaces before the Go runtime starts.
//
// setns(2) into a user or mount namespace needs a single-threaded process,
// and a Go program is never single-threaded. So a small C constructor
// (nsenter.c), linked into berth-runtime, runs before the Go runtime when
// the environment variable EnvRequest is set. It follows the Request:
//
//  1. open every namespace path to join (before any join changes what the
//     paths mean)
//  2. setns the user namespace first (and become uid/gid 0 in it), then
//     ipc, uts, net, pid, cgroup, time and mnt last
//  3. unshare(CLONE_NEWUSER) if a new user namespace is wanted, send
//     {"type":"maps"} on the sync pipe and wait for the parent to write
//     uid_map/gid_map and answer; then become uid/gid 0 in it
//  4. unshare the other new namespaces (not cgroup or time: init makes
//     those once it is in its cgroup)
//  5. if a pid namespace was joined or created, fork with CLONE_PARENT so
//     the runtime (not this process) is the parent of the process that
//     lives in it; the intermediate process exits
//  6. send {"type":"pid","pid":N} with the pid of the process that goes
//     on into the Go runtime, as the parent's pid namespace sees it
//
// Messages use the syncpipe framing (4-byte little-endian length + JSON);
// failures are sent as {"type":"pid","error":"..."} and the process exits 1.
package nsenter

// #cgo CFLAGS: -Wall -O2
// extern void berth_nsenter(void);
// void __attribute__((constructor)) berth_nsenter_init(void) { berth_nsenter(); }
import "C"

import (
	"fmt"
	"strings"
)

// EnvRequest carries the encoded Request to the constructor.
const EnvRequest = "_BERTH_NSENTER"

// EnvSyncFD names the sync pipe descriptor (shared with nsinit).
const EnvSyncFD = "_BERTH_INIT_SYNC_FD"

// Join is one namespace to enter by path.
type Join struct {
	Type string // OCI type: "user", "mount", "network", ...
	Path string
}

// Request is what the constructor does.
type Request struct {
	Joins []Join
	// Unshare is the CLONE_NEW* flags of the namespaces to create.
	Unshare uint64
	// UIDMap and GIDMap are only used to know a new user namespace needs
	// its maps written by the parent (they are written by the parent).
	UIDMap, GIDMap string
}

// PidMessage is what the constructor sends to the parent.
type PidMessage struct {
	Type  string `json:"type"`
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

var nsLetters = map[string]string{
	"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
	"cgroup": "cgroup", "time": "time", "mount": "mnt",
}

// Encode renders r in the line format the C code parses:
// "join <kind> <path>" lines and one "unshare <flags>" line.
func (r Request) Encode() string {
	var b strings.Builder
	for _, j := range r.Joins {
		fmt.Fprintf(&b, "join %s %s\n", nsLetters[j.Type], j.Path)
	}
	fmt.Fprintf(&b, "unshare %d\n", r.Unshare)
	return b.String()
}
