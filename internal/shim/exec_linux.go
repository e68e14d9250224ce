package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/berth-project/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// maxExecID bounds an exec id, like a container id.
const maxExecID = 64

func validExecID(id string) error {
	if id == "" || len(id) > maxExecID {
		return fmt.Errorf("exec id %q: want 1 to %d characters: %w", id, maxExecID, errdefs.ErrInvalidArgument)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == '+') {
			return fmt.Errorf("exec id %q: only letters, digits and _+.- allowed: %w", id, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// execCreate registers an exec'd process and makes its stdio; it runs on
// exec-start, once the client attached its streams.
func (s *server) execCreate(req *request) error {
	if err := validExecID(req.Exec); err != nil {
		return err
	}
	if req.Process == nil || len(req.Process.Args) == 0 {
		return fmt.Errorf("exec %s: no process args: %w", req.Exec, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.init.done() || s.deleting {
		return fmt.Errorf("container %s is not running: %w", s.opts.ID, errdefs.ErrConflict)
	}
	if _, ok := s.execs[req.Exec]; ok {
		return fmt.Errorf("exec %s: %w", req.Exec, errdefs.ErrAlreadyExists)
	}
	p := newProcess(req.Exec, req.Process.Terminal, &s.flushing)
	p.spec = req.Process
	p.seq = s.seq.Add(1)
	if err := p.setupStdio(req.Stdin, s.path("exec-"+strconv.FormatInt(p.seq, 10)+".sock")); err != nil {
		return err
	}
	s.execs[req.Exec] = p
	return nil
}

// execStart runs a registered exec'd process and returns its pid.
func (s *server) execStart(id string) (pid int, err error) {
	s.mu.Lock()
	p, ok := s.execs[id]
	switch {
	case !ok:
		s.mu.Unlock()
		return 0, fmt.Errorf("exec %s: %w", id, errdefs.ErrNotFound)
	case p.spec == nil:
		s.mu.Unlock()
		return 0, fmt.Errorf("exec %s was started already: %w", id, errdefs.ErrConflict)
	}
	spec := p.spec
	p.spec = nil
	s.mu.Unlock()

	defer func() {
		if err != nil {
			// Forget it: the id can be used again, attachers read EOF.
			p.closeAll()
			s.mu.Lock()
			delete(s.execs, id)
			s.mu.Unlock()
		}
	}()
	base := s.path("exec-" + strconv.FormatInt(p.seq, 10))
	data, err := json.Marshal(spec)
	if err != nil {
		return 0, fmt.Errorf("exec %s: encode process: %w", id, err)
	}
	if err := os.WriteFile(base+".json", data, 0o600); err != nil {
		return 0, fmt.Errorf("exec %s: %w", id, err)
	}
	defer os.Remove(base + ".json")
	defer os.Remove(base + ".pid")
	args := []string{"exec", "--process", base + ".json", "--detach", "--pid-file", base + ".pid"}
	var master <-chan error
	if p.terminal {
		args = append(args, "--console-socket", p.consolePath)
		master = p.receiveMaster()
	}
	err = s.runtime(p.childStdio(), append(args, s.opts.ID)...)
	p.closeChild()
	if err == nil && master != nil {
		err = <-master
	}
	p.closeConsole()
	if err != nil {
		if master != nil {
			<-master
		}
		return 0, err
	}
	if pid, err = readPidFile(base + ".pid"); err != nil {
		return 0, err
	}
	exited := s.reaper.watch(pid)
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fd = -1
	}
	s.mu.Lock()
	p.pid = pid
	s.mu.Unlock()
	p.inMu.Lock()
	p.pidfd = fd
	p.inMu.Unlock()
	p.startCopiers(nil)
	go func() {
		ws := <-exited
		p.finish(ExitStatus{Code: exitCode(ws), ExitedAt: nowUTC()})
	}()
	return pid, nil
}

func (s *server) execState(id string) (*ExecState, error) {
	p, err := s.process(id)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("no exec id given: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	notStarted := p.spec != nil
	st := &ExecState{ID: id, Pid: p.pid, Terminal: p.terminal}
	s.mu.Unlock()
	switch {
	case p.done():
		st.Status, st.ExitCode, st.ExitedAt = StatusStopped, p.exit.Code, p.exit.ExitedAt
	case notStarted:
		st.Status = StatusCreated
	default:
		st.Status = StatusRunning
	}
	return st, nil
}

// execDelete forgets an exec'd process that exited or never started.
func (s *server) execDelete(id string) error {
	if id == "" {
		return fmt.Errorf("no exec id given: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.execs[id]
	switch {
	case !ok:
		return fmt.Errorf("exec %s: %w", id, errdefs.ErrNotFound)
	case p.spec != nil:
		p.closeAll()
	case !p.done():
		return fmt.Errorf("exec %s is running: %w", id, errdefs.ErrConflict)
	}
	delete(s.execs, id)
	return nil
}
