// Package docker serves the Docker Engine API over HTTP/1.1 for berthd,
// with the official wire types of github.com/moby/moby/api. Handlers are
// one file per resource (system, images, containers, exec; attach, logs,
// stats and archive apart); they parse the request, call internal/daemon
// and convert the domain answer to wire types (wire.go, containerwire.go).
// Errors are mapped to HTTP statuses in one place (errors.go).
//
// Attach and exec start take the connection over from net/http (hijack.go)
// and stream raw bytes both ways; without a TTY the output is framed per
// stream (stdout, stderr) with Docker's 8-byte headers.
//
// Paths are accepted with a version prefix (/v1.50/images/json) and without
// one (the current version). Versions from MinAPIVersion to APIVersion are
// accepted; a request outside that range is refused with 400.
package docker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
)

// API versions this server speaks. APIVersion is what /_ping and /version
// advertise; a client negotiates the lower of it and its own (docker CLI
// 28 speaks 1.50, 29 speaks 1.52).
const (
	APIVersion    = "1.52"
	MinAPIVersion = "1.24"
)

// Options configure a Server.
type Options struct {
	// Version is berthd's version, GitCommit its commit; both shown by
	// /version.
	Version   string
	GitCommit string
	BuildTime string
}

// Server is the Engine API handler. Serve it on listeners with Serve and
// stop it with Shutdown.
type Server struct {
	d      *daemon.Daemon
	opts   Options
	routes []route

	done     chan struct{} // closed by Shutdown: streaming handlers end
	doneOnce sync.Once
	baseCtx  context.Context
	cancel   context.CancelFunc

	mu      sync.Mutex
	servers []*http.Server

	idleMu    sync.Mutex
	idle      *time.Timer   // runs trim once requests stop
	idleAfter time.Duration // idleTrim; shorter in tests
	trim      func()        // debug.FreeOSMemory; a probe in tests
}

// idleTrim is how long after the last request began the daemon gives the
// heap memory a burst of requests used, and no longer holds, back to the
// system: Go would otherwise return it only slowly, and an idle daemon
// would keep the RSS of its busiest moment. A second of quiet is long
// enough not to collect in the middle of a burst (a full collection costs
// a few milliseconds) and short enough that a daemon seen idle is trimmed.
const idleTrim = time.Second

// New returns a Server for d.
func New(d *daemon.Daemon, opts Options) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{d: d, opts: opts, done: make(chan struct{}), baseCtx: ctx, cancel: cancel}
	s.routes = s.makeRoutes()
	s.idleAfter, s.trim = idleTrim, debug.FreeOSMemory
	s.idle = time.AfterFunc(time.Hour, func() { s.trim() })
	s.idle.Stop()
	return s
}

// busy postpones the idle trim: a request began.
func (s *Server) busy() {
	s.idleMu.Lock()
	s.idle.Reset(s.idleAfter)
	s.idleMu.Unlock()
}

// handlerFunc handles one request. It returns an error only when nothing
// has been written yet; the error is then mapped to a status.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p params) error

// params are a request's path variable and negotiated API version.
type params struct {
	name    string // the {name} of the path, when the route has one
	version string // "1.50"
}

// route matches a method and a path: exact, or "prefix{name}suffix" where
// name is at least one character and may contain slashes (image names do).
type route struct {
	method string
	prefix string
	suffix string
	named  bool
	h      handlerFunc
}

func (s *Server) handle(method, pattern string, h handlerFunc) route {
	if i := strings.Index(pattern, "{name}"); i >= 0 {
		return route{method: method, prefix: pattern[:i], suffix: pattern[i+len("{name}"):], named: true, h: h}
	}
	return route{method: method, prefix: pattern, h: h}
}

