package docker

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
)

func (s *Server) listImages(w http.ResponseWriter, r *http.Request, p params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := checkFilters(f, "dangling", "label", "before", "since", "reference", "until"); err != nil {
		return err
	}
	list, err := s.d.ListImages(r.Context(), f, boolValue(r, "all"))
	if err != nil {
		return err
	}
	out := make([]imageSummary, 0, len(list))
	for _, sum := range list {
		if pats := f["reference"]; len(pats) > 0 {
			// Docker shows only the names that matched.
			sum.RepoTags = matchingNames(sum.RepoTags, pats)
			sum.RepoDigests = matchingNames(sum.RepoDigests, pats)
		}
		out = append(out, toImageSummary(sum, 0, p.version))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request, p params) error {
	det, err := s.d.InspectImage(r.Context(), p.name)
	if err != nil {
		return err
	}
	dirs, err := s.d.LayerDirs(r.Context(), det.Record)
	if err != nil {
		return err
	}
	out, err := toImageInspect(det, s.d.StorageDriver(), dirs, p.version)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, p params) error {
	h, err := s.d.ImageHistory(r.Context(), p.name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toHistory(h))
}

// tagImage answers POST /images/{name}/tag?repo=&tag= with 201.
func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		return errInvalid("tag: repository name (repo) is required")
	}
	target := repo
	if tag != "" {
		target = repo + ":" + tag
	}
	if err := s.d.TagImage(r.Context(), p.name, target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request, p params) error {
	out, err := s.d.RemoveImage(r.Context(), p.name, image.RemoveOptions{Force: boolValue(r, "force"), NoPrune: boolValue(r, "noprune")})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toDeleteResponses(out))
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request, p params) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := checkFilters(f, "dangling", "until", "label", "label!"); err != nil {
		return err
	}
	opts := image.PruneOptions{Filters: f}
	for _, v := range f["dangling"] {
		switch strings.ToLower(v) {
		case "false", "0":
			opts.All = true
		case "true", "1":
		default:
			return fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
		}
	}
	rep, err := s.d.PruneImages(r.Context(), opts)
	if err != nil {
		return err
	}
	out := imagetypes.PruneReport{ImagesDeleted: toDeleteResponses(rep.Removed)}
	if rep.SpaceReclaimed > 0 {
		out.SpaceReclaimed = uint64(rep.SpaceReclaimed)
	}
	return writeJSON(w, http.StatusOK, out)
}

// createImage is POST /images/create: a pull (fromImage) or an import of
// a rootfs tarball in the body (fromSrc=-).
func (s *Server) createImage(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	var platform *ocispec.Platform
	if v := q.Get("platform"); v != "" {
		pl, err := image.ParsePlatform(v)
		if err != nil {
			return err
		}
		platform = &pl
	}
	switch {
	case q.Get("fromImage") != "":
		return s.pull(w, r, q.Get("fromImage"), q.Get("tag"), platform)
	case q.Get("fromSrc") != "":
		return s.importImage(w, r, platform)
	}
	return errInvalid("create image: fromImage or fromSrc is required")
}

// pullRef combines fromImage and tag (a tag or a digest) into one
// reference. A name with neither would pull all tags, which berth does
// not do.
func pullRef(from, tag string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(from)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %v: %w", from, err, errdefs.ErrInvalidArgument)
	}
	if tag == "" {
		if reference.IsNameOnly(ref) {
			return nil, fmt.Errorf("pull %s: pulling all tags of a repository is not supported, name a tag: %w", from, errdefs.ErrNotImplemented)
		}
		return ref, nil
	}
	if d, err := digest.Parse(tag); err == nil {
		return reference.WithDigest(reference.TrimNamed(ref), d)
	}
	t, err := reference.WithTag(reference.TrimNamed(ref), tag)
	if err != nil {
		return nil, fmt.Errorf("invalid tag %q: %v: %w", tag, err, errdefs.ErrInvalidArgument)
	}
	return t, nil
}

