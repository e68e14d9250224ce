//go:build linux

package runtime_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The tests of this package drive the berth-runtime binary as a black box
// (testutil.RuntimeBinary), as root, on the real kernel. The helpers below
// are shared by lifecycle_test.go, cli_test.go and badinput_test.go.

func TestMain(m *testing.M) {
	code := m.Run()
	if err := testutil.CleanupCache(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// pollTimeout bounds every wait for a condition (a state change, a file
// written by a container).
const pollTimeout = 10 * time.Second

// rig is one state root of the runtime under test, for one test.
type rig struct {
	t    *testing.T
	root string
}

// newRig skips the test unless it runs as root, marks it parallel and
// returns a rig with a fresh state root.
func newRig(t *testing.T) *rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root (make test runs as root)")
	}
	t.Parallel()
	return &rig{t: t, root: testutil.RootDir(t)}
}

// rt runs the runtime with --root r.root and args.
func (r *rig) rt(args ...string) (stdout, stderr string, err error) {
	r.t.Helper()
	return testutil.Runtime(r.t, r.root, args...)
}

// ok runs the runtime and fails the test unless it succeeds; it returns
// stdout.
func (r *rig) ok(args ...string) string {
	r.t.Helper()
	out, _, err := r.rt(args...)
	if err != nil {
		r.t.Fatalf("%v", err)
	}
	return out
}

// fails runs the runtime, fails the test unless it exits non-zero with
// stderr containing every one of want, and returns stderr.
func (r *rig) fails(args []string, want ...string) string {
	r.t.Helper()
	out, stderr, err := r.rt(args...)
	if err == nil {
		r.t.Fatalf("berth-runtime %s succeeded, want failure\nstdout: %s\nstderr: %s", strings.Join(args, " "), out, stderr)
	}
	if code := exitStatus(err); code <= 0 {
		r.t.Fatalf("berth-runtime %s: %v, want a non-zero exit", strings.Join(args, " "), err)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			r.t.Errorf("berth-runtime %s: stderr %q does not contain %q", strings.Join(args, " "), stderr, w)
		}
	}
	return stderr
}

// track makes sure container id is deleted after the test, and that
// neither it nor anything under paths (its bundle) left a mount, cgroup
// or process behind.
func (r *rig) track(id string, paths ...string) {
	r.t.Helper()
	testutil.CheckNoLeaks(r.t, id, paths...)
	r.t.Cleanup(func() {
		if _, _, err := r.rt("delete", "--force", id); err != nil {
			r.t.Errorf("cleanup: %v", err)
		}
	})
}

// bundle makes a bundle whose spec is testutil.BundleSpec with args as the
// process and then mutate applied.
func (r *rig) bundle(args []string, mutate func(*specs.Spec)) string {
	r.t.Helper()
	return testutil.Bundle(r.t, func(s *specs.Spec) {
		s.Process.Args = args
		if mutate != nil {
			mutate(s)
		}
	})
}

// create makes a bundle (see bundle), creates a container from it with
// the extra create flags and returns its id and bundle.
func (r *rig) create(args []string, mutate func(*specs.Spec), flags ...string) (id, bundle string) {
	r.t.Helper()
	bundle = r.bundle(args, mutate)
	id = testutil.ContainerID(r.t)
	r.track(id, bundle)
	r.ok(append(append([]string{"create", "--bundle", bundle}, flags...), id)...)
	return id, bundle
}

// running creates and starts a container running args and waits until it
// runs.
func (r *rig) running(args []string, mutate func(*specs.Spec)) (id, bundle string, st ociState) {
	r.t.Helper()
	id, bundle = r.create(args, mutate)
	r.ok("start", id)
	return id, bundle, r.state(id)
}

// ociState is what "state" prints.
type ociState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations"`
}

// state runs "state id" and decodes it.
func (r *rig) state(id string) ociState {
	r.t.Helper()
	out := r.ok("state", id)
	var st ociState
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		r.t.Fatalf("state %s: %v\n%s", id, err, out)
	}
	return st
}

// waitStatus polls "state id" until its status is want.
func (r *rig) waitStatus(id, want string) ociState {
	r.t.Helper()
	var st ociState
	poll(r.t, "container "+id+" to be "+want, func() bool {
		st = r.state(id)
		return st.Status == want
	})
	return st
}

// list runs "list -q" and returns the ids.
func (r *rig) list() []string {
	r.t.Helper()
	return strings.Fields(r.ok("list", "-q"))
}

