package cgroups

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestBPFAttrLayouts checks the attr structs against the offsets of the
// kernel's union bpf_attr members and struct bpf_prog_info.
func TestBPFAttrLayouts(t *testing.T) {
	var load bpfProgLoadAttr
	var attach bpfAttachAttr
	var query bpfQueryAttr
	var getID bpfGetIDAttr
	var info bpfInfoAttr
	var pinfo bpfProgInfo
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"prog_load.insns", unsafe.Offsetof(load.insns), 8},
		{"prog_load.license", unsafe.Offsetof(load.license), 16},
		{"prog_load.log_level", unsafe.Offsetof(load.logLevel), 24},
		{"prog_load.log_buf", unsafe.Offsetof(load.logBuf), 32},
		{"prog_load.prog_flags", unsafe.Offsetof(load.progFlags), 44},
		{"prog_load.prog_name", unsafe.Offsetof(load.progName), 48},
		{"prog_load.expected_attach_type", unsafe.Offsetof(load.expectedAttachType), 68},
		{"sizeof prog_load", unsafe.Sizeof(load), 72},
		{"attach.attach_flags", unsafe.Offsetof(attach.attachFlags), 12},
		{"attach.replace_bpf_fd", unsafe.Offsetof(attach.replaceBPFFD), 16},
		{"sizeof attach", unsafe.Sizeof(attach), 20},
		{"query.prog_ids", unsafe.Offsetof(query.progIDs), 16},
		{"query.prog_cnt", unsafe.Offsetof(query.progCnt), 24},
		{"sizeof query", unsafe.Sizeof(query), 32},
		{"sizeof get_id", unsafe.Sizeof(getID), 12},
		{"info.info", unsafe.Offsetof(info.info), 8},
		{"sizeof info", unsafe.Sizeof(info), 16},
		{"prog_info.jited_prog_insns", unsafe.Offsetof(pinfo.jitedProgInsns), 24},
		{"prog_info.created_by_uid", unsafe.Offsetof(pinfo.createdByUID), 48},
		{"prog_info.map_ids", unsafe.Offsetof(pinfo.mapIDs), 56},
		{"prog_info.name", unsafe.Offsetof(pinfo.name), 64},
		{"sizeof prog_info", unsafe.Sizeof(pinfo), 80},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, kernel has %d", c.name, c.got, c.want)
		}
	}
}

// TestBPFProgLoadVerifierLog checks that a rejected program's error says
// why, from the verifier's log.
func TestBPFProgLoadVerifierLog(t *testing.T) {
	// r0 is never set: the verifier says "R0 !read_ok".
	fd, err := bpfProgLoad(unix.BPF_PROG_TYPE_CGROUP_DEVICE, []bpfInsn{exitInsn()}, "Apache", deviceProgramName)
	if err == nil {
		unix.Close(fd)
		t.Fatal("program that returns an unset r0 loaded")
	}
	if errors.Is(err, unix.EPERM) {
		t.Skipf("kernel refuses BPF_PROG_LOAD of cgroup device programs (BPF disabled or locked down): %v", err)
	}
	if !errors.Is(err, unix.EACCES) || !strings.Contains(err.Error(), "R0 !read_ok") {
		t.Errorf("err = %v, want EACCES with the verifier's reason", err)
	}
}
