//go:build linux && cgo

package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// agentMessage is what a seccomp agent received on one connection.
type agentMessage struct {
	state specs.ContainerProcessState
	raw   []byte
	fds   []int
	// fdsLater counts fds that arrived after the first message.
	fdsLater int
}

// listenAgent listens on path as a seccomp agent; the listener is closed
// when the test ends.
func listenAgent(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptAgent accepts one connection and reads it to the end, the way the
// specification lets a runtime send it: fds with the first sendmsg only.
func acceptAgent(ln *net.UnixListener) (*agentMessage, error) {
	conn, err := ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	m := &agentMessage{}
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for first := true; ; first = false {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		m.raw = append(m.raw, buf[:n]...)
		if oobn > 0 {
			scms, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr != nil {
				return nil, perr
			}
			for _, scm := range scms {
				fds, perr := unix.ParseUnixRights(&scm)
				if perr != nil {
					return nil, perr
				}
				if first {
					m.fds = append(m.fds, fds...)
				} else {
					m.fdsLater += len(fds)
					for _, fd := range fds {
						unix.Close(fd)
					}
				}
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal(m.raw, &m.state); err != nil {
		return nil, fmt.Errorf("decode %q: %w", m.raw, err)
	}
	return m, nil
}

func TestSendListener(t *testing.T) {
	for _, tc := range []struct {
		name     string
		path     func(t *testing.T) string
		annotate int
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "agent.sock") }, 0},
		{"abstract", func(t *testing.T) string { return fmt.Sprintf("@berth-seccomp-test-%d", os.Getpid()) }, 0},
		// Larger than a socket buffer: the state takes several writes.
		{"large state", func(t *testing.T) string { return filepath.Join(t.TempDir(), "agent.sock") }, 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			ln := listenAgent(t, path)
			got := make(chan *agentMessage, 1)
			gotErr := make(chan error, 1)
			go func() {
				m, err := acceptAgent(ln)
				gotErr <- err
				got <- m
			}()

			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			defer w.Close()
			st := specs.ContainerProcessState{
				Fds:      []string{"overwritten"},
				Pid:      1234,
				Metadata: "meta",
				State: specs.State{
					Version:     specs.Version,
					ID:          "c1",
					Status:      specs.StateCreating,
					Pid:         1234,
					Bundle:      "/bundle",
					Annotations: map[string]string{"big": strings.Repeat("x", tc.annotate)},
				},
			}
			if err := SendListener(path, st, int(w.Fd())); err != nil {
				t.Fatalf("SendListener: %v", err)
			}
			if err := <-gotErr; err != nil {
				t.Fatalf("agent: %v", err)
			}
			m := <-got
			for _, fd := range m.fds {
				defer unix.Close(fd)
			}

			if m.state.Version != specs.Version || !slices.Equal(m.state.Fds, []string{specs.SeccompFdName}) ||
				m.state.Pid != 1234 || m.state.Metadata != "meta" || m.state.State.ID != "c1" ||
				m.state.State.Status != specs.StateCreating || m.state.State.Bundle != "/bundle" ||
				len(m.state.State.Annotations["big"]) != tc.annotate {
				t.Errorf("agent received %.300s", m.raw)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(m.raw, &fields); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"ociVersion", "fds", "pid", "metadata", "state"} {
				if _, ok := fields[k]; !ok {
					t.Errorf("container process state has no %q: %.300s", k, m.raw)
				}
			}
			if len(m.fds) != 1 || m.fdsLater != 0 {
				t.Fatalf("agent received fds %v with the first message and %d later, want exactly one with the first", m.fds, m.fdsLater)
			}
			// The received fd is the pipe's write end.
			if _, err := unix.Write(m.fds[0], []byte("ok")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2)
			if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "ok" {
				t.Errorf("read %q, %v through the received fd", buf, err)
			}
		})
	}
}

