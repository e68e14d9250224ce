package shim

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/berth-project/berth/internal/errdefs"
)

// StartOptions say how to start a shim and its container.
type StartOptions struct {
	// Shim and Runtime are the paths of berth-shim and berth-runtime;
	// RuntimeRoot is the runtime's --root.
	Shim, Runtime, RuntimeRoot string
	ID, Bundle                 string
	// StateDir is the shim's own directory (made if missing; removed
	// again if Start made it and fails). Its socket path must fit in
	// sockaddr_un: keep it under about 95 bytes.
	StateDir string
	// LogPath is the container's json-file log ("" for none), rotated at
	// LogMaxSize bytes (0: never) keeping LogMaxFile files (0 or 1: one).
	LogPath    string
	LogMaxSize int64
	LogMaxFile int
	// Terminal gives the container a pty (its config.json must set
	// process.terminal too); Stdin keeps its stdin open for attachers.
	Terminal, Stdin bool
	// PrestartRuntime starts the runtime's run as soon as the shim is up,
	// waiting (--wait-fd) until the start call: the caller may still be
	// making the bundle, which the runtime reads only then.
	PrestartRuntime bool
}

// Options configure the shim server, from berth-shim's flags.
type Options struct {
	ID          string
	Bundle      string
	Runtime     string // path of berth-runtime
	RuntimeRoot string // the runtime's --root
	StateDir    string
	// LogPath is the json-file log of the container's output ("" for none),
	// rotated at LogMaxSize bytes (0: never) keeping LogMaxFile files.
	LogPath    string
	LogMaxSize int64
	LogMaxFile int
	// Terminal gives the container a pty (its config must say so too);
	// Stdin keeps a pipe (or the pty) open for attachers to write to.
	Terminal bool
	Stdin    bool
	// PrestartRuntime: see StartOptions.
	PrestartRuntime bool
	// Ready receives the handshake; nil when nobody waits for it.
	Ready *os.File
}

func (o *Options) validate() error {
	for _, f := range []struct{ name, v string }{
		{"id", o.ID}, {"bundle", o.Bundle}, {"runtime", o.Runtime}, {"runtime root", o.RuntimeRoot}, {"state dir", o.StateDir},
	} {
		if f.v == "" {
			return fmt.Errorf("shim: no %s given: %w", f.name, errdefs.ErrInvalidArgument)
		}
	}
	if o.LogMaxSize < 0 {
		return fmt.Errorf("shim: negative log max size: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// The files of the state dir (see the package doc).
const (
	socketName  = "shim.sock"
	shimLogName = "shim.log"
	exitName    = "exit.json"
	pidName     = "init.pid"
	consoleName = "console.sock"
)

// ReportError writes a failure handshake on ready and closes it, for a
// shim that fails before Serve.
func ReportError(ready *os.File, err error) {
	writeJSONLine(ready, handshake{Error: err.Error(), Class: className(err)})
	ready.Close()
}

func writeJSONLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// NewLogger returns the shim's logger: text on w, with the container id.
func NewLogger(w io.Writer, id string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil)).With("id", id)
}
