package docker

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	registrytypes "github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
)

// ping answers /_ping (GET and HEAD) with the headers clients negotiate
// from. Builder-Version 1: berth has no BuildKit session endpoint.
func (s *Server) ping(w http.ResponseWriter, r *http.Request, _ params) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	h.Set("Builder-Version", "1")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK"))
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request, _ params) error {
	si, err := s.d.Info()
	if err != nil {
		return err
	}
	details := map[string]string{
		"ApiVersion":    APIVersion,
		"MinAPIVersion": MinAPIVersion,
		"GitCommit":     s.opts.GitCommit,
		"GoVersion":     runtime.Version(),
		"Os":            runtime.GOOS,
		"Arch":          runtime.GOARCH,
		"KernelVersion": si.KernelVersion,
		"Experimental":  "false",
		"BuildTime":     s.opts.BuildTime,
	}
	return writeJSON(w, http.StatusOK, system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth " + s.opts.Version},
		Components:    []system.ComponentVersion{{Name: "Engine", Version: s.opts.Version, Details: details}},
		Version:       s.opts.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		GitCommit:     s.opts.GitCommit,
		GoVersion:     runtime.Version(),
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		KernelVersion: si.KernelVersion,
		BuildTime:     s.opts.BuildTime,
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request, _ params) error {
	si, err := s.d.Info()
	if err != nil {
		return err
	}
	ctrs, err := s.d.Containers(r.Context(), daemon.ListContainersOptions{All: true})
	if err != nil {
		return err
	}
	driverStatus := [][2]string{{"Backing Filesystem", si.BackingFS}}
	if si.Driver == daemon.DriverOverlay {
		driverStatus = append(driverStatus, [2]string{"Supports d_type", "true"})
	}
	out := system.Info{
		ID:                 si.ID,
		Containers:         len(ctrs),
		Images:             si.Images,
		Driver:             si.Driver,
		DriverStatus:       driverStatus,
		Plugins:            system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "none"}, Log: []string{"json-file"}},
		MemoryLimit:        si.MemoryLimit,
		SwapLimit:          si.SwapLimit,
		CPUCfsPeriod:       si.CPUCfsQuota,
		CPUCfsQuota:        si.CPUCfsQuota,
		CPUShares:          si.CPUShares,
		CPUSet:             si.CPUSet,
		PidsLimit:          si.PidsLimit,
		IPv4Forwarding:     si.IPv4Forwarding,
		Debug:              si.Debug,
		NFd:                si.NFd,
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         si.SystemTime.Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       si.CgroupDriver,
		CgroupVersion:      si.CgroupVersion,
		NEventsListener:    si.EventListeners,
		KernelVersion:      si.KernelVersion,
		OperatingSystem:    si.OperatingSystem,
		OSVersion:          si.OSVersion,
		OSType:             si.OSType,
		Architecture:       si.Architecture,
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     registryConfig(si),
		NCPU:               si.NCPU,
		MemTotal:           si.MemTotal,
		DockerRootDir:      si.DataRoot,
		Name:               si.Name,
		Labels:             []string{},
		ServerVersion:      s.opts.Version,
		Runtimes:           map[string]system.RuntimeWithStatus{"berth-runtime": {Runtime: system.Runtime{Path: "berth-runtime"}}},
		DefaultRuntime:     "berth-runtime",
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		LiveRestoreEnabled: si.LiveRestore,
		Isolation:          "",
		SecurityOptions:    []string{},
		CDISpecDirs:        []string{},
		Warnings:           []string{},
	}
	for _, c := range ctrs {
		switch c.State.Status {
		case container.StateRunning, container.StateRestarting:
			out.ContainersRunning++
		case container.StatePaused:
			out.ContainersPaused++
		default:
			out.ContainersStopped++
		}
	}
	if !si.IPv4Forwarding {
		out.Warnings = append(out.Warnings, "WARNING: IPv4 forwarding is disabled")
	}
	return writeJSON(w, http.StatusOK, out)
}

// registryConfig is /info's registry section: loopback and the insecure
// registries (CIDRs and hosts), and Docker Hub with its mirrors.
func registryConfig(si daemon.SystemInfo) *registrytypes.ServiceConfig {
	rc := &registrytypes.ServiceConfig{
		InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		IndexConfigs: map[string]*registrytypes.IndexInfo{
			"docker.io": {Name: "docker.io", Mirrors: nonNil(si.RegistryMirrors), Secure: true, Official: true},
		},
		Mirrors: nonNil(si.RegistryMirrors),
	}
	for _, r := range si.InsecureRegistries {
		if p, err := netip.ParsePrefix(r); err == nil {
			rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, p.Masked())
			continue
		}
		rc.IndexConfigs[r] = &registrytypes.IndexInfo{Name: r, Mirrors: []string{}, Secure: false}
	}
	return rc
}