// poll calls cond until it returns true, failing the test after
// pollTimeout.
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", pollTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exitStatus is the exit code in a testutil.Runtime error, 0 for nil and
// -1 when the process did not exit normally.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// readFileEventually polls until path exists and is not empty and returns
// its content.
func readFileEventually(t testing.TB, path string) string {
	t.Helper()
	var data []byte
	poll(t, path+" to be written", func() bool {
		var err error
		data, err = os.ReadFile(path)
		return err == nil && len(data) > 0
	})
	return string(data)
}

// cgroupDir returns the host directory of pid's cgroup for controller
// ("" for the unified hierarchy), from /proc/<pid>/cgroup and the cgroup
// mounts in /proc/self/mountinfo.
func cgroupDir(t testing.TB, pid int, controller string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatalf("read cgroup of %d: %v", pid, err)
	}
	var rel string
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				rel, found = parts[2], true
			}
		}
		if controller == "" && parts[0] == "0" && parts[1] == "" {
			rel, found = parts[2], true
		}
	}
	if !found {
		t.Fatalf("process %d has no cgroup for controller %q:\n%s", pid, controller, data)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) {
			continue
		}
		fstype, opts := fields[sep+1], strings.Split(fields[sep+3], ",")
		match := false
		switch {
		case controller == "":
			match = fstype == "cgroup2"
		case fstype == "cgroup":
			for _, o := range opts {
				match = match || o == controller
			}
		case fstype == "cgroup2":
			// A pure v2 host: every controller lives in the unified tree.
			_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
			match = err == nil && fields[4] == "/sys/fs/cgroup"
		}
		if !match {
			continue
		}
		root, mnt := fields[3], fields[4]
		inner, err := filepath.Rel(root, rel)
		if err != nil || strings.HasPrefix(inner, "..") {
			continue
		}
		return filepath.Join(mnt, inner)
	}
	t.Fatalf("no mounted hierarchy holds cgroup %s of controller %q", rel, controller)
	return ""
}

// isUnified reports whether the host has only cgroup v2.
func isUnified() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// readTrim reads a file and trims white space, failing the test on error.
func readTrim(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// sameNamespace reports whether pids a and b share the namespace kind
// ("pid", "uts", ...).
func sameNamespace(t testing.TB, a, b int, kind string) bool {
	t.Helper()
	la, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", a, kind))
	if err != nil {
		t.Fatal(err)
	}
	lb, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", b, kind))
	if err != nil {
		t.Fatal(err)
	}
	return la == lb
}

// regexpMatch reports whether s matches the regular expression re.
func regexpMatch(re, s string) bool {
	return regexp.MustCompile(re).MatchString(s)
}

// startRun starts "berth-runtime run" in the foreground with stdin as its
// standard input and returns the command and a function that reads its
// output so far. Files, not pipes: the container inherits them.
func (r *rig) startRun(bundle, id, stdin string) (*exec.Cmd, func() string) {
	r.t.Helper()
	dir := r.t.TempDir()
	in := filepath.Join(dir, "stdin")
	writeFile(r.t, in, stdin)
	inFile, err := os.Open(in)
	if err != nil {
		r.t.Fatal(err)
	}
	defer inFile.Close()
	outFile, err := os.Create(filepath.Join(dir, "output"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer outFile.Close()
	cmd := exec.Command(testutil.RuntimeBinary(r.t), "--root", r.root, "run", "--bundle", bundle, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inFile, outFile, outFile
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, func() string {
		data, _ := os.ReadFile(outFile.Name())
		return string(data)
	}
}

// waitCmd waits for cmd with a deadline and returns its exit code.
func waitCmd(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitStatus(err)
	case <-time.After(testutil.RuntimeTimeout):
		cmd.Process.Kill()
		t.Fatalf("%s did not exit", cmd)
	}
	return -1
}

// runIn runs the runtime in the working directory dir, failing the test
// unless it succeeds. Its output goes to files: a container's process
// inherits them and would keep a pipe open.
func (r *rig) runIn(dir string, args ...string) {
	r.t.Helper()
	out, err := os.CreateTemp(r.t.TempDir(), "out")
	if err != nil {
		r.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(testutil.RuntimeBinary(r.t), append([]string{"--root", r.root}, args...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, out, out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(testutil.RuntimeTimeout):
		cmd.Process.Kill()
		err = <-done
	}
	if err != nil {
		data, _ := os.ReadFile(out.Name())
		r.t.Fatalf("berth-runtime %s in %s: %v: %s", strings.Join(args, " "), dir, err, data)
	}
}
