package shim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/shim"
	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The tests start real shims (berth-shim built from ./cmd/berth-shim, or
// $BERTH_BIN_DIR/berth-shim) driving the real berth-runtime, as root; the
// test process plays berthd.

// starterEnv makes the test binary a shim starter (see TestMain): it
// starts the shim described by the variable's JSON StartOptions, prints
// "started <shim pid>" and waits to be killed.
const starterEnv = "BERTH_SHIM_TEST_STARTER"

// timeout bounds every wait of these tests.
const timeout = 20 * time.Second

func TestMain(m *testing.M) {
	if v := os.Getenv(starterEnv); v != "" {
		os.Exit(runStarter(v))
	}
	// Shims whose starter is killed are reparented to us, so that the
	// test can reap them and see that they exit.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	code := m.Run()
	if err := testutil.CleanupCache(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if shimDir != "" {
		os.RemoveAll(shimDir)
	}
	os.Exit(code)
}

func runStarter(v string) int {
	var opts shim.StartOptions
	if err := json.Unmarshal([]byte(v), &opts); err != nil {
		fmt.Println("bad options:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := shim.Start(ctx, opts)
	if err != nil {
		fmt.Println("start:", err)
		return 1
	}
	fmt.Printf("started %d\n", c.ShimPid())
	select {}
}

var (
	shimOnce sync.Once
	shimDir  string
	shimPath string
	shimErr  error
)

// shimBinary returns the berth-shim to test: $BERTH_BIN_DIR/berth-shim, or
// one built from ./cmd/berth-shim once per test process.
func shimBinary(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(testutil.BinDirEnv); dir != "" {
		return filepath.Join(dir, "berth-shim")
	}
	shimOnce.Do(func() {
		if shimDir, shimErr = os.MkdirTemp("", "berth-shim-bin-"); shimErr != nil {
			return
		}
		shimPath = filepath.Join(shimDir, "berth-shim")
		cmd := exec.Command("go", "build", "-o", shimPath, "github.com/berth-project/berth/cmd/berth-shim")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			shimErr = fmt.Errorf("build berth-shim: %w\n%s", err, out)
		}
	})
	if shimErr != nil {
		t.Fatal(shimErr)
	}
	return shimPath
}

// rig is one container under a shim, for one test.
type rig struct {
	t        *testing.T
	id       string
	bundle   string
	root     string
	stateDir string
	logPath  string
}

// newRig makes a bundle whose spec is changed by mutate, a runtime root
// and a state dir, and checks after the test that the container left
// nothing behind.
func newRig(t *testing.T, mutate func(*specs.Spec)) *rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root (make test runs as root)")
	}
	t.Parallel()
	r := &rig{t: t, id: testutil.ContainerID(t), root: testutil.RootDir(t)}
	r.bundle = testutil.Bundle(t, mutate)
	// Short, for the socket paths in it.
	dir, err := os.MkdirTemp("", "berth-shim-")
	if err != nil {
		t.Fatal(err)
	}
	r.stateDir = filepath.Join(dir, "s")
	r.logPath = filepath.Join(t.TempDir(), "container-json.log")
	t.Cleanup(func() { os.RemoveAll(dir) })
	testutil.CheckNoLeaks(t, r.id, r.bundle, r.stateDir)
	return r
}

func (r *rig) opts() shim.StartOptions {
	return shim.StartOptions{
		Shim: shimBinary(r.t), Runtime: testutil.RuntimeBinary(r.t), RuntimeRoot: r.root,
		ID: r.id, Bundle: r.bundle, StateDir: r.stateDir, LogPath: r.logPath,
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// start starts the shim and registers the container's removal.
func (r *rig) start(opts shim.StartOptions) *shim.Client {
	r.t.Helper()
	c, err := shim.Start(ctxT(r.t), opts)
	if err != nil {
		r.t.Fatalf("start shim: %v", err)
	}
	r.cleanup(c.ShimPid())
	return c
}

// startFails starts a shim with opts (which must work) and then the
// container (which must fail), and returns the start's error after it
// checked that the failed start left nothing in the runtime and that
// Delete ends the shim.
func (r *rig) startFails(opts shim.StartOptions) error {
	r.t.Helper()
	c := r.start(opts)
	ctx := ctxT(r.t)
	_, err := c.Start(ctx)
	if err == nil {
		return nil
	}
	if entries, _ := os.ReadDir(r.root); len(entries) > 0 {
		for _, e := range entries {
			if e.Name() == r.id {
				r.t.Errorf("a failed start left the container %s in the runtime", r.id)
			}
		}
	}
	if st, serr := c.State(ctx); serr != nil || st.Status != shim.StatusCreated || st.Pid != 0 {
		r.t.Errorf("state after a failed start = %+v, %v; want created, no pid", st, serr)
	}
	if _, derr := c.Delete(ctx); derr != nil {
		r.t.Errorf("delete after a failed start: %v", derr)
	}
	return err
}

// cleanup registers the removal of the container and its shim (pid),
// through a new connection since the test may have closed its client.
func (r *rig) cleanup(shimPid int) {
	r.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if c, err := shim.Connect(ctx, r.stateDir); err == nil {
			if st, err := c.State(ctx); err == nil && st.Status != shim.StatusStopped && st.Status != shim.StatusCreated {
				c.Kill(ctx, syscall.SIGKILL, true)
				c.Wait(ctx)
			}
			if _, err := c.Delete(ctx); err != nil {
				r.t.Errorf("clean up container %s: %v", r.id, err)
				syscall.Kill(shimPid, syscall.SIGKILL)
			}
			c.Close()
		}
		// A safety net when the shim is gone; nothing to do otherwise.
		if _, _, err := testutil.Runtime(r.t, r.root, "delete", "--force", r.id); err != nil {
			r.t.Errorf("clean up container %s: %v", r.id, err)
		}
	})
}

// process is the bundle's process with other args.
func process(args ...string) *specs.Process {
	p := testutil.BundleSpec().Process
	p.Args = args
	return p
}

func withArgs(args ...string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = args }
}