func (s *Server) pull(w http.ResponseWriter, r *http.Request, from, tag string, platform *ocispec.Platform) error {
	ref, err := pullRef(from, tag)
	if err != nil {
		return err
	}
	auth, err := authFromHeader(r)
	if err != nil {
		return err
	}
	ps := newProgressStream(w)
	res, err := s.d.PullImage(r.Context(), ref.String(), daemon.PullOptions{Platform: platform, Auth: auth, Progress: ps.progress})
	if err != nil {
		return ps.finish(pullError(ref, err))
	}
	fam := reference.FamiliarString(ref)
	ps.status("", "Digest: "+res.Digest.String())
	if res.Updated {
		ps.status("", "Status: Downloaded newer image for "+fam)
	} else {
		ps.status("", "Status: Image is up to date for "+fam)
	}
	return nil
}

// pullError words a pull of a missing manifest as Docker does ("manifest
// for x not found"); other errors pass unchanged.
func pullError(ref reference.Named, err error) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("manifest for %s not found: %w", reference.FamiliarString(ref), err)
	}
	return err
}

func (s *Server) importImage(w http.ResponseWriter, r *http.Request, platform *ocispec.Platform) error {
	q := r.URL.Query()
	src := q.Get("fromSrc")
	if src != "-" {
		return fmt.Errorf("import from %q: only fromSrc=- (the request body) is supported: %w", src, errdefs.ErrNotImplemented)
	}
	ref := q.Get("repo")
	if ref != "" && q.Get("tag") != "" {
		ref += ":" + q.Get("tag")
	}
	ps := newProgressStream(w)
	id, err := s.d.ImportImage(r.Context(), r.Body, image.ImportOptions{
		Ref: ref, Changes: q["changes"], Message: q.Get("message"), Source: src, Platform: platform,
	})
	if err != nil {
		return ps.finish(err)
	}
	ps.status("", id.String())
	return nil
}

// pushImage is POST /images/{name}/push?tag=: name is a repository; no
// tag pushes all its tags.
func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, p params) error {
	name := p.name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		name += ":" + tag
	}
	auth, err := authFromHeader(r)
	if err != nil {
		return err
	}
	ps := newProgressStream(w)
	res, err := s.d.PushImage(r.Context(), name, auth, ps.progress)
	for _, pr := range res {
		ps.aux(struct {
			Tag    string
			Digest string
			Size   int64
		}{pr.Tag, pr.Digest.String(), pr.Size})
	}
	return ps.finish(err)
}

func (s *Server) saveImage(w http.ResponseWriter, r *http.Request, p params) error {
	return s.save(w, r, []string{p.name})
}

func (s *Server) saveImages(w http.ResponseWriter, r *http.Request, p params) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return errInvalid("save: no image names (names=...) given")
	}
	return s.save(w, r, names)
}

// save streams a tar of the images. An error before the first byte is
// answered with a status; after, the connection is cut so the client
// sees a truncated archive rather than a complete-looking one.
func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) error {
	lw := &lazyWriter{w: w, contentType: "application/x-tar"}
	err := s.d.SaveImages(r.Context(), lw, names)
	if err != nil && lw.started {
		panic(http.ErrAbortHandler)
	}
	return err
}

// lazyWriter sends the 200 header with the first write.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.w.Header().Set("Content-Type", l.contentType)
		l.w.WriteHeader(http.StatusOK)
		l.started = true
	}
	return l.w.Write(p)
}

// loadImages is POST /images/load: the body is an image archive. The
// answer is a JSON stream with "Loaded image: name" lines, and layer
// progress unless quiet.
func (s *Server) loadImages(w http.ResponseWriter, r *http.Request, p params) error {
	quiet := boolValue(r, "quiet")
	ps := newProgressStream(w)
	var prog image.ProgressFunc
	if !quiet {
		prog = ps.progress
	}
	loaded, err := s.d.LoadImages(r.Context(), bodyReader{r.Body}, prog)
	for _, li := range loaded {
		if len(li.Names) == 0 {
			ps.stream("Loaded image ID: " + li.ID.String() + "\n")
		}
		for _, n := range li.Names {
			ps.stream("Loaded image: " + n + "\n")
		}
	}
	return ps.finish(err)
}

// bodyReader classifies a failed read of the request body as invalid
// input (the client sent a truncated archive or went away).
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("read request body: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return n, err
}