// events streams events matching the type, event and image filters: the
// kept ones since "since", then new ones until "until" (or until the
// client goes away or the server shuts down).
func (s *Server) events(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	var since, until time.Time
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = parseTime("since", v); err != nil {
			return err
		}
	}
	if v := q.Get("until"); v != "" {
		if until, err = parseTime("until", v); err != nil {
			return err
		}
	}
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := checkFilters(f, "type", "event", "image", "label", "container", "volume", "network", "daemon", "scope"); err != nil {
		return err
	}
	filter := daemon.EventFilter{Types: f["type"], Actions: f["event"], Images: f["image"]}
	past, sub := s.d.Events().Subscribe(since)
	defer sub.Close()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	send := func(ev daemon.Event) bool {
		if !filter.Match(ev) || !matchEventContainer(f["container"], ev) || !allLabels(f["label"], ev.Attributes) {
			return true
		}
		if err := enc.Encode(toEvent(ev, p.version)); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	for _, ev := range past {
		if !until.IsZero() && ev.Time.After(until) {
			return nil
		}
		if !send(ev) {
			return nil
		}
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		d := time.Until(until)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				return nil
			}
			if !until.IsZero() && ev.Time.After(until) {
				return nil
			}
			if !send(ev) {
				return nil
			}
		case <-deadline:
			return nil
		case <-r.Context().Done():
			return nil
		case <-s.done:
			return nil
		}
	}
}

// matchEventContainer applies the events container filter as Docker
// does: an event passes when its actor's ID or name starts with one of
// the values; with no values every event passes.
func matchEventContainer(want []string, ev daemon.Event) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if strings.HasPrefix(ev.ID, w) || ev.Attributes["name"] != "" && strings.HasPrefix(ev.Attributes["name"], w) {
			return true
		}
	}
	return false
}

// allLabels reports whether attrs has every "key" or "key=value" of want
// (the events label filter).
func allLabels(want []string, attrs map[string]string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := attrs[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	return true
}

// diskUsage answers /system/df: images and containers; volumes and build
// cache empty until they exist. Both the legacy fields (API < 1.52) and
// the per-type usage objects are sent.
func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request, p params) error {
	u, err := s.d.ImageDiskUsage(r.Context())
	if err != nil {
		return err
	}
	ctrs, err := s.d.Containers(r.Context(), daemon.ListContainersOptions{All: true, Size: true})
	if err != nil {
		return err
	}
	now := time.Now()
	containers := make([]container.Summary, 0, len(ctrs))
	cu := container.DiskUsage{TotalCount: int64(len(ctrs))}
	for _, c := range ctrs {
		containers = append(containers, toContainerSummary(c, now))
		cu.TotalSize += c.SizeRw
		if c.State.Running() {
			cu.ActiveCount++
		} else {
			cu.Reclaimable += c.SizeRw
		}
	}
	cu.Items = containers
	images := make([]imagetypes.Summary, 0, len(u.Images))
	var reclaimable, active int64
	for _, iu := range u.Images {
		sum := toImageSummary(iu.Summary, iu.Containers, p.version).Summary
		sum.SharedSize = iu.SharedSize
		sum.Containers = int64(iu.Containers)
		images = append(images, sum)
		if iu.Containers > 0 {
			active++
		} else {
			reclaimable += iu.Size - iu.SharedSize
		}
	}
	out := struct {
		LayersSize      int64
		Images          []imagetypes.Summary
		Containers      []container.Summary
		Volumes         []volume.Volume
		BuildCache      []build.CacheRecord
		ImageUsage      *imagetypes.DiskUsage `json:",omitempty"`
		ContainerUsage  *container.DiskUsage  `json:",omitempty"`
		VolumeUsage     *volume.DiskUsage     `json:",omitempty"`
		BuildCacheUsage *build.DiskUsage      `json:",omitempty"`
	}{
		LayersSize: u.LayersSize,
		Images:     images,
		Containers: containers,
		Volumes:    []volume.Volume{},
		BuildCache: []build.CacheRecord{},
	}
	if !versionLess(p.version, "1.52") {
		out.ImageUsage = &imagetypes.DiskUsage{ActiveCount: active, TotalCount: int64(len(images)), TotalSize: u.LayersSize, Reclaimable: reclaimable, Items: images}
		out.ContainerUsage = &cu
		out.VolumeUsage = &volume.DiskUsage{}
		out.BuildCacheUsage = &build.DiskUsage{}
	}
	return writeJSON(w, http.StatusOK, out)
}

// auth checks credentials against a registry (docker login).
func (s *Server) auth(w http.ResponseWriter, r *http.Request, _ params) error {
	var ac registrytypes.AuthConfig
	if err := decodeBody(r, &ac); err != nil {
		return err
	}
	a, err := toAuth(ac)
	if err != nil {
		return err
	}
	if a == nil || a.Username == "" {
		return errInvalid("login: no user name given")
	}
	token, err := s.d.Login(r.Context(), ac.ServerAddress, a.Username, a.Password)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, registrytypes.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
}

// errInvalid is an ErrInvalidArgument error with msg.
func errInvalid(msg string) error {
	return &classed{msg: msg, class: errdefs.ErrInvalidArgument}
}

// classed is a message with a class that does not show in its text.
type classed struct {
	msg   string
	class error
}

func (e *classed) Error() string { return e.msg }
func (e *classed) Unwrap() error { return e.class }