func (s *Server) makeRoutes() []route {
	return []route{
		// system.go
		s.handle(http.MethodGet, "/_ping", s.ping),
		s.handle(http.MethodHead, "/_ping", s.ping),
		s.handle(http.MethodGet, "/version", s.version),
		s.handle(http.MethodGet, "/info", s.info),
		s.handle(http.MethodGet, "/events", s.events),
		s.handle(http.MethodGet, "/system/df", s.diskUsage),
		s.handle(http.MethodPost, "/auth", s.auth),
		// images.go: exact paths first, then those with a name
		s.handle(http.MethodGet, "/images/json", s.listImages),
		s.handle(http.MethodPost, "/images/create", s.createImage),
		s.handle(http.MethodPost, "/images/load", s.loadImages),
		s.handle(http.MethodPost, "/images/prune", s.pruneImages),
		s.handle(http.MethodGet, "/images/get", s.saveImages),
		s.handle(http.MethodGet, "/images/{name}/json", s.inspectImage),
		s.handle(http.MethodGet, "/images/{name}/history", s.imageHistory),
		s.handle(http.MethodPost, "/images/{name}/tag", s.tagImage),
		s.handle(http.MethodPost, "/images/{name}/push", s.pushImage),
		s.handle(http.MethodGet, "/images/{name}/get", s.saveImage),
		s.handle(http.MethodDelete, "/images/{name}", s.removeImage),
		s.handle(http.MethodPost, "/build", s.buildImage), s.handle(http.MethodPost, "/build/prune", s.pruneBuildCache), // build.go
		// containers.go, attach.go, logs.go, stats.go, archive.go: exact
		// paths first, then those with a name
		s.handle(http.MethodGet, "/containers/json", s.listContainers),
		s.handle(http.MethodPost, "/containers/create", s.createContainer),
		s.handle(http.MethodPost, "/containers/prune", s.pruneContainers),
		s.handle(http.MethodPost, "/commit", s.commitContainer),
		s.handle(http.MethodGet, "/containers/{name}/json", s.inspectContainer),
		s.handle(http.MethodGet, "/containers/{name}/top", s.topContainer),
		s.handle(http.MethodGet, "/containers/{name}/logs", s.containerLogs),
		s.handle(http.MethodGet, "/containers/{name}/changes", s.containerChanges),
		s.handle(http.MethodGet, "/containers/{name}/export", s.exportContainer),
		s.handle(http.MethodGet, "/containers/{name}/stats", s.containerStats),
		s.handle(http.MethodPost, "/containers/{name}/resize", s.resizeContainer),
		s.handle(http.MethodPost, "/containers/{name}/start", s.startContainer),
		s.handle(http.MethodPost, "/containers/{name}/stop", s.stopContainer),
		s.handle(http.MethodPost, "/containers/{name}/restart", s.restartContainer),
		s.handle(http.MethodPost, "/containers/{name}/kill", s.killContainer),
		s.handle(http.MethodPost, "/containers/{name}/update", s.updateContainer),
		s.handle(http.MethodPost, "/containers/{name}/rename", s.renameContainer),
		s.handle(http.MethodPost, "/containers/{name}/pause", s.pauseContainer),
		s.handle(http.MethodPost, "/containers/{name}/unpause", s.unpauseContainer),
		s.handle(http.MethodPost, "/containers/{name}/attach", s.attachContainer),
		s.handle(http.MethodGet, "/containers/{name}/attach/ws", s.attachWebsocket),
		s.handle(http.MethodPost, "/containers/{name}/wait", s.waitContainer),
		s.handle(http.MethodHead, "/containers/{name}/archive", s.statArchivePath),
		s.handle(http.MethodGet, "/containers/{name}/archive", s.getArchive),
		s.handle(http.MethodPut, "/containers/{name}/archive", s.putArchive),
		s.handle(http.MethodDelete, "/containers/{name}", s.removeContainer),
		// exec.go
		s.handle(http.MethodPost, "/containers/{name}/exec", s.createExec),
		s.handle(http.MethodPost, "/exec/{name}/start", s.startExec),
		s.handle(http.MethodPost, "/exec/{name}/resize", s.resizeExec),
		s.handle(http.MethodGet, "/exec/{name}/json", s.inspectExec),
		// volumes.go
		s.handle(http.MethodGet, "/volumes", s.listVolumes),
		s.handle(http.MethodPost, "/volumes/create", s.createVolume),
		s.handle(http.MethodPost, "/volumes/prune", s.pruneVolumes),
		s.handle(http.MethodGet, "/volumes/{name}", s.inspectVolume),
		s.handle(http.MethodDelete, "/volumes/{name}", s.removeVolume),
		// networks.go
		s.handle(http.MethodGet, "/networks", s.listNetworks),
		s.handle(http.MethodPost, "/networks/create", s.createNetwork),
		s.handle(http.MethodPost, "/networks/prune", s.pruneNetworks),
		s.handle(http.MethodPost, "/networks/{name}/connect", s.connectNetwork),
		s.handle(http.MethodPost, "/networks/{name}/disconnect", s.disconnectNetwork),
		s.handle(http.MethodGet, "/networks/{name}", s.inspectNetwork),
		s.handle(http.MethodDelete, "/networks/{name}", s.removeNetwork),
	}
}

