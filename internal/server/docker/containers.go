package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	api "github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
)

// maxConfigBody bounds a create, update or commit request body.
const maxConfigBody = 10 << 20

// streamContext is the context of a long-running response: it ends when
// the client goes away or the server shuts down.
func (s *Server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// createContainer answers POST /containers/create?name=&platform= with
// 201 and the new container's ID.
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	var platform *ocispec.Platform
	if v := q.Get("platform"); v != "" {
		pl, err := image.ParsePlatform(v)
		if err != nil {
			return err
		}
		platform = &pl
	}
	req, err := decodeCreateRequest(r.Body)
	if err != nil {
		return err
	}
	opts := daemon.CreateContainerOptions{Name: q.Get("name"), Config: req.Config, HostConfig: req.HostConfig, Platform: platform}
	if req.NetworkingConfig != nil {
		opts.Endpoints = req.NetworkingConfig.EndpointsConfig
	}
	res, err := s.d.CreateContainer(r.Context(), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, api.CreateResponse{ID: res.ID, Warnings: nonNil(res.Warnings)})
}

// decodeCreateRequest reads a create body as Docker does: unknown fields
// are ignored, malformed JSON and a missing config are refused.
func decodeCreateRequest(body io.Reader) (api.CreateRequest, error) {
	var req api.CreateRequest
	b, err := io.ReadAll(io.LimitReader(body, maxConfigBody+1))
	if err != nil {
		return req, fmt.Errorf("read request body: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(b) > maxConfigBody {
		return req, errInvalid(fmt.Sprintf("request body is larger than %d bytes", maxConfigBody))
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return req, errInvalid("config cannot be empty in order to create a container")
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return req, errInvalid("invalid JSON: " + err.Error())
	}
	if req.Config == nil {
		return req, errInvalid("config cannot be empty in order to create a container")
	}
	return req, nil
}

// listContainers answers GET /containers/json?all=&limit=&size=&filters=.
func (s *Server) listContainers(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	opts := daemon.ListContainersOptions{All: boolValue(r, "all"), Size: boolValue(r, "size"), Filters: f}
	if v := r.URL.Query().Get("limit"); v != "" {
		if opts.Limit, err = intValue("limit", v); err != nil {
			return err
		}
	}
	list, err := s.d.Containers(r.Context(), opts)
	if err != nil {
		return err
	}
	now := time.Now()
	out := make([]api.Summary, 0, len(list))
	for _, v := range list {
		out = append(out, toContainerSummary(v, now))
	}
	return writeJSON(w, http.StatusOK, out)
}

// inspectContainer answers GET /containers/{name}/json?size=.
func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request, p params) error {
	size := boolValue(r, "size")
	v, err := s.d.Container(r.Context(), p.name, size)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toContainerInspect(v, p.version, size))
}

