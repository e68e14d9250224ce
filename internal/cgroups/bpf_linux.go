package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file wraps the few bpf(2) commands the device filter needs. Each
// command's attributes are a member of the kernel's union bpf_attr, copied
// here with its exact layout up to the last field used: the kernel accepts
// a shorter attr and zero-fills the rest. Pointers are __aligned_u64 in
// the kernel, uint64 here.
//
// A pointer stored in an attr as an integer is invisible to the garbage
// collector and is not updated if the goroutine stack moves. So every
// wrapper converts its pointers right before calling unix.Syscall, with no
// call in between (unix.Syscall and the runtime code it enters are
// nosplit, so the stack cannot move until the kernel returns), and keeps
// the pointed-to memory alive with runtime.KeepAlive after the call.

// bpfVerifierLogSize is the size of the buffer for the verifier's log when
// a program is rejected; ours are a few dozen instructions, whose log at
// level 1 takes a few KiB.
const bpfVerifierLogSize = 256 << 10

// bpfErrorLogTail is how much of the end of the verifier log, where the
// reason for a rejection is, goes into the error.
const bpfErrorLogTail = 2 << 10

// bpfProgLoadAttr is union bpf_attr for BPF_PROG_LOAD, up to
// expected_attach_type.
type bpfProgLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64 // const struct bpf_insn *
	license            uint64 // const char *, NUL-terminated
	logLevel           uint32
	logSize            uint32
	logBuf             uint64 // char *
	kernVersion        uint32
	progFlags          uint32
	progName           [unix.BPF_OBJ_NAME_LEN]byte
	progIfindex        uint32
	expectedAttachType uint32
}

// bpfAttachAttr is union bpf_attr for BPF_PROG_ATTACH and BPF_PROG_DETACH,
// up to replace_bpf_fd.
type bpfAttachAttr struct {
	targetFD     uint32
	attachBPFFD  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBPFFD uint32
}

// bpfQueryAttr is union bpf_attr for BPF_PROG_QUERY, up to prog_cnt and
// the padding after it.
type bpfQueryAttr struct {
	targetFD    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64 // __u32 *
	progCnt     uint32
	_           uint32
}

// bpfGetIDAttr is union bpf_attr for BPF_PROG_GET_FD_BY_ID.
type bpfGetIDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

// bpfInfoAttr is union bpf_attr for BPF_OBJ_GET_INFO_BY_FD.
type bpfInfoAttr struct {
	bpfFD   uint32
	infoLen uint32
	info    uint64 // struct bpf_prog_info *
}

// bpfProgInfo is struct bpf_prog_info up to name. Its zero length and
// pointer fields ask the kernel for no instructions and no map ids.
type bpfProgInfo struct {
	typ             uint32
	id              uint32
	tag             [8]byte
	jitedProgLen    uint32
	xlatedProgLen   uint32
	jitedProgInsns  uint64
	xlatedProgInsns uint64
	loadTime        uint64
	createdByUID    uint32
	nrMapIDs        uint32
	mapIDs          uint64
	name            [unix.BPF_OBJ_NAME_LEN]byte
}

// bpfProgLoad loads insns as a program of type progType named name, with
// license license, and returns its file descriptor (close-on-exec). If
// the kernel rejects it, the load is retried with a verifier log, whose
// end goes into the error.
func bpfProgLoad(progType uint32, insns []bpfInsn, license, name string) (int, error) {
	if len(insns) == 0 {
		return -1, errors.New("bpf: load: empty program")
	}
	if len(name) >= unix.BPF_OBJ_NAME_LEN {
		return -1, fmt.Errorf("bpf: load: program name %q is longer than %d bytes", name, unix.BPF_OBJ_NAME_LEN-1)
	}
	lic := append([]byte(license), 0)
	attr := bpfProgLoadAttr{progType: progType, insnCnt: uint32(len(insns))}
	copy(attr.progName[:], name)
	fd, err := bpfProgLoadAttempt(&attr, insns, lic, nil)
	if err == nil {
		return fd, nil
	}
	log := make([]byte, bpfVerifierLogSize)
	attr.logLevel = 1
	attr.logSize = uint32(len(log))
	fd, err2 := bpfProgLoadAttempt(&attr, insns, lic, log)
	if err2 == nil {
		// The rejection was transient (a memory limit, say).
		return fd, nil
	}
	if n := bytes.IndexByte(log, 0); n >= 0 {
		log = log[:n]
	}
	msg := bytes.TrimSpace(log)
	if len(msg) == 0 {
		return -1, fmt.Errorf("bpf: load program %s: %w", name, err)
	}
	if len(msg) > bpfErrorLogTail {
		msg = msg[len(msg)-bpfErrorLogTail:]
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		msg = append([]byte("...\n"), msg...)
	}
	return -1, fmt.Errorf("bpf: load program %s: %w; verifier log:\n%s", name, err, msg)
}

