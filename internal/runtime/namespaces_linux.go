package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-project/berth/internal/runtime/nsenter"
	"github.com/berth-project/berth/internal/runtime/syncpipe"
	"github.com/berth-project/berth/internal/unixsock"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var cloneFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	// The cgroup namespace is made by init once it is in its cgroup, so
	// that the container's cgroup is the namespace's root; the time namespace is made by init itself (offsets must be written
	// before anyone enters it), see nsinit.
}

// nsAttrs is how init gets its namespaces: clone flags for new ones,
// and instructions for the nsenter constructor for joined ones.
type nsAttrs struct {
	sys        *syscall.SysProcAttr
	env        []string
	useNsenter bool
	// netnsPath, when set, is a network namespace to join that init
	// enters itself (setns on the thread that execs the process), the
	// other namespaces being made by clone.
	netnsPath string
}

// namespaceAttrs turns the spec's namespaces into process attributes.
// New namespaces are created by clone(2) directly when nothing is joined,
// or when the only one joined is a network namespace and there is no user
// namespace (Docker's containers: the daemon made the network namespace):
// init enters that one itself. Otherwise the nsenter constructor does all
// of it in the right order (join, then create), before the Go runtime of
// init starts, which costs an extra process.
func namespaceAttrs(spec *specs.Spec) (*nsAttrs, error) {
	a := &nsAttrs{sys: &syscall.SysProcAttr{}}
	var joins []nsenter.Join
	var newFlags uintptr
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.TimeNamespace || (ns.Type == specs.CgroupNamespace && ns.Path == "") {
			if ns.Path != "" {
				joins = append(joins, nsenter.Join{Type: string(ns.Type), Path: ns.Path})
			}
			continue
		}
		flag, ok := cloneFlags[ns.Type]
		if !ok {
			return nil, fmt.Errorf("unknown namespace type %q", ns.Type)
		}
		if ns.Path != "" {
			if _, err := os.Stat(ns.Path); err != nil {
				return nil, fmt.Errorf("namespace %s path %s: %w", ns.Type, ns.Path, err)
			}
			joins = append(joins, nsenter.Join{Type: string(ns.Type), Path: ns.Path})
			continue
		}
		newFlags |= flag
	}
	newUser := newFlags&unix.CLONE_NEWUSER != 0
	if len(joins) == 1 && joins[0].Type == string(specs.NetworkNamespace) && !newUser {
		a.netnsPath = joins[0].Path
		joins = nil
	}
	if len(joins) == 0 {
		a.sys.Cloneflags = newFlags
		if newUser {
			a.sys.UidMappings = idMaps(spec.Linux.UIDMappings)
			a.sys.GidMappings = idMaps(spec.Linux.GIDMappings)
			a.sys.GidMappingsEnableSetgroups = true
			// Become root of the new namespace before init runs: the
			// host's uid is usually not mapped, and an unmapped (overflow)
			// uid loses every capability at execve.
			a.sys.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
		}
		return a, nil
	}
	req := nsenter.Request{Joins: joins, Unshare: uint64(newFlags)}
	for _, j := range joins {
		if j.Type == string(specs.PIDNamespace) {
			a.useNsenter = true
		}
	}
	// The constructor always reports the pid that goes on as init.
	a.useNsenter = true
	if newUser {
		req.UIDMap = mapString(spec.Linux.UIDMappings)
		req.GIDMap = mapString(spec.Linux.GIDMappings)
	}
	a.env = append(a.env, nsenter.EnvRequest+"="+req.Encode())
	return a, nil
}

// joinAttrs makes an exec process enter every namespace the container has
// (those of its init process, pid).
func joinAttrs(spec *specs.Spec, pid int) *nsAttrs {
	a := &nsAttrs{sys: &syscall.SysProcAttr{}, useNsenter: true}
	var req nsenter.Request
	proc := "/proc/" + strconv.Itoa(pid) + "/ns/"
	for _, ns := range spec.Linux.Namespaces {
		req.Joins = append(req.Joins, nsenter.Join{Type: string(ns.Type), Path: proc + nsFile[ns.Type]})
	}
	a.env = append(a.env, nsenter.EnvRequest+"="+req.Encode())
	return a
}

var nsFile = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, e := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Size)}
	}
	return out
}

func mapString(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return b.String()
}

// readForkedPid follows the nsenter constructor's messages: it writes the
// id maps of a new user namespace when asked, and returns the pid of the
// process that goes on as init (reaping the intermediate one if it forked).
func readForkedPid(p *syncpipe.Pipe, cmd *exec.Cmd, spec *specs.Spec) (int, error) {
	for {
		var msg nsenter.PidMessage
		if _, err := p.Recv(&msg); err != nil {
			return 0, initFailed(cmd, fmt.Errorf("read pid from nsenter: %w", err))
		}
		if msg.Error != "" {
			cmd.Wait()
			return 0, fmt.Errorf("nsenter: %s", msg.Error)
		}
		switch msg.Type {
		case "maps":
			if err := writeIDMaps(cmd.Process.Pid, spec); err != nil {
				return 0, err
			}
			if err := p.Send(nsenter.PidMessage{Type: "mapsDone"}); err != nil {
				return 0, fmt.Errorf("ack id maps: %w", err)
			}
		case "pid":
			if msg.Pid <= 0 {
				return 0, fmt.Errorf("nsenter sent invalid pid %d", msg.Pid)
			}
			if msg.Pid != cmd.Process.Pid {
				if err := cmd.Wait(); err != nil {
					return 0, fmt.Errorf("nsenter intermediate process: %w", err)
				}
			}
			return msg.Pid, nil
		default:
			return 0, fmt.Errorf("unexpected message %q from nsenter", msg.Type)
		}
	}
}

// writeIDMaps writes the uid and gid maps of pid's new user namespace:
// directly as root, through newuidmap/newgidmap otherwise.
func writeIDMaps(pid int, spec *specs.Spec) error {
	proc := "/proc/" + strconv.Itoa(pid)
	if os.Geteuid() == 0 {
		if err := os.WriteFile(proc+"/setgroups", []byte("allow"), 0); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("write setgroups: %w", err)
		}
		if err := os.WriteFile(proc+"/uid_map", []byte(mapString(spec.Linux.UIDMappings)), 0); err != nil {
			return fmt.Errorf("write uid_map: %w", err)
		}
		if err := os.WriteFile(proc+"/gid_map", []byte(mapString(spec.Linux.GIDMappings)), 0); err != nil {
			return fmt.Errorf("write gid_map: %w", err)
		}
		return nil
	}
	for _, t := range []struct {
		tool string
		m    []specs.LinuxIDMapping
	}{{"newuidmap", spec.Linux.UIDMappings}, {"newgidmap", spec.Linux.GIDMappings}} {
		args := []string{strconv.Itoa(pid)}
		for _, e := range t.m {
			args = append(args, strconv.Itoa(int(e.ContainerID)), strconv.Itoa(int(e.HostID)), strconv.Itoa(int(e.Size)))
		}
		if out, err := exec.Command(t.tool, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", t.tool, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// dialConsole connects to the console socket that receives the pty master.
func dialConsole(path string) (*os.File, error) {
	f, err := unixsock.Dial(path)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return f, nil
}