// startContainer answers POST /containers/{name}/start: 204, or 304 when
// it already runs. A host config in the body went away with API 1.24;
// Docker refuses such a body rather than ignore it.
func (s *Server) startContainer(w http.ResponseWriter, r *http.Request, p params) error {
	// A JSON object with anything in it is at least 7 bytes.
	if r.ContentLength > 7 {
		return errInvalid("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
	}
	if err := s.d.StartContainer(r.Context(), p.name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopOptions parses t= (seconds) and signal= of stop and restart.
func stopOptions(r *http.Request) (daemon.StopOptions, error) {
	q := r.URL.Query()
	opts := daemon.StopOptions{Signal: q.Get("signal")}
	if v := q.Get("t"); v != "" {
		t, err := intValue("t", v)
		if err != nil {
			return opts, err
		}
		opts.Timeout = &t
	}
	return opts, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request, p params) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	if err := s.d.StopContainer(r.Context(), p.name, opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request, p params) error {
	opts, err := stopOptions(r)
	if err != nil {
		return err
	}
	if err := s.d.RestartContainer(r.Context(), p.name, opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.d.KillContainer(r.Context(), p.name, r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.d.PauseContainer(r.Context(), p.name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.d.UnpauseContainer(r.Context(), p.name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// renameContainer answers POST /containers/{name}/rename?name=.
func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request, p params) error {
	name := r.URL.Query().Get("name")
	if name == "" {
		return errInvalid("Neither old nor new names may be empty")
	}
	if err := s.d.RenameContainer(r.Context(), p.name, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateContainer answers POST /containers/{name}/update with the
// warnings of the change.
func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request, p params) error {
	var upd api.UpdateConfig
	if err := decodeBody(r, &upd); err != nil {
		return err
	}
	warnings, err := s.d.UpdateContainer(r.Context(), p.name, upd)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.UpdateResponse{Warnings: nonNil(warnings)})
}

// removeContainer answers DELETE /containers/{name}?force=&v=&link=.
// berth has no legacy links to remove.
func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request, p params) error {
	if boolValue(r, "link") {
		if !strings.Contains(strings.TrimPrefix(p.name, "/"), "/") {
			//lint:ignore ST1005 Docker's wording
			return fmt.Errorf("Conflict, cannot remove the default link name of the container: %w", errdefs.ErrConflict)
		}
		return fmt.Errorf("remove link %s: legacy container links are not supported: %w", p.name, errdefs.ErrNotImplemented)
	}
	opts := daemon.RemoveContainerOptions{Force: boolValue(r, "force"), Volumes: boolValue(r, "v")}
	if err := s.d.RemoveContainer(r.Context(), p.name, opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// waitContainer answers POST /containers/{name}/wait?condition=. The 200
// header goes out at once, so the client knows the wait is in place
// before it starts or removes the container; the body follows when the
// condition holds. A client that goes away ends the wait.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request, p params) error {
	cond := api.WaitConditionNotRunning
	switch v := api.WaitCondition(r.URL.Query().Get("condition")); v {
	case "":
	case api.WaitConditionNotRunning, api.WaitConditionNextExit, api.WaitConditionRemoved:
		cond = v
	default:
		return errInvalid(fmt.Sprintf("invalid condition: %q", string(v)))
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	ch, err := s.d.WaitContainer(ctx, p.name, cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	res, ok := <-ch
	if !ok {
		return nil
	}
	out := api.WaitResponse{StatusCode: int64(res.ExitCode)}
	if res.Error != "" {
		out.Error = &api.WaitExitError{Message: res.Error}
	}
	_ = json.NewEncoder(w).Encode(out)
	return nil
}

// resizeContainer answers POST /containers/{name}/resize?h=&w=.
func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request, p params) error {
	h, wd, err := consoleSize(r)
	if err != nil {
		return err
	}
	if err := s.d.ResizeContainer(r.Context(), p.name, h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// consoleSize parses the h= and w= of a resize.
func consoleSize(r *http.Request) (h, w uint, err error) {
	q := r.URL.Query()
	hv, err := strconv.ParseUint(q.Get("h"), 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid resize height %q: %w", q.Get("h"), errdefs.ErrInvalidArgument)
	}
	wv, err := strconv.ParseUint(q.Get("w"), 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid resize width %q: %w", q.Get("w"), errdefs.ErrInvalidArgument)
	}
	return uint(hv), uint(wv), nil
}

// topContainer answers GET /containers/{name}/top?ps_args=.
func (s *Server) topContainer(w http.ResponseWriter, r *http.Request, p params) error {
	psArgs := r.URL.Query().Get("ps_args")
	if psArgs == "" {
		psArgs = "-ef"
	}
	top, err := s.d.TopContainer(r.Context(), p.name, psArgs)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, top)
}

// containerChanges answers GET /containers/{name}/changes.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request, p params) error {
	changes, err := s.d.ContainerChanges(r.Context(), p.name)
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []api.FilesystemChange{}
	}
	return writeJSON(w, http.StatusOK, changes)
}

// exportContainer answers GET /containers/{name}/export with a tar of the
// container's file system. An error after the first byte cuts the
// connection so the client does not take a truncated archive for a whole.
func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request, p params) error {
	lw := &lazyWriter{w: w, contentType: "application/x-tar"}
	err := s.d.ExportContainer(r.Context(), p.name, lw)
	if err != nil && lw.started {
		panic(http.ErrAbortHandler)
	}
	return err
}

// pruneContainers answers POST /containers/prune?filters=.
func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request, _ params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := checkFilters(f, "until", "label", "label!"); err != nil {
		return err
	}
	rep, err := s.d.PruneContainers(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.PruneReport{ContainersDeleted: nonNil(rep.Deleted), SpaceReclaimed: rep.SpaceReclaimed})
}

// commitContainer answers POST /commit?container=&repo=&tag=&comment=
// &author=&changes=&pause= with 201 and the new image's ID. The body, a
// container config to apply, is optional. pause defaults to true.
func (s *Server) commitContainer(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	var cfg *api.Config
	b, err := io.ReadAll(io.LimitReader(r.Body, maxConfigBody+1))
	if err != nil {
		return fmt.Errorf("read request body: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(bytes.TrimSpace(b)) > 0 && string(bytes.TrimSpace(b)) != "null" {
		cfg = &api.Config{}
		if err := json.Unmarshal(b, cfg); err != nil {
			return errInvalid("invalid JSON: " + err.Error())
		}
	}
	ref, err := commitReference(q.Get("repo"), q.Get("tag"))
	if err != nil {
		return err
	}
	pause := true
	if q.Get("pause") != "" {
		pause = boolValue(r, "pause")
	}
	id, err := s.d.CommitContainer(r.Context(), q.Get("container"), daemon.CommitContainerOptions{
		Reference: ref, Comment: q.Get("comment"), Author: q.Get("author"), Changes: q["changes"], Pause: pause, Config: cfg,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, api.CommitResponse{ID: id})
}

// commitReference combines repo and tag ("latest" by default) into the
// name of a committed image; no repo means an untagged image.
func commitReference(repo, tag string) (string, error) {
	if repo == "" {
		if tag != "" {
			return "", errInvalid("tag is specified without a repository (repo)")
		}
		return "", nil
	}
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return "", fmt.Errorf("invalid reference format %q: %v: %w", repo, err, errdefs.ErrInvalidArgument)
	}
	if _, ok := named.(reference.Digested); ok {
		return "", errInvalid("cannot commit to a digest reference")
	}
	if tag != "" {
		tagged, err := reference.WithTag(reference.TrimNamed(named), tag)
		if err != nil {
			return "", fmt.Errorf("invalid tag %q: %v: %w", tag, err, errdefs.ErrInvalidArgument)
		}
		return reference.FamiliarString(tagged), nil
	}
	return reference.FamiliarString(reference.TagNameOnly(named)), nil
}

// intValue parses an integer query parameter.
func intValue(key, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("invalid value for %s: %q is not an integer: %w", key, v, errdefs.ErrInvalidArgument)
	}
	return n, nil
}
