package docker

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	registrytypes "github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/registry"
)

// This file converts between the wire types and the domain types, and
// parses the common parts of requests (filters, booleans, auth header).

// imageSummary is /images/json's entry; VirtualSize is for clients older
// than API 1.44, which read it instead of Size.
type imageSummary struct {
	imagetypes.Summary
	VirtualSize *int64 `json:"VirtualSize,omitempty"`
}

func toImageSummary(s image.Summary, containers int, version string) imageSummary {
	out := imageSummary{Summary: imagetypes.Summary{
		ID:          s.ID.String(),
		ParentID:    s.Parent.String(),
		RepoTags:    nonNil(s.RepoTags),
		RepoDigests: nonNil(s.RepoDigests),
		Created:     s.Created.Unix(),
		Size:        s.Size,
		SharedSize:  -1,
		Labels:      s.Labels,
		Containers:  int64(containers),
	}}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if versionLess(version, "1.51") {
		out.Containers = -1
	}
	if versionLess(version, "1.44") {
		v := s.Size
		out.VirtualSize = &v
	}
	return out
}

// imageInspect is /images/{name}/json. Parent, Comment and DockerVersion
// are always present for clients older than API 1.52 and only when set
// for newer ones, as Docker does. Clients older than 1.45 also get the
// legacy Container and ContainerConfig, empty as Docker now sends them
// (compose v1 reads ContainerConfig), and those older than 1.44
// VirtualSize.
type imageInspect struct {
	imagetypes.InspectResponse
	Parent          *string     `json:"Parent,omitempty"`
	Comment         *string     `json:"Comment,omitempty"`
	Container       *string     `json:"Container,omitempty"`
	ContainerConfig *api.Config `json:"ContainerConfig,omitempty"`
	DockerVersion   *string     `json:"DockerVersion,omitempty"`
	VirtualSize     *int64      `json:"VirtualSize,omitempty"`
}

// rawImageConfig is the part of an image config blob inspect shows that
// the OCI type leaves out.
type rawImageConfig struct {
	Config        *dockerspec.DockerOCIImageConfig `json:"config"`
	Comment       string                           `json:"comment"`
	DockerVersion string                           `json:"docker_version"`
	OSVersion     string                           `json:"os.version"`
}

func toImageInspect(d image.Details, driver string, dirs map[string]string, version string) (imageInspect, error) {
	var raw rawImageConfig
	if err := json.Unmarshal(d.RawConfig, &raw); err != nil {
		return imageInspect{}, fmt.Errorf("image %s: parse config: %w: %w", d.ID, err, errdefs.ErrDataLoss)
	}
	if raw.Config == nil {
		raw.Config = &dockerspec.DockerOCIImageConfig{}
	}
	out := imageInspect{InspectResponse: imagetypes.InspectResponse{
		ID:           d.ID.String(),
		RepoTags:     nonNil(d.RepoTags),
		RepoDigests:  nonNil(d.RepoDigests),
		Created:      d.Created.UTC().Format(time.RFC3339Nano),
		Author:       d.Config.Author,
		Config:       raw.Config,
		Architecture: d.Config.Architecture,
		Variant:      d.Config.Variant,
		Os:           d.Config.OS,
		OsVersion:    raw.OSVersion,
		Size:         d.Size,
		RootFS:       imagetypes.RootFS{Type: "layers"},
		Metadata:     imagetypes.Metadata{LastTagTime: d.Record.LastTagTime},
		GraphDriver:  &storage.DriverData{Name: driver, Data: dirs},
	}}
	if out.GraphDriver.Data == nil {
		out.GraphDriver.Data = map[string]string{}
	}
	for _, l := range d.Config.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, l.String())
	}
	desc := d.Record.Manifest
	if d.Record.Index != nil {
		desc = *d.Record.Index
	}
	if desc.Digest != "" {
		out.Descriptor = &desc
	}
	old := versionLess(version, "1.52")
	if parent := d.Parent.String(); parent != "" || old {
		out.Parent = &parent
	}
	if raw.Comment != "" || old {
		out.Comment = &raw.Comment
	}
	if raw.DockerVersion != "" || old {
		out.DockerVersion = &raw.DockerVersion
	}
	if versionLess(version, "1.45") {
		out.Container, out.ContainerConfig = new(string), &api.Config{}
	}
	if versionLess(version, "1.44") {
		size := d.Size
		out.VirtualSize = &size
	}
	return out, nil
}

func toHistory(h []image.HistoryEntry) []imagetypes.HistoryResponseItem {
	out := make([]imagetypes.HistoryResponseItem, 0, len(h))
	for _, e := range h {
		var created int64
		if !e.Created.IsZero() {
			created = e.Created.Unix()
		}
		out = append(out, imagetypes.HistoryResponseItem{
			ID: e.ID, Created: created, CreatedBy: e.CreatedBy, Tags: e.Tags, Size: e.Size, Comment: e.Comment,
		})
	}
	return out
}

func toDeleteResponses(rs []image.Removed) []imagetypes.DeleteResponse {
	out := make([]imagetypes.DeleteResponse, 0, len(rs))
	for _, r := range rs {
		out = append(out, imagetypes.DeleteResponse{Untagged: r.Untagged, Deleted: r.Deleted})
	}
	return out
}

