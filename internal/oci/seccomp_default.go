package oci

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultAllowed are the system calls the default profile allows whatever
// the capabilities, architecture and arguments.
const defaultAllowed = `
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod
chown chown32 clock_adjtime clock_adjtime64 clock_getres
clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat
dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat faccessat2 fadvise64
fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchown
fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock
fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64
fsync ftruncate ftruncate64 futex futex_time64 futex_waitv futimesat
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32
getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid
getpgrp getpid getppid getpriority getrandom getresgid getresgid32
getresuid getresuid32 getrlimit get_robust_list getrusage getsid
getsockname getsockopt get_thread_area gettid gettimeofday getuid
getuid32 getxattr inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
io_uring_enter io_uring_register io_uring_setup ipc kill
landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek
lremovexattr lseek lsetxattr lstat lstat64 madvise membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock
mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64
mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall
munmap name_to_handle_at nanosleep newfstatat _newselect open openat
openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc
pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv
preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64
pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom
recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_rr_get_interval_time64 sched_setaffinity sched_setattr
sched_setparam sched_setscheduler sched_yield seccomp select semctl
semget semop semtimedop semtimedop_time64 send sendfile sendfile64
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid
setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid
setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget
shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat
sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_gettime64
timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate
truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write writev
`

// cloneNamespaceFlags is CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|
// CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET: clone without
// CAP_SYS_ADMIN is allowed only when none of these is set.
const cloneNamespaceFlags = 0x7E020000

// afVsock is AF_VSOCK: socket(2) is allowed for every other family.
const afVsock = 40

// defaultProfile returns berth's default seccomp profile in Docker's
// format, the policy of Docker's default profile: every system call not
// allowed below fails with EPERM. Each call returns a new profile.
func defaultProfile() *profile {
	eperm, enosys := uint(1), uint(38)
	allow := func(names string, includes, excludes *ruleFilter, args ...specs.LinuxSeccompArg) profileRule {
		return profileRule{Names: strings.Fields(names), Action: specs.ActAllow, Args: args, Includes: includes, Excludes: excludes}
	}
	withCaps := func(caps ...string) *ruleFilter { return &ruleFilter{Caps: caps} }
	onArches := func(arches ...string) *ruleFilter { return &ruleFilter{Arches: arches} }
	argEq := func(index uint, value uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: index, Value: value, Op: specs.OpEqualTo}
	}
	cloneWithoutNamespaces := func(index uint) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: index, Value: cloneNamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}
	}

	rules := []profileRule{
		allow(defaultAllowed, nil, nil),
		allow("process_vm_readv process_vm_writev ptrace", &ruleFilter{MinKernel: "4.8"}, nil),
		allow("socket", nil, nil, specs.LinuxSeccompArg{Index: 0, Value: afVsock, Op: specs.OpNotEqual}),
	}
	// personality(2) only with PER_LINUX, PER_LINUX32, UNAME26,
	// UNAME26|PER_LINUX32 and the 0xffffffff query.
	for _, persona := range []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff} {
		rules = append(rules, allow("personality", nil, nil, argEq(0, persona)))
	}
	rules = append(rules,
		allow("sync_file_range2 swapcontext", onArches("ppc64le"), nil),
		allow("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls", onArches("arm", "arm64"), nil),
		allow("arch_prctl", onArches("amd64", "x32"), nil),
		allow("modify_ldt", onArches("amd64", "x32", "x86"), nil),
		allow("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr", onArches("s390", "s390x"), nil),
		allow("riscv_flush_icache", onArches("riscv64"), nil),
		allow("open_by_handle_at", withCaps("CAP_DAC_READ_SEARCH"), nil),
		allow(`bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick
			lookup_dcookie mount mount_setattr move_mount open_tree perf_event_open
			quotactl quotactl_fd setdomainname sethostname setns syslog umount
			umount2 unshare`, withCaps("CAP_SYS_ADMIN"), nil),
		// Without CAP_SYS_ADMIN, clone may not make namespaces (s390 swaps
		// clone's first two arguments) and clone3, whose flags sit behind
		// a pointer seccomp cannot follow, reports ENOSYS so that libc
		// falls back to clone.
		allow("clone", nil, &ruleFilter{Caps: []string{"CAP_SYS_ADMIN"}, Arches: []string{"s390", "s390x"}}, cloneWithoutNamespaces(0)),
		allow("clone", onArches("s390", "s390x"), withCaps("CAP_SYS_ADMIN"), cloneWithoutNamespaces(1)),
		profileRule{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys, Excludes: withCaps("CAP_SYS_ADMIN")},
		allow("reboot", withCaps("CAP_SYS_BOOT"), nil),
		allow("chroot", withCaps("CAP_SYS_CHROOT"), nil),
		allow("delete_module init_module finit_module", withCaps("CAP_SYS_MODULE"), nil),
		allow("acct", withCaps("CAP_SYS_PACCT"), nil),
		allow("kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace", withCaps("CAP_SYS_PTRACE"), nil),
		allow("iopl ioperm", withCaps("CAP_SYS_RAWIO"), nil),
		allow("settimeofday stime clock_settime clock_settime64", withCaps("CAP_SYS_TIME"), nil),
		allow("vhangup", withCaps("CAP_SYS_TTY_CONFIG"), nil),
		allow("get_mempolicy mbind set_mempolicy set_mempolicy_home_node", withCaps("CAP_SYS_NICE"), nil),
		allow("syslog", withCaps("CAP_SYSLOG"), nil),
		allow("bpf", withCaps("CAP_BPF"), nil),
		allow("perf_event_open", withCaps("CAP_PERFMON"), nil),
	)

	return &profile{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		ArchMap: []archMapEntry{
			{Arch: specs.ArchX86_64, SubArches: []specs.Arch{specs.ArchX86, specs.ArchX32}},
			{Arch: specs.ArchAARCH64, SubArches: []specs.Arch{specs.ArchARM}},
			{Arch: specs.ArchMIPS64, SubArches: []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64N32}},
			{Arch: specs.ArchMIPS64N32, SubArches: []specs.Arch{specs.ArchMIPS, specs.ArchMIPS64}},
			{Arch: specs.ArchMIPSEL64, SubArches: []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64N32}},
			{Arch: specs.ArchMIPSEL64N32, SubArches: []specs.Arch{specs.ArchMIPSEL, specs.ArchMIPSEL64}},
			{Arch: specs.ArchS390X, SubArches: []specs.Arch{specs.ArchS390}},
			{Arch: specs.ArchRISCV64},
		},
		Syscalls: rules,
	}
}
