package shim_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/berth-project/berth/internal/shim"
)

func TestLogsAndExitCode(t *testing.T) {
	r := newRig(t, withArgs("sh", "-c", "echo out-line; echo err-line >&2; exit 3"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != shim.StatusCreated || st.Pid <= 0 || st.ShimPid != c.ShimPid() {
		t.Fatalf("state after create = %+v, want created with pids", st)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	exit, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if exit.Code != 3 || exit.ExitedAt.IsZero() || exit.OOMKilled {
		t.Fatalf("exit = %+v, want code 3", exit)
	}
	if st, err = c.State(ctx); err != nil || st.Status != shim.StatusStopped || st.ExitCode != 3 {
		t.Fatalf("state after exit = %+v, %v; want stopped, code 3", st, err)
	}
	entries := readLog(t, r.logPath)
	if got := logText(entries, "stdout"); got != "out-line\n" {
		t.Errorf("stdout in log = %q", got)
	}
	if got := logText(entries, "stderr"); got != "err-line\n" {
		t.Errorf("stderr in log = %q", got)
	}
	if len(entries) != 2 {
		t.Errorf("log has %d entries, want 2: %+v", len(entries), entries)
	}
	exit, err = c.Delete(ctx)
	if err != nil || exit.Code != 3 {
		t.Fatalf("delete = %+v, %v; want code 3", exit, err)
	}
	if alive(c.ShimPid()) {
		t.Errorf("shim %d still runs after delete", c.ShimPid())
	}
	if _, err := os.Stat(filepath.Join(r.stateDir, "shim.sock")); !os.IsNotExist(err) {
		t.Errorf("socket left after delete: %v", err)
	}
	saved, err := shim.ReadExitStatus(r.stateDir)
	if err != nil || saved.Code != 3 || !saved.ExitedAt.Equal(exit.ExitedAt) {
		t.Errorf("exit status file = %+v, %v; want %+v", saved, err, exit)
	}
	if _, err := shim.Connect(ctx, r.stateDir); err == nil {
		t.Error("connect after delete succeeded")
	}
	_ = syscall.SIGKILL
}
