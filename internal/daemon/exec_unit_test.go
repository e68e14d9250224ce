package daemon

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestExecEnv(t *testing.T) {
	base := []string{"PATH=/usr/bin", "HOSTNAME=abc", "TERM=xterm", "A=1"}
	for _, tc := range []struct {
		name   string
		ctrEnv []string
		tty    bool
		extra  []string
		want   []string
	}{
		{"no tty drops the daemon's TERM", []string{"A=1"}, false, nil,
			[]string{"PATH=/usr/bin", "HOSTNAME=abc", "A=1"}},
		{"user's TERM stays", []string{"TERM=xterm", "A=1"}, false, nil,
			[]string{"PATH=/usr/bin", "HOSTNAME=abc", "TERM=xterm", "A=1"}},
		{"tty keeps one TERM", nil, true, nil,
			[]string{"PATH=/usr/bin", "HOSTNAME=abc", "A=1", "TERM=xterm"}},
		{"exec env replaces, adds and removes", nil, false, []string{"A=2", "B=3", "HOSTNAME", "NOPE"},
			[]string{"PATH=/usr/bin", "A=2", "B=3"}},
		{"exec TERM wins", nil, true, []string{"TERM=vt100"},
			[]string{"PATH=/usr/bin", "HOSTNAME=abc", "A=1", "TERM=vt100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := execEnv(base, tc.ctrEnv, tc.tty, tc.extra)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("env %q, want %q", got, tc.want)
			}
		})
	}
	if base[2] != "TERM=xterm" || len(base) != 4 {
		t.Errorf("base changed: %q", base)
	}
}

