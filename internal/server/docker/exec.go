package docker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
)

// createExec answers POST /containers/{name}/exec with 201 and the new
// exec's ID.
func (s *Server) createExec(w http.ResponseWriter, r *http.Request, p params) error {
	var req api.ExecCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return errInvalid("No exec command specified")
	}
	if versionLess(p.version, "1.42") {
		req.ConsoleSize = nil
	}
	id, err := s.d.CreateExec(r.Context(), p.name, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, api.ExecCreateResponse{ID: id})
}

// startExec answers POST /exec/{id}/start. Detached, it starts the
// process and answers 200; attached, it takes over the connection like
// attach and ends it when the process's output ended. An error after the
// takeover is written into the stream, as Docker does.
func (s *Server) startExec(w http.ResponseWriter, r *http.Request, p params) error {
	req, err := decodeExecStart(r.Body)
	if err != nil {
		return err
	}
	if versionLess(p.version, "1.42") {
		req.ConsoleSize = nil
	}
	info, err := s.d.InspectExec(r.Context(), p.name)
	if err != nil {
		return err
	}
	opts := daemon.ExecStartOptions{Detach: req.Detach, Tty: req.Tty, ConsoleSize: req.ConsoleSize, DetachKeys: info.DetachKeys}
	if req.Detach {
		if err := s.d.StartExec(r.Context(), p.name, opts); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	h, err := hijack(w, r, streamContentType(req.Tty, p.version))
	if err != nil {
		return err
	}
	defer h.close()
	h.cancelOnHangup(ctx, cancel)
	stdout, stderr := h.outputs(req.Tty)
	if info.OpenStdin {
		opts.Stdin = h.stdinReader()
	}
	if info.OpenStdout {
		opts.Stdout = stdout
	}
	if info.OpenStderr {
		opts.Stderr = stderr
	}
	err = s.d.StartExec(ctx, p.name, opts)
	h.finish(ctx, stdout, "%s\r\n", err)
	return nil
}

// decodeExecStart reads an exec start body; an empty one means attached
// without a TTY.
func decodeExecStart(body io.Reader) (api.ExecStartRequest, error) {
	var req api.ExecStartRequest
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return req, fmt.Errorf("read request body: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return req, errInvalid("invalid JSON: " + err.Error())
	}
	return req, nil
}

// resizeExec answers POST /exec/{id}/resize?h=&w=.
func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request, p params) error {
	h, wd, err := consoleSize(r)
	if err != nil {
		return err
	}
	if err := s.d.ResizeExec(r.Context(), p.name, h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// inspectExec answers GET /exec/{id}/json.
func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request, p params) error {
	info, err := s.d.InspectExec(r.Context(), p.name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toExecInspect(info))
}