// eventMessage is an /events line. Before API 1.52 container and image
// events also carry the deprecated status, id and from fields, which
// clients older than API 1.30 read to wait for a container.
type eventMessage struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

func toEvent(ev daemon.Event, version string) eventMessage {
	out := eventMessage{Message: toEventMessage(ev)}
	if versionLess(version, "1.52") && (ev.Type == string(events.ContainerEventType) || ev.Type == string(events.ImageEventType)) {
		out.Status, out.ID = ev.Action, ev.ID
		if ev.Type == string(events.ContainerEventType) {
			out.From = ev.Attributes["image"]
		}
	}
	return out
}

func toEventMessage(ev daemon.Event) events.Message {
	return events.Message{
		Type:     events.Type(ev.Type),
		Action:   events.Action(ev.Action),
		Actor:    events.Actor{ID: ev.ID, Attributes: ev.Attributes},
		Scope:    "local",
		Time:     ev.Time.Unix(),
		TimeNano: ev.Time.UnixNano(),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// parseFilters parses the filters query parameter: a JSON object mapping
// each filter to {"value": true, ...} or, from old clients, to a list.
func parseFilters(r *http.Request) (map[string][]string, error) {
	v := r.URL.Query().Get("filters")
	if v == "" {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, fmt.Errorf("invalid filters %q: %v: %w", v, err, errdefs.ErrInvalidArgument)
	}
	out := map[string][]string{}
	for k, m := range raw {
		var set map[string]bool
		if err := json.Unmarshal(m, &set); err == nil {
			for val, on := range set {
				if on {
					out[k] = append(out[k], val)
				}
			}
			continue
		}
		var list []string
		if err := json.Unmarshal(m, &list); err != nil {
			return nil, fmt.Errorf("invalid filter %q: want an object or a list of strings: %w", k, errdefs.ErrInvalidArgument)
		}
		out[k] = append(out[k], list...)
	}
	return out, nil
}

// checkFilters refuses filters not in allowed.
func checkFilters(f map[string][]string, allowed ...string) error {
	for k := range f {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// boolValue parses a boolean query parameter as Docker does: absent, "",
// "0", "no", "false" and "none" are false, other values true.
func boolValue(r *http.Request, key string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// authFromHeader decodes X-Registry-Auth (base64url JSON of an
// AuthConfig). An absent or empty header means anonymous.
func authFromHeader(r *http.Request) (*registry.AuthConfig, error) {
	h := r.Header.Get("X-Registry-Auth")
	if h == "" {
		return nil, nil
	}
	var b []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err = enc.DecodeString(h); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid X-Registry-Auth header: not base64: %w", errdefs.ErrInvalidArgument)
	}
	var ac registrytypes.AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		return nil, fmt.Errorf("invalid X-Registry-Auth header: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return toAuth(ac)
}

// toAuth converts the wire credentials, splitting the legacy "auth" field
// (base64 of user:password).
func toAuth(ac registrytypes.AuthConfig) (*registry.AuthConfig, error) {
	a := registry.AuthConfig{Username: ac.Username, Password: ac.Password,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
	if ac.Auth != "" && a.Username == "" {
		dec, err := base64.StdEncoding.DecodeString(ac.Auth)
		if err != nil {
			return nil, fmt.Errorf("invalid auth field: not base64: %w", errdefs.ErrInvalidArgument)
		}
		user, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return nil, fmt.Errorf("invalid auth field: want user:password: %w", errdefs.ErrInvalidArgument)
		}
		a.Username, a.Password = user, pass
	}
	if a == (registry.AuthConfig{}) {
		return nil, nil
	}
	return &a, nil
}

// parseTime parses a since/until value: Unix seconds with an optional
// fraction ("1700000000.123456789"), RFC 3339 or a duration before now.
func parseTime(key, v string) (time.Time, error) {
	t, err := image.ParseTimestamp(v, time.Now())
	if err != nil {
		return t, fmt.Errorf("invalid %s value %q: %w", key, v, errdefs.ErrInvalidArgument)
	}
	return t, nil
}

// writeJSON answers 200 (or status) with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// decodeBody decodes a JSON request body into v; an empty or malformed
// body is an ErrInvalidArgument error.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON in request body: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// matchingNames returns the names ("name:tag" or "name@digest", familiar)
// whose name, or name with tag, matches one of the reference filter's
// glob patterns (familiar or fully qualified).
func matchingNames(names, patterns []string) []string {
	var out []string
	for _, n := range names {
		repo := n
		if i := strings.IndexByte(n, '@'); i >= 0 {
			repo = n[:i]
		} else if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
			repo = n[:i]
		}
		cands := []string{n, repo}
		if ref, err := reference.ParseNormalizedNamed(repo); err == nil {
			cands = append(cands, ref.Name())
		}
	matched:
		for _, p := range patterns {
			for _, c := range cands {
				if ok, _ := path.Match(p, c); ok {
					out = append(out, n)
					break matched
				}
			}
		}
	}
	return out
}