// versionPrefix matches "/v1.50/rest".
var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// ServeHTTP routes a request: it strips and checks the version prefix,
// finds the route and maps a returned error to a status. A panic in a
// handler is logged and answered with 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	start := time.Now()
	s.busy()
	w.Header().Set("Server", "berth/"+s.opts.Version+" (linux)")
	w.Header().Set("API-Version", APIVersion)
	w.Header().Set("OSType", "linux")
	defer func() {
		if v := recover(); v != nil {
			log.G(ctx).Error("panic in API handler", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeError(w, fmt.Errorf("internal error handling %s %s: %v", r.Method, r.URL.Path, v))
		}
	}()
	path := r.URL.Path
	p := params{version: APIVersion}
	if m := versionPrefix.FindStringSubmatch(path); m != nil {
		p.version, path = m[1], m[2]
		if versionLess(p.version, MinAPIVersion) {
			writeError(w, fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version: %w", p.version, MinAPIVersion, errdefs.ErrInvalidArgument))
			return
		}
		if versionLess(APIVersion, p.version) {
			writeError(w, fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", p.version, APIVersion, errdefs.ErrInvalidArgument))
			return
		}
	}
	h, name := s.match(r.Method, path)
	if h == nil {
		writeError(w, fmt.Errorf("page not found: %w", errdefs.ErrNotFound))
		return
	}
	p.name = name
	if err := h(w, r, p); err != nil {
		writeError(w, err)
		log.G(ctx).Debug("api request failed", "method", r.Method, "path", r.URL.Path, "error", err, "duration", time.Since(start))
		return
	}
	log.G(ctx).Debug("api request", "method", r.Method, "path", r.URL.Path, "duration", time.Since(start))
}

// match returns the handler for method and path and the path's name.
func (s *Server) match(method, path string) (handlerFunc, string) {
	for _, rt := range s.routes {
		if rt.method != method {
			continue
		}
		if !rt.named {
			if path == rt.prefix {
				return rt.h, ""
			}
			continue
		}
		rest, ok := strings.CutPrefix(path, rt.prefix)
		if !ok {
			continue
		}
		name, ok := strings.CutSuffix(rest, rt.suffix)
		if ok && name != "" {
			return rt.h, name
		}
	}
	return nil, ""
}

// versionLess reports whether API version a is lower than b.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// Serve answers requests on l until Shutdown. It returns nil after
// Shutdown.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return nil
	default:
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	if err := hs.Serve(l); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// Shutdown stops accepting connections, ends streaming responses (events)
// and waits for requests in progress until ctx ends; then it cancels them
// and closes their connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.doneOnce.Do(func() { close(s.done) })
	s.idleMu.Lock()
	s.idle.Stop()
	s.idleMu.Unlock()
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = hs.Shutdown(ctx)
		}()
	}
	wg.Wait()
	s.cancel()
	for i, hs := range servers {
		if errs[i] != nil {
			hs.Close()
		}
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("shutdown api server: %w", err)
		}
	}
	return nil
}
