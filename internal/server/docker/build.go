package docker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-project/berth/internal/build"
	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
)

// buildImage is POST /build, the classic builder's endpoint: the body is
// the context as a tar (possibly compressed), the answer a JSON stream of
// the build's text ({"stream": "Step 1/2 : FROM busybox\n"}), then
// {"aux": {"ID": "sha256:..."}}. Bad parameters are refused with 400
// before the stream starts; a build that fails once it has reported
// something ends the stream with an error message.
func (s *Server) buildImage(w http.ResponseWriter, r *http.Request, p params) error {
	opts, quiet, err := buildOptions(r)
	if err != nil {
		return err
	}
	if err := daemon.CheckBuildOptions(opts); err != nil {
		return err
	}
	ps := newProgressStream(w)
	out := &buildOutput{ps: ps, quiet: quiet}
	opts.Out = out
	opts.Context = bodyReader{r.Body}
	id, err := s.d.Build(r.Context(), opts)
	if err != nil {
		return out.fail(err)
	}
	if quiet {
		ps.stream(id.String() + "\n")
	}
	ps.aux(struct{ ID string }{id.String()})
	return nil
}

// buildOptions reads POST /build's query: t (repeated), dockerfile,
// target, buildargs and labels (JSON), nocache, pull, networkmode, q.
// rm and forcerm are accepted (berth never keeps a build container), and
// platform when it is the host's; remote contexts and BuildKit
// (version=2) are not implemented.
func buildOptions(r *http.Request) (daemon.BuildOptions, bool, error) {
	q := r.URL.Query()
	if remote := q.Get("remote"); remote != "" {
		return daemon.BuildOptions{}, false, fmt.Errorf("building from a remote context (%s) is not supported: send the context in the request body: %w", remote, errdefs.ErrNotImplemented)
	}
	if v := q.Get("version"); v != "" && v != string(buildtypes.BuilderV1) {
		return daemon.BuildOptions{}, false, fmt.Errorf("builder version %q is not supported: berthd has the classic builder only (version 1, DOCKER_BUILDKIT=0): %w", v, errdefs.ErrNotImplemented)
	}
	if v := q.Get("platform"); v != "" {
		pl, err := image.ParsePlatform(v)
		if err != nil {
			return daemon.BuildOptions{}, false, err
		}
		if host := image.HostPlatform(); pl.OS != host.OS || pl.Architecture != host.Architecture {
			return daemon.BuildOptions{}, false, fmt.Errorf("berthd builds for its own platform only (%s/%s), not %s: %w", host.OS, host.Architecture, v, errdefs.ErrNotImplemented)
		}
	}
	opts := daemon.BuildOptions{
		Tags:        q["t"],
		Dockerfile:  q.Get("dockerfile"),
		Target:      q.Get("target"),
		NoCache:     boolValue(r, "nocache"),
		Pull:        boolValue(r, "pull"),
		NetworkMode: q.Get("networkmode"),
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.BuildArgs); err != nil {
			return opts, false, fmt.Errorf("invalid buildargs %q: %v: %w", v, err, errdefs.ErrInvalidArgument)
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			return opts, false, fmt.Errorf("invalid labels %q: %v: %w", v, err, errdefs.ErrInvalidArgument)
		}
	}
	return opts, boolValue(r, "q"), nil
}

// buildOutput sends what the builder writes as "stream" messages; when
// quiet it keeps the text instead, to send only if the build fails (the
// client shows it then).
type buildOutput struct {
	ps    *progressStream
	quiet bool
	mu    sync.Mutex
	kept  bytes.Buffer
}

func (o *buildOutput) Write(b []byte) (int, error) {
	if o.quiet {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.kept.Write(b)
	}
	o.ps.stream(string(b))
	return len(b), nil
}

// fail ends a failed build: with a status when nothing was sent yet and
// the build has nothing to show, else as an error message in the stream.
// A failed RUN's message carries its exit code, which docker build exits
// with; other errors carry none (docker build exits 1).
func (o *buildOutput) fail(err error) error {
	o.mu.Lock()
	kept := o.kept.String()
	o.mu.Unlock()
	if kept != "" {
		o.ps.stream(kept)
	}
	o.ps.mu.Lock()
	defer o.ps.mu.Unlock()
	if !o.ps.started {
		return err
	}
	msg := errorMessage(err)
	jerr := &jsonstream.Error{Message: msg}
	var ee *build.ExitError
	if errors.As(err, &ee) {
		jerr.Code = ee.Code
	}
	o.ps.sendLocked(streamMessage{Message: jsonstream.Message{Error: jerr}, ErrorMessage: msg})
	return nil
}

// pruneBuildCache is POST /build/prune: it drops the whole build cache
// (berth keeps no partial caches, so all, filters and the space limits
// change nothing).
func (s *Server) pruneBuildCache(w http.ResponseWriter, r *http.Request, p params) error {
	n, err := s.d.BuilderPrune(r.Context())
	if err != nil {
		return err
	}
	rep := buildtypes.CachePruneReport{CachesDeleted: []string{}}
	if n > 0 {
		rep.SpaceReclaimed = uint64(n)
	}
	return writeJSON(w, http.StatusOK, rep)
}
