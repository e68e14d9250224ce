package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/cgroups"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/runtime/nsinit"
	jsonv1 "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	stateFile = "state.json"
	fifoName  = "exec.fifo"
)

// State is what the runtime keeps on disk about one container, in
// <root>/<id>/state.json. The status is not stored: it is derived from the
// init process and the exec fifo every time it is read.
type State struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
	// Pid is init's pid on the host; InitStartTime (from /proc/<pid>/stat)
	// tells it apart from a later process that reuses the pid.
	Pid           int               `json:"pid"`
	InitStartTime uint64            `json:"initStartTime"`
	Created       time.Time         `json:"created"`
	Owner         string            `json:"owner"`
	CgroupPaths   map[string]string `json:"cgroupPaths,omitempty"`
	// Config is the spec the container was created with (resources kept
	// up to date by update); delete needs its hooks after the bundle is gone.
	// A State read from disk leaves it nil and keeps configRaw: most
	// commands need only the hooks or annotations, and decoding a whole
	// spec (encoding/json building its tables for every spec type) was a
	// quarter of a delete's CPU. Use spec, hooks and annotations.
	Config *specs.Spec `json:"config"`

	configRaw json.RawMessage
}

// spec returns Config, decoding it from disk's form on first use.
func (st *State) spec() (*specs.Spec, error) {
	if st.Config != nil || len(st.configRaw) == 0 {
		return st.Config, nil
	}
	var f specFile
	if err := jsonv1.Unmarshal(st.configRaw, &f); err != nil {
		return nil, fmt.Errorf("decode the spec of container %s: %w", st.ID, err)
	}
	spec, err := f.spec()
	if err != nil {
		return nil, fmt.Errorf("decode the spec of container %s: %w", st.ID, err)
	}
	st.Config, st.configRaw = spec, nil
	return spec, nil
}

// peek decodes only the top-level spec fields v asks for (as json tags)
// from disk's form of the spec; callers use Config instead when it is set.
func (st *State) peek(v any) error {
	if len(st.configRaw) == 0 {
		return nil
	}
	if err := jsonv1.Unmarshal(st.configRaw, v); err != nil {
		return fmt.Errorf("decode the spec of container %s: %w", st.ID, err)
	}
	return nil
}

// hooks returns the spec's hooks (nil if none or unreadable, with a warning).
func (st *State) hooks() *specs.Hooks {
	if st.Config != nil {
		return st.Config.Hooks
	}
	var p struct {
		Hooks *specs.Hooks `json:"hooks"`
	}
	if err := st.peek(&p); err != nil {
		warn("%v", err)
	}
	return p.Hooks
}

// annotations returns the spec's annotations (nil if none or unreadable).
func (st *State) annotations() map[string]string {
	if st.Config != nil {
		return st.Config.Annotations
	}
	var p struct {
		Annotations map[string]string `json:"annotations"`
	}
	st.peek(&p)
	return p.Annotations
}

// knownCapability and knownRlimit are the names init accepts.
func knownCapability(name string) bool { _, ok := nsinit.CapabilityByName(name); return ok }
func knownRlimit(name string) bool     { _, ok := nsinit.RlimitByName(name); return ok }

func (r *Runtime) dir(id string) string { return filepath.Join(r.Root, id) }

// seccompCacheDir holds compiled seccomp programs (seccomp.CompileCached).
// Its name has a character no container id may have, so it never meets a
// container's state dir.
func (r *Runtime) seccompCacheDir() string { return filepath.Join(r.Root, "@seccomp") }

// writeState saves st atomically: write a temp file and rename it. The
// state root is on tmpfs (/run) and means nothing after a reboot, so there
// is no fsync: the rename alone makes a crash of the runtime harmless.
func writeState(dir string, st *State) error {
	data, err := encodeState(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), data, 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		if tmp != "" {
			os.Remove(tmp)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeTemp writes data to a new temporary file beside path and returns
// its name; on failure nothing is left.
func writeTemp(path string, data []byte, mode os.FileMode) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// stagedState is a container's first state.json, encoded and written to
// a temporary file in the background while init sets the container up;
// commit renames it into place once create succeeded, so that no reader
// sees the container before.
type stagedState struct {
	path string
	done chan struct{}
	tmp  string
	err  error
}

// stageState completes st (owner, init's start time) and writes it in the
// background. st must not change until commit or discard returns.
func stageState(dir string, st *State) *stagedState {
	s := &stagedState{path: filepath.Join(dir, stateFile), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		st.Owner = ownerName()
		var err error
		if _, st.InitStartTime, err = procStat(st.Pid); err != nil {
			s.err = fmt.Errorf("read init process stat: %w", err)
			return
		}
		data, err := encodeState(st)
		if err != nil {
			s.err = fmt.Errorf("encode state: %w", err)
			return
		}
		if s.tmp, err = writeTemp(s.path, data, 0o600); err != nil {
			s.err = fmt.Errorf("write %s: %w", s.path, err)
		}
	}()
	return s
}

// commit puts the staged state in place.
func (s *stagedState) commit() error {
	<-s.done
	if s.err != nil {
		return s.err
	}
	if err := os.Rename(s.tmp, s.path); err != nil {
		os.Remove(s.tmp)
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}

// discard waits for the background write and removes what it wrote.
func (s *stagedState) discard() {
	<-s.done
	if s.tmp != "" {
		os.Remove(s.tmp)
	}
}

func readState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, fmt.Errorf("parse state in %s: %w", dir, err)
	}
	return st, nil
}

// storedState is State as stored, with the spec as a specFile: like
// decoding, encoding a specs.Spec builds encoding/json's tables for every
// type it can reach, those of the other platforms' sections included.
type storedState struct {
	ID            string            `json:"id"`
	Bundle        string            `json:"bundle"`
	Rootfs        string            `json:"rootfs"`
	Pid           int               `json:"pid"`
	InitStartTime uint64            `json:"initStartTime"`
	Created       time.Time         `json:"created"`
	Owner         string            `json:"owner"`
	CgroupPaths   map[string]string `json:"cgroupPaths,omitempty"`
	Config        json.RawMessage   `json:"config"`
}

// encodeState is json.Marshal(st), through storedState.
func encodeState(st *State) ([]byte, error) {
	f := storedState{
		ID: st.ID, Bundle: st.Bundle, Rootfs: st.Rootfs, Pid: st.Pid, InitStartTime: st.InitStartTime,
		Created: st.Created, Owner: st.Owner, CgroupPaths: st.CgroupPaths,
	}
	switch {
	case st.Config != nil:
		sf, err := toSpecFile(st.Config)
		if err != nil {
			return nil, err
		}
		if f.Config, err = jsonv1.Marshal(sf); err != nil {
			return nil, err
		}
	case len(st.configRaw) > 0:
		f.Config = st.configRaw
	}
	return jsonv1.Marshal(&f)
}

// decodeState is json.Unmarshal into a State, through storedState.
func decodeState(data []byte) (*State, error) {
	var f storedState
	if err := jsonv1.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	st := &State{
		ID: f.ID, Bundle: f.Bundle, Rootfs: f.Rootfs, Pid: f.Pid, InitStartTime: f.InitStartTime,
		Created: f.Created, Owner: f.Owner, CgroupPaths: f.CgroupPaths,
	}
	if len(f.Config) > 0 && string(f.Config) != "null" {
		st.configRaw = f.Config
	}
	return st, nil
}

// procStat reads the process state letter and start time of pid.
func procStat(pid int) (state byte, start uint64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may contain spaces.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+2:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], start, err
}

