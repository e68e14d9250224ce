// Package hooks runs OCI lifecycle hooks: each hook's program with its
// args and env, the container state as JSON on stdin, and its timeout.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Run runs list in order and stops at the first failure. kind names the
// hook point ("prestart", "createRuntime", ...) in errors.
func Run(list []specs.Hook, kind string, st *specs.State) error {
	if len(list) == 0 {
		return nil
	}
	state, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state for %s hooks: %w", kind, err)
	}
	for i, h := range list {
		if err := runOne(h, state); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// hookWaitDelay bounds the wait for a hook's output once it has exited or
// been killed.
const hookWaitDelay = time.Second

func runOne(h specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	} else {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// A timeout kills the hook's whole process group: a child of the hook
	// (sh -c 'sleep 60') would otherwise keep the output pipe open and
	// Run waiting long past the timeout. A hook that exits but leaves a
	// process holding the pipe is waited for at most hookWaitDelay.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = hookWaitDelay
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // the hook itself exited successfully
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		var ee *exec.ExitError
		msg := strings.TrimSpace(out.String())
		if errors.As(err, &ee) && msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
