package shim

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status is the status of a container or an exec'd process.
type Status string

// The statuses, as the OCI runtime spec names them.
const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusStopped Status = "stopped"
)

// State is what the shim knows about its container.
type State struct {
	ID string `json:"id"`
	// Pid is init's pid on the host (kept after it exits).
	Pid int `json:"pid"`
	// ShimPid is the shim's own pid.
	ShimPid  int    `json:"shimPid"`
	Status   Status `json:"status"`
	Terminal bool   `json:"terminal,omitempty"`
	// ExitCode, ExitedAt and OOMKilled are set once Status is stopped.
	ExitCode  int       `json:"exitCode"`
	ExitedAt  time.Time `json:"exitedAt,omitzero"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
}

// ExitStatus is how a process ended: its exit code (128+n when killed by
// signal n), when the shim reaped it, and whether the kernel's OOM killer
// killed a process of the container's cgroup.
type ExitStatus struct {
	Code      int       `json:"exitCode"`
	ExitedAt  time.Time `json:"exitedAt"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
}

// ExecState is the state of one exec'd process.
type ExecState struct {
	ID       string    `json:"id"`
	Pid      int       `json:"pid"`
	Status   Status    `json:"status"`
	Terminal bool      `json:"terminal,omitempty"`
	ExitCode int       `json:"exitCode"`
	ExitedAt time.Time `json:"exitedAt,omitzero"`
}

// AttachOptions choose the streams of an attach. With a terminal there is
// only stdout.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	// StdinOnce closes the container's stdin when this attacher closes its
	// stdin (Docker's StdinOnce).
	StdinOnce bool
}

// ExecIO are the streams of an exec'd process, copied from and to it until
// it exits (or the context given to Exec ends). A nil Stdin gives the
// process /dev/null; its end closes the process's stdin. A nil Stdout or
// Stderr discards that stream. With a terminal, all output goes to Stdout.
type ExecIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// request is one RPC call. Exec names the exec'd process a call is about
// ("" is the container's init).
type request struct {
	Method    string         `json:"method"`
	Exec      string         `json:"exec,omitempty"`
	Signal    int            `json:"signal,omitempty"`
	All       bool           `json:"all,omitempty"`
	Stream    string         `json:"stream,omitempty"`
	StdinOnce bool           `json:"stdinOnce,omitempty"`
	Width     uint16         `json:"width,omitempty"`
	Height    uint16         `json:"height,omitempty"`
	Process   *specs.Process `json:"process,omitempty"`
	Stdin     bool           `json:"stdin,omitempty"`
}

// response answers a request; Error is empty on success.
type response struct {
	Error     string      `json:"error,omitempty"`
	Class     string      `json:"class,omitempty"`
	State     *State      `json:"state,omitempty"`
	Exit      *ExitStatus `json:"exit,omitempty"`
	ExecState *ExecState  `json:"execState,omitempty"`
	Pid       int         `json:"pid,omitempty"`
	// NoStream answers an attach to a stream the process does not have
	// (stderr with a terminal).
	NoStream bool `json:"noStream,omitempty"`
}

// handshake is what the shim writes on its ready fd.
type handshake struct {
	Ready bool   `json:"ready,omitempty"`
	Error string `json:"error,omitempty"`
	Class string `json:"class,omitempty"`
}

// The RPC methods.
const (
	methodState      = "state"
	methodStart      = "start"
	methodWait       = "wait"
	methodKill       = "kill"
	methodPause      = "pause"
	methodResume     = "resume"
	methodAttach     = "attach"
	methodResize     = "resize"
	methodCloseStdin = "close-stdin"
	methodDelete     = "delete"
	methodExec       = "exec"
	methodExecStart  = "exec-start"
	methodExecState  = "exec-state"
	methodExecKill   = "exec-kill"
	methodExecDelete = "exec-delete"
)

// The stream names of an attach.
const (
	streamStdin  = "stdin"
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// maxFrame bounds a frame's JSON (a process spec with its environment is
// the largest).
const maxFrame = 4 << 20

// writeFrame writes v as one frame with a single write.
func writeFrame(w io.Writer, v any) error {
	buf, err := frame(v)
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}

// frame encodes v as a frame.
func frame(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode frame: %w", err)
	}
	if len(data) > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d: %w", len(data), maxFrame, errdefs.ErrInvalidArgument)
	}
	buf := make([]byte, 4+len(data))
	binary.BigEndian.PutUint32(buf, uint32(len(data)))
	copy(buf[4:], data)
	return buf, nil
}

// readFrame reads one frame into v. It reads exactly the frame, so that a
// stream may follow it on the same connection.
func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("frame of %d bytes exceeds %d: %w", n, maxFrame, errdefs.ErrInvalidArgument)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("read frame: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode frame: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// classes names the errdefs classes on the wire.
var classes = []struct {
	name string
	err  error
}{
	{"not_found", errdefs.ErrNotFound},
	{"already_exists", errdefs.ErrAlreadyExists},
	{"conflict", errdefs.ErrConflict},
	{"invalid_argument", errdefs.ErrInvalidArgument},
	{"not_implemented", errdefs.ErrNotImplemented},
	{"unavailable", errdefs.ErrUnavailable},
	{"permission", errdefs.ErrPermission},
	{"unauthorized", errdefs.ErrUnauthorized},
	{"data_loss", errdefs.ErrDataLoss},
}

// className returns the wire name of err's class, or "".
func className(err error) string {
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

// remoteError is an error the shim reported: its text, and its class so
// that errdefs.Is* work on the client side.
type remoteError struct {
	msg   string
	class error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.class }

// decodeError rebuilds the error of a response or handshake.
func decodeError(msg, class string) error {
	e := &remoteError{msg: msg}
	for _, c := range classes {
		if c.name == class {
			e.class = c.err
		}
	}
	return e
}
