package docker

import (
	"fmt"
	"net/http"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
)

// attachContainer answers POST /containers/{name}/attach?stream=&logs=
// &stdin=&stdout=&stderr=&detachKeys=. It takes over the connection
// (101 UPGRADED when the client asked for an upgrade) and then carries
// the client's input to the container's stdin and its output back, framed
// per stream without a TTY and raw with one. The stream ends when the
// container's output ends, the client types the detach keys, or the
// server shuts down; then the connection is closed. When the client only
// closes its write side, the container's stdin ends and its output keeps
// flowing.
func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	detachKeys := q.Get("detachKeys")
	if _, err := parseDetachKeys(detachKeys); err != nil {
		return err
	}
	v, err := s.d.Container(r.Context(), p.name, false)
	if err != nil {
		return err
	}
	switch v.State.Status {
	case api.StatePaused:
		return fmt.Errorf("container %s is paused, unpause the container before attach: %w", p.name, errdefs.ErrConflict)
	case api.StateRestarting:
		return fmt.Errorf("container %s is restarting, wait until the container is running: %w", p.name, errdefs.ErrConflict)
	}
	tty := v.Config != nil && v.Config.Tty
	ctx, cancel := s.streamContext(r)
	defer cancel()
	h, err := hijackQuiet(w, r, streamContentType(tty, p.version))
	if err != nil {
		return err
	}
	defer h.close()
	h.cancelOnHangup(ctx, cancel)
	stdout, stderr := h.outputs(tty)
	opts := daemon.AttachOptions{
		Logs:       boolValue(r, "logs"),
		Stream:     boolValue(r, "stream"),
		DetachKeys: detachKeys,
		// The client starts the container once it reads the head: send
		// it only when the attach is registered, so no output is missed.
		Attached: func() { _ = h.sendHead() },
	}
	if boolValue(r, "stdin") {
		opts.Stdin = h.stdinReader()
	}
	if boolValue(r, "stdout") {
		opts.Stdout = stdout
	}
	if boolValue(r, "stderr") {
		opts.Stderr = stderr
	}
	err = s.d.AttachContainer(ctx, p.name, opts)
	h.finish(ctx, stdout, "Error attaching: %s\n", err)
	return nil
}

// attachWebsocket answers GET /containers/{name}/attach/ws: berth has no
// websocket attach.
func (s *Server) attachWebsocket(w http.ResponseWriter, r *http.Request, p params) error {
	return fmt.Errorf("attach %s: websocket attach is not supported, use POST /containers/%s/attach: %w", p.name, p.name, errdefs.ErrNotImplemented)
}