// alive reports whether st's init process still runs (a zombie does not).
func (st *State) alive() bool {
	if st.Pid <= 0 {
		return false
	}
	state, start, err := procStat(st.Pid)
	if err != nil || start != st.InitStartTime {
		return false
	}
	return state != 'Z' && state != 'X'
}

// ErrNotExist is returned for a container id with no state.
var ErrNotExist = errors.New("container does not exist")

func notExist(id string) error {
	return fmt.Errorf("container %s does not exist: %w", id, errdefs.ErrNotFound)
}

// statePaused is runc's extra status for a frozen container.
const statePaused specs.ContainerState = "paused"

// reservation is a container's state directory, made in the background
// while the bundle's config is decoded: the directory is the id's lock,
// and making it is an inode allocation on the state root's filesystem.
// Once it holds the id, the reservation can also make the container's
// cgroup (see reserve).
type reservation struct {
	dir  string
	done chan struct{}
	err  error // the error of making it; nil once made

	// cgDone is closed once the early cgroup is made or given up.
	cgDone chan struct{}
	// cgPath is the cgroupsPath that cg was made for.
	cgPath string
	cg     cgroups.Manager
}

// reserve starts making the state directory of id. When the config's
// cgroupsPath could be read ahead of the decoding (haveCgroupsPath), it
// goes on to make and apply the cgroup for it: create adopts it if the
// decoded config has that cgroupsPath, and removes it otherwise.
func (r *Runtime) reserve(id, cgroupsPath string, haveCgroupsPath bool) *reservation {
	rv := &reservation{dir: r.dir(id), done: make(chan struct{}), cgDone: make(chan struct{}), cgPath: cgroupsPath}
	go func() {
		defer close(rv.cgDone)
		if !haveCgroupsPath {
			return
		}
		// Finding the directories makes nothing: it needs no lock.
		cg, err := cgroups.New(cgroupsPath, id)
		<-rv.done
		if err != nil || rv.err != nil {
			return
		}
		if err := cg.Apply(-1); err != nil {
			// create makes it again and reports the error.
			cg.Destroy()
			return
		}
		rv.cg = cg
	}()
	go func() {
		defer close(rv.done)
		if err := os.MkdirAll(r.Root, 0o711); err != nil {
			rv.err = fmt.Errorf("create state root %s: %w", r.Root, err)
			return
		}
		if err := os.Mkdir(rv.dir, 0o711); err != nil {
			if errors.Is(err, os.ErrExist) {
				rv.err = fmt.Errorf("container with id %s already exists: %w", id, errdefs.ErrAlreadyExists)
			} else {
				rv.err = fmt.Errorf("create state dir: %w", err)
			}
		}
	}()
	return rv
}

// wait returns once the directory is made, or why it could not be.
func (rv *reservation) wait() error {
	<-rv.done
	return rv.err
}

// takeCgroup returns the early cgroup if it was made for cgroupsPath, and
// is then no longer the reservation's; otherwise it removes it and
// returns nil.
func (rv *reservation) takeCgroup(cgroupsPath string) cgroups.Manager {
	<-rv.cgDone
	cg := rv.cg
	rv.cg = nil
	if cg != nil && rv.cgPath != cgroupsPath {
		cg.Destroy()
		return nil
	}
	return cg
}

// release removes the early cgroup and the directory if they were made
// (the directory is still empty).
func (rv *reservation) release() {
	<-rv.cgDone
	if rv.cg != nil {
		rv.cg.Destroy()
		rv.cg = nil
	}
	if rv.wait() == nil {
		os.Remove(rv.dir)
	}
}

// reserveFor is reserve with the cgroupsPath read ahead from the raw
// config.json data.
func (r *Runtime) reserveFor(id string, data []byte) *reservation {
	path, ok := peekCgroupsPath(data)
	return r.reserve(id, path, ok)
}