func TestSendListenerErrors(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "file")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		fd      int
		invalid bool
		want    string
	}{
		{"empty path", "", 0, true, "seccomp: send listener: empty listenerPath"},
		{"bad fd", filepath.Join(dir, "x"), -1, true, "seccomp: send listener: invalid fd -1"},
		{"no agent", filepath.Join(dir, "missing.sock"), 0, false,
			fmt.Sprintf("seccomp: connect to seccomp agent %q: ", filepath.Join(dir, "missing.sock"))},
		{"not a socket", notSocket, 0, false, fmt.Sprintf("seccomp: connect to seccomp agent %q: ", notSocket)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := SendListener(tc.path, specs.ContainerProcessState{}, tc.fd)
			if err == nil {
				t.Fatal("SendListener succeeded")
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error %q, want prefix %q", err, tc.want)
			}
			if errdefs.IsInvalidArgument(err) != tc.invalid {
				t.Errorf("error %q: invalid argument %v, want %v", err, !tc.invalid, tc.invalid)
			}
		})
	}
}

func TestLoadNotify(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     "/set/by/the/runtime",
		ListenerMetadata: "bar",
		Flags:            []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify},
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
		},
	})
	if !p.Notify || p.Flags != unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
		t.Fatalf("compiled %+v", p)
	}

	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln := listenAgent(t, sock)
	dir := t.TempDir()
	c := startChild(t, childRequest{
		Program:  p,
		Agent:    sock,
		Metadata: "bar",
		Calls: []childCall{
			mkdirCall(t, filepath.Join(dir, "denied")),
			mkdirCall(t, filepath.Join(dir, "allowed")),
			call(t, "getppid"),
		},
	})
	// A child that dies before it connects must not leave the agent
	// waiting.
	go func() {
		<-c.done
		ln.Close()
	}()

	m, err := acceptAgent(ln)
	if err != nil {
		c.wait()
		t.Fatalf("agent: %v\nchild: %v\nstdout: %s\nstderr: %s", err, c.cmd.ProcessState, c.stdout.String(), c.stderr.String())
	}
	if len(m.fds) != 1 {
		t.Fatalf("agent received fds %v, want one", m.fds)
	}
	fd := m.fds[0]
	defer unix.Close(fd)
	if !slices.Equal(m.state.Fds, []string{specs.SeccompFdName}) || m.state.Pid != c.cmd.Process.Pid ||
		m.state.Metadata != "bar" || m.state.State.ID != "seccomp-test" {
		t.Errorf("agent received %s", m.raw)
	}

	mkdirat := nr(t, "mkdirat")
	for i, resp := range []libseccomp.ScmpNotifResp{
		{Error: int32(unix.ENOMEDIUM)},
		// Continue: the kernel runs the syscall as if not filtered.
		{Flags: libseccomp.NotifRespFlagContinue},
	} {
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			t.Fatalf("notification %d: %v", i, err)
		}
		// req.Pid is the thread that made the syscall.
		if uintptr(req.Data.Syscall) != mkdirat || tgid(t, int(req.Pid)) != c.cmd.Process.Pid {
			t.Errorf("notification %d: syscall %d from thread %d, want mkdirat (%d) from process %d",
				i, req.Data.Syscall, req.Pid, mkdirat, c.cmd.Process.Pid)
		}
		if uint64(req.Data.Args[2]) != 0o755 {
			t.Errorf("notification %d: mode %#o, want 0755", i, req.Data.Args[2])
		}
		resp.ID = req.ID
		if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &resp); err != nil {
			t.Fatalf("respond to notification %d: %v", i, err)
		}
	}

	res := c.result(t)
	checkErrnos(t, res, unix.ENOMEDIUM, 0, unix.EXDEV)
	if res.NotifyFd < 0 {
		t.Errorf("Load returned fd %d with notify", res.NotifyFd)
	}
	if exists(t, filepath.Join(dir, "denied")) {
		t.Error("the agent refused mkdirat but the directory exists")
	}
	if !exists(t, filepath.Join(dir, "allowed")) {
		t.Error("the agent let mkdirat continue but the directory does not exist")
	}
}

// tgid returns the process a thread belongs to.
func tgid(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no Tgid in /proc/%d/status", tid)
	return 0
}