func TestExecProcess(t *testing.T) {
	base := &specs.Process{
		Args: []string{"sleep", "1000"}, Env: []string{"PATH=/bin"}, Cwd: "/srv",
		Terminal: true, ConsoleSize: &specs.Box{Height: 10, Width: 20},
		User:            specs.User{UID: 0, GID: 0, Umask: ptrTo(uint32(0o27))},
		Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_CHOWN"}, Permitted: []string{"CAP_CHOWN"}},
		NoNewPrivileges: true, ApparmorProfile: "docker-default",
		Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 10}},
	}

	p := execProcess(base, nil, ExecCreateOptions{Cmd: []string{"ls", "-l"}}, nil, nil, nil)
	if !reflect.DeepEqual(p.Args, []string{"ls", "-l"}) || p.Cwd != "/srv" || p.Terminal || p.ConsoleSize != nil {
		t.Errorf("plain exec: %+v", p)
	}
	if p.Capabilities != base.Capabilities || !p.NoNewPrivileges || p.ApparmorProfile != "docker-default" || len(p.Rlimits) != 1 {
		t.Errorf("plain exec lost the container's security settings: %+v", p)
	}
	if base.Args[0] != "sleep" || !base.Terminal {
		t.Errorf("base changed: %+v", base)
	}

	console := [2]uint{30, 100}
	user := &specs.User{UID: 65534, GID: 65534, AdditionalGids: []uint32{7}}
	p = execProcess(base, nil, ExecCreateOptions{Cmd: []string{"sh"}, Tty: true, WorkingDir: "/tmp/../var", User: "nobody"}, &console, user, nil)
	if p.Cwd != "/var" || !p.Terminal || p.ConsoleSize == nil || *p.ConsoleSize != (specs.Box{Height: 30, Width: 100}) {
		t.Errorf("tty exec: cwd %q terminal %v console %+v", p.Cwd, p.Terminal, p.ConsoleSize)
	}
	if p.User.UID != 65534 || p.User.GID != 65534 || !reflect.DeepEqual(p.User.AdditionalGids, []uint32{7}) || p.User.Umask == nil || *p.User.Umask != 0o27 {
		t.Errorf("user %+v", p.User)
	}
	if c := p.Capabilities; !reflect.DeepEqual(c.Bounding, []string{"CAP_CHOWN"}) || c.Effective != nil || c.Permitted != nil {
		t.Errorf("non-root exec caps %+v, want the bounding set only", c)
	}

	all := []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}
	p = execProcess(base, nil, ExecCreateOptions{Cmd: []string{"sh"}, Privileged: true}, nil, nil, all)
	if c := p.Capabilities; !reflect.DeepEqual(c.Bounding, all) || !reflect.DeepEqual(c.Effective, all) || !reflect.DeepEqual(c.Permitted, all) {
		t.Errorf("privileged caps %+v", c)
	}
	if p.ApparmorProfile != "" {
		t.Errorf("privileged exec keeps AppArmor profile %q", p.ApparmorProfile)
	}
	if len(base.Capabilities.Bounding) != 1 {
		t.Errorf("base caps changed: %+v", base.Capabilities)
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestValidateExec(t *testing.T) {
	for _, tc := range []struct {
		opts ExecCreateOptions
		msg  string
	}{
		{ExecCreateOptions{}, "No exec command specified"},
		{ExecCreateOptions{Cmd: []string{""}}, "No exec command specified"},
		{ExecCreateOptions{Cmd: []string{"ls"}, Env: []string{"=x"}}, "invalid environment variable: =x"},
		{ExecCreateOptions{Cmd: []string{"ls"}, WorkingDir: "rel"}, "the working directory 'rel' is invalid, it needs to be an absolute path"},
		{ExecCreateOptions{Cmd: []string{"ls"}, DetachKeys: "ctrl-"}, "Invalid escape keys (ctrl-) provided"},
	} {
		err := validateExec(tc.opts)
		if !errdefs.IsInvalidArgument(err) || err.Error() != tc.msg+": "+errdefs.ErrInvalidArgument.Error() {
			t.Errorf("%+v: error %v, want %q (invalid argument)", tc.opts, err, tc.msg)
		}
	}
	if err := validateExec(ExecCreateOptions{Cmd: []string{"ls"}, Env: []string{"A=1", "B"}, WorkingDir: "/x", DetachKeys: "ctrl-a"}); err != nil {
		t.Errorf("valid request: %v", err)
	}
}

func TestExecAction(t *testing.T) {
	if got := execAction("exec_create", []string{"ls", "-l", "/"}); got != "exec_create: ls -l /" {
		t.Errorf("got %q", got)
	}
	// Docker keeps the space when there are no arguments.
	if got := execAction("exec_start", []string{"ls"}); got != "exec_start: ls " {
		t.Errorf("got %q", got)
	}
}

func TestExecTable(t *testing.T) {
	var tab execTable
	newX := func(id, ctr string) *execEntry {
		return &execEntry{id: id, ctrID: ctr, cfg: ExecCreateOptions{Cmd: []string{"true"}}, ready: make(chan struct{}), done: make(chan struct{})}
	}
	a, b, c := newX("a", "c1"), newX("b", "c1"), newX("c", "c2")
	tab.add(a)
	tab.add(b)
	if _, err := tab.get("zz"); !errdefs.IsNotFound(err) || err.Error() != "No such exec instance: zz: "+errdefs.ErrNotFound.Error() {
		t.Errorf("unknown exec: %v", err)
	}
	// An exec that ended long ago is forgotten at the next add.
	a.end(0, time.Now().Add(-2*execRetention))
	b.end(0, time.Now())
	tab.add(c)
	if _, err := tab.get("a"); !errdefs.IsNotFound(err) {
		t.Errorf("old exec still there: %v", err)
	}
	if got, err := tab.get("b"); err != nil || got != b {
		t.Errorf("recent exec: %v %v", got, err)
	}
	tab.dropContainer("c1")
	if _, err := tab.get("b"); !errdefs.IsNotFound(err) {
		t.Errorf("exec of a removed container still there: %v", err)
	}
	if _, err := tab.get("c"); err != nil {
		t.Errorf("other container's exec: %v", err)
	}
	tab.drop(c)
	if _, err := tab.get("c"); !errdefs.IsNotFound(err) {
		t.Errorf("dropped exec still there: %v", err)
	}
}

func TestExecEntryEndsOnce(t *testing.T) {
	x := &execEntry{id: "x", phase: execRunning, ready: make(chan struct{}), done: make(chan struct{})}
	close(x.ready) // a running exec's start is over
	pr, pw := io.Pipe()
	x.stdin = pw
	cancelled := false
	x.cancel = func() { cancelled = true }
	if !x.end(3, time.Now()) {
		t.Fatal("first end did not record")
	}
	if x.end(4, time.Now()) {
		t.Error("second end recorded")
	}
	if *x.exitCode != 3 || x.phase != execExited || !cancelled {
		t.Errorf("exit %d phase %v cancelled %v", *x.exitCode, x.phase, cancelled)
	}
	select {
	case <-x.done:
	default:
		t.Error("done not closed")
	}
	if _, err := pr.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("stdin pipe read %v, want EOF", err)
	}

	// An exec that never started: its start waiters are released too.
	y := &execEntry{id: "y", ready: make(chan struct{}), done: make(chan struct{})}
	y.end(execStartFailedCode, time.Now())
	select {
	case <-y.ready:
	default:
		t.Error("ready not closed for an exec ended before it ran")
	}
}

func TestGatedWriter(t *testing.T) {
	var buf bytes.Buffer
	g := &gatedWriter{w: &buf}
	if n, err := g.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("write %d %v", n, err)
	}
	g.close()
	if _, err := g.Write([]byte("def")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write after close: %v", err)
	}
	if buf.String() != "abc" {
		t.Errorf("wrote %q", buf.String())
	}
}