// logEntry is one line of a json-file log.
type logEntry struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

// readLog parses the json-file log at path; every line must be a valid
// entry.
func readLog(t *testing.T, path string) []logEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	var out []logEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e logEntry
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Fatalf("log line %q: time: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// logText is the concatenated text of a stream's entries.
func logText(entries []logEntry, stream string) string {
	var b strings.Builder
	for _, e := range entries {
		if e.Stream == stream {
			b.WriteString(e.Log)
		}
	}
	return b.String()
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logContains reports whether the log at path holds s.
func logContains(path, s string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), s)
}

// collector reads a stream in the background.
type collector struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	more   chan struct{}
	done   chan struct{}
	err    error
	closer io.Closer
}

func collect(r io.ReadCloser) *collector {
	c := &collector{more: make(chan struct{}, 1), done: make(chan struct{}), closer: r}
	go func() {
		defer close(c.done)
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
			if err != nil {
				if err != io.EOF {
					c.err = err
				}
				return
			}
		}
	}()
	return c
}

func (c *collector) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// waitFor waits until the stream has shown s.
func (c *collector) waitFor(t *testing.T, s string) {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for !strings.Contains(c.String(), s) {
		select {
		case <-c.more:
		case <-c.done:
			if !strings.Contains(c.String(), s) {
				t.Fatalf("stream ended (err %v) without %q; got %q", c.err, s, c.String())
			}
		case <-tm.C:
			t.Fatalf("timed out waiting for %q; got %q", s, c.String())
		}
	}
}

// waitEOF waits until the stream ended cleanly.
func (c *collector) waitEOF(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
		if c.err != nil {
			t.Fatalf("stream failed: %v", c.err)
		}
	case <-time.After(timeout):
		t.Fatalf("timed out waiting for the stream to end; got %q", c.String())
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