// bpfProgLoadAttempt runs BPF_PROG_LOAD with attr, pointing it at insns,
// the NUL-terminated license and log (nil for none).
func bpfProgLoadAttempt(attr *bpfProgLoadAttr, insns []bpfInsn, license, log []byte) (int, error) {
	// No calls from here to the syscall: see the comment at the top.
	attr.insns = uint64(uintptr(unsafe.Pointer(&insns[0])))
	attr.license = uint64(uintptr(unsafe.Pointer(&license[0])))
	if log != nil {
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// bpfProgAttach attaches program progFD to the cgroup cgroupFD at
// attachType, with flags (BPF_F_ALLOW_MULTI, ...).
func bpfProgAttach(cgroupFD, progFD int, attachType, flags uint32) error {
	attr := bpfAttachAttr{
		targetFD:    uint32(cgroupFD),
		attachBPFFD: uint32(progFD),
		attachType:  attachType,
		attachFlags: flags,
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_ATTACH, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return fmt.Errorf("bpf: attach program: %w", errno)
	}
	return nil
}

// bpfProgDetach detaches program progFD from the cgroup cgroupFD at
// attachType.
func bpfProgDetach(cgroupFD, progFD int, attachType uint32) error {
	attr := bpfAttachAttr{
		targetFD:    uint32(cgroupFD),
		attachBPFFD: uint32(progFD),
		attachType:  attachType,
	}
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_DETACH, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return fmt.Errorf("bpf: detach program: %w", errno)
	}
	return nil
}

// bpfProgQuery returns the ids of the programs attached to the cgroup
// cgroupFD itself (not inherited from its ancestors) at attachType, in the
// order they run.
func bpfProgQuery(cgroupFD int, attachType uint32) ([]uint32, error) {
	// A cgroup holds at most 64 programs per attach type
	// (BPF_CGROUP_MAX_PROGS), but grow if a kernel allows more.
	ids := make([]uint32, 64)
	for {
		n, err := bpfProgQueryAttempt(cgroupFD, attachType, ids)
		if errors.Is(err, unix.ENOSPC) && n > len(ids) {
			ids = make([]uint32, n)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("bpf: query programs: %w", err)
		}
		return ids[:n:n], nil
	}
}

// bpfProgQueryAttempt runs BPF_PROG_QUERY with room for len(ids) ids and
// returns how many programs are attached: more than len(ids), with
// ENOSPC, if they did not fit.
func bpfProgQueryAttempt(cgroupFD int, attachType uint32, ids []uint32) (int, error) {
	attr := bpfQueryAttr{
		targetFD:   uint32(cgroupFD),
		attachType: attachType,
		progCnt:    uint32(len(ids)),
	}
	// No calls from here to the syscall: see the comment at the top.
	attr.progIDs = uint64(uintptr(unsafe.Pointer(&ids[0])))
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_QUERY, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(ids)
	if errno != 0 {
		return int(attr.progCnt), errno
	}
	return int(attr.progCnt), nil
}

// bpfProgGetFDByID opens the program with id and returns its file
// descriptor (close-on-exec). The error wraps ENOENT if there is no such
// program (any more).
func bpfProgGetFDByID(id uint32) (int, error) {
	attr := bpfGetIDAttr{id: id}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_GET_FD_BY_ID, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	if errno != 0 {
		return -1, fmt.Errorf("bpf: open program %d: %w", id, errno)
	}
	return int(fd), nil
}

// bpfProgName returns the name of program progFD, as given at load time
// (truncated to 15 bytes by the kernel).
func bpfProgName(progFD int) (string, error) {
	info := new(bpfProgInfo)
	attr := bpfInfoAttr{bpfFD: uint32(progFD), infoLen: uint32(unsafe.Sizeof(*info))}
	// No calls from here to the syscall: see the comment at the top.
	attr.info = uint64(uintptr(unsafe.Pointer(info)))
	_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_OBJ_GET_INFO_BY_FD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(info)
	if errno != 0 {
		return "", fmt.Errorf("bpf: get program info: %w", errno)
	}
	name := info.name[:]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return string(name), nil
}
