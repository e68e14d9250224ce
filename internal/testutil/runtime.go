package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RuntimeTimeout bounds each Runtime call, so that a hung runtime fails its
// test instead of hanging the whole run.
const RuntimeTimeout = 30 * time.Second

// BinDirEnv names the environment variable holding the directory of the
// prebuilt binaries under test (`make test` sets it after `make build`).
const BinDirEnv = "BERTH_BIN_DIR"

const runtimePkg = "./cmd/berth-runtime"

// RuntimeBinary returns the path of the berth-runtime binary to test:
// $BERTH_BIN_DIR/berth-runtime if BERTH_BIN_DIR is set, otherwise one built
// from this module's ./cmd/berth-runtime (with CGO_ENABLED=1) once per test
// process, in the cache directory (see CleanupCache).
func RuntimeBinary(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(BinDirEnv); dir != "" {
		p := filepath.Join(dir, "berth-runtime")
		if err := checkExecutable(p); err != nil {
			t.Fatalf("runtime binary from %s: %v", BinDirEnv, err)
		}
		return p
	}
	p, err := cached(&cache.runtime, buildRuntime)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// buildRuntime builds ./cmd/berth-runtime of the module the tests run in
// into the cache directory.
func buildRuntime(cache string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, "berth-runtime")
	if err := goBuild(root, runtimePkg, out); err != nil {
		return "", err
	}
	return out, nil
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find module root: not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// goBuild builds package pkg of the module in dir into the binary out.
func goBuild(dir, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", pkg, dir, err, msg)
	}
	return nil
}

// RootDir returns a new, empty state root for the runtime's --root, removed
// after the test. It is short (under $TMPDIR, not t.TempDir()) so that
// socket paths inside it stay below the kernel's 108-byte limit.
func RootDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-root-")
	if err != nil {
		t.Fatalf("make state root: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove state root: %v", err)
		}
	})
	return dir
}

// ContainerID returns a container id unique to this call: a prefix from the
// test's name and random hex, valid for runc-compatible runtimes
// ([A-Za-z0-9_+.-], at most 64 characters).
func ContainerID(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("make container id: %v", err)
	}
	var name strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			name.WriteRune(r)
		default:
			name.WriteByte('-')
		}
	}
	prefix := strings.Trim(name.String(), "-.")
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// Runtime runs the runtime under test (RuntimeBinary) with `--root root`
// followed by args, and returns its stdout and stderr. err is non-nil if it
// fails to start, exits non-zero or runs longer than RuntimeTimeout; then
// the runtime's whole process group is killed.
//
// The output goes to files, not pipes, so that a container that inherits
// the runtime's stdio (run --detach) cannot keep Runtime waiting.
func Runtime(t testing.TB, root string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runWithTimeout(t, RuntimeBinary(t), RuntimeTimeout, append([]string{"--root", root}, args...)...)
}

// runWithTimeout runs bin with args in its own process group and returns
// its output.
func runWithTimeout(t testing.TB, bin string, timeout time.Duration, args ...string) (string, string, error) {
	t.Helper()
	outFile, err := tempOutput()
	if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	defer outFile.Close()
	errFile, err := tempOutput()
	if err != nil {
		t.Fatalf("run %s: %v", bin, err)
	}
	defer errFile.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = outFile, errFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	runErr := cmd.Run()

	stdout, err := readAll(outFile)
	if err != nil {
		t.Fatalf("run %s: read stdout: %v", bin, err)
	}
	stderr, err := readAll(errFile)
	if err != nil {
		t.Fatalf("run %s: read stderr: %v", bin, err)
	}
	desc := filepath.Base(bin) + " " + strings.Join(args, " ")
	switch {
	case ctx.Err() != nil:
		return stdout, stderr, fmt.Errorf("%s: timed out after %s: %w", desc, timeout, ctx.Err())
	case runErr != nil:
		return stdout, stderr, fmt.Errorf("%s: %w: %s", desc, runErr, strings.TrimSpace(stderr))
	}
	return stdout, stderr, nil
}

// tempOutput returns an unlinked temporary file for a child's output.
func tempOutput() (*os.File, error) {
	f, err := os.CreateTemp("", "berth-output-")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func readAll(f *os.File) (string, error) {
	var b bytes.Buffer
	if _, err := f.Seek(0, 0); err != nil {
		return "", err
	}
	if _, err := b.ReadFrom(f); err != nil {
		return "", err
	}
	return b.String(), nil
}
