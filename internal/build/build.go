// Package build turns a build context and a Dockerfile into an image, the
// way Docker's classic builder does: each instruction of each stage yields
// an ordinary image (a layer or a history entry on top of its parent),
// RUN steps run through berth-runtime on a snapshot of their parent image,
// and COPY and ADD write context files into such a snapshot. A persistent
// cache (in the metadata database) maps a step's parent, its expanded
// instruction and the digest of its inputs to the image it made, so an
// unchanged step is reused and a changed file rebuilds only what follows.
//
// Stages that do not use each other build in parallel; the progress
// still reads as Docker's sequential classic build stream. RUN supports
// heredocs and --mount=type=tmpfs|bind|cache|secret; COPY and ADD
// read only inside the context (or the --from image) and write through
// archive.Apply, which never writes outside the step's snapshot.
//
// The Dockerfile is parsed with buildkit's parser and instructions
// packages; variables are expanded with its shell lexer.
package build

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
)

// Config wires a Builder to berth's stores and runtime.
type Config struct {
	// Images makes, finds and pulls images.
	Images *image.Service
	// Snapshotter holds the snapshots RUN and COPY steps write into.
	Snapshotter snapshot.Snapshotter
	// DB keeps the build cache index (kind "build-cache").
	DB *metadata.DB
	// RuntimePath is the berth-runtime binary RUN steps run with.
	RuntimePath string
	// RuntimeRoot is berth-runtime's --root for build containers (a
	// directory of the builder's own).
	RuntimeRoot string
	// StateDir is scratch space the builder owns (bundles, mount points,
	// temporary files); what a build puts there is gone when it ends.
	StateDir string
	// Network, if set, connects RUN steps of the default network mode to
	// the daemon's default bridge; without it they have only a loopback.
	Network Network
}

// Network connects build containers to the daemon's default network.
type Network interface {
	// Attach makes a network namespace for the build container id on the
	// default bridge and writes its hosts and resolv.conf files into dir.
	Attach(ctx context.Context, id, dir string) (Attachment, error)
	// Detach releases what Attach made for id.
	Detach(ctx context.Context, id string) error
}

// Attachment is a build container's network: the namespace it joins
// and the files mounted at /etc/hosts and /etc/resolv.conf.
type Attachment struct {
	NetNSPath, HostsPath, ResolvConfPath string
}

// Builder builds images from Dockerfiles. Its methods are safe for
// concurrent use.
type Builder struct {
	cfg Config

	cacheMu    sync.Mutex
	cacheUsers map[string]int // RUN cache mount snapshots in use, by key

	// activeMu guards active, the images running builds use (bases,
	// steps made or taken from the cache), counted per build; Prune
	// checks it and removes under it.
	activeMu sync.Mutex
	active   map[digest.Digest]int
	pruning  map[digest.Digest]bool // images Prune is removing
}

// InUse reports whether a running build uses image id (as a base, a step
// it made or a cache hit): the image service must keep it, for the build
// will build on it. The daemon ORs it into image.Config.InUse.
func (b *Builder) InUse(id digest.Digest) bool {
	b.activeMu.Lock()
	defer b.activeMu.Unlock()
	return b.active[id] > 0
}

// imageHolds are the images one build holds in Builder.active.
type imageHolds struct {
	mu  sync.Mutex
	ids map[digest.Digest]bool
}

// holdImage marks id in use by the build until it ends. It fails (false)
// for an image Prune is removing.
func (bd *build) holdImage(id digest.Digest) bool {
	if id == "" {
		return true
	}
	bd.holds.mu.Lock()
	defer bd.holds.mu.Unlock()
	if bd.holds.ids[id] {
		return true
	}
	b := bd.b
	b.activeMu.Lock()
	defer b.activeMu.Unlock()
	if b.pruning[id] {
		return false
	}
	bd.holds.ids[id] = true
	if b.active == nil {
		b.active = map[digest.Digest]int{}
	}
	b.active[id]++
	return true
}

// releaseImages drops the build's holds.
func (bd *build) releaseImages() {
	bd.holds.mu.Lock()
	defer bd.holds.mu.Unlock()
	b := bd.b
	b.activeMu.Lock()
	defer b.activeMu.Unlock()
	for id := range bd.holds.ids {
		if b.active[id]--; b.active[id] <= 0 {
			delete(b.active, id)
		}
	}
	bd.holds.ids = map[digest.Digest]bool{}
}

// New returns a Builder over cfg, creating its state and runtime
// directories and removing what builds a crash interrupted left there
// (build containers, mounts, scratch files, build snapshots). Call it
// before any build of this data root runs.
func New(cfg Config) (*Builder, error) {
	if cfg.Images == nil || cfg.Snapshotter == nil || cfg.DB == nil {
		return nil, fmt.Errorf("new builder: image service, snapshotter and database are required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.RuntimePath == "" || !filepath.IsAbs(cfg.RuntimeRoot) || !filepath.IsAbs(cfg.StateDir) {
		return nil, fmt.Errorf("new builder: runtime path and absolute runtime root and state dir are required: %w", errdefs.ErrInvalidArgument)
	}
	for _, d := range []string{cfg.RuntimeRoot, cfg.StateDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("new builder: %w", err)
		}
	}
	b := &Builder{cfg: cfg}
	// Nothing builds yet: what is in the state dir, the runtime root and
	// the build snapshots was left by builds a crash cut short.
	ctx := context.Background()
	if err := b.cleanStale(ctx); err != nil {
		log.G(ctx).Warn("builder: leftovers of earlier builds remain", "error", err)
	}
	return b, nil
}

// Options say what one build does, like docker build's flags.
type Options struct {
	// ContextDir is the build context, already extracted and filtered by
	// .dockerignore.
	ContextDir string
	// Dockerfile is the Dockerfile's path relative to ContextDir
	// ("" = "Dockerfile").
	Dockerfile string
	// Tags name the built image (-t, several allowed).
	Tags []string
	// Target is the stage to build (default: the last).
	Target string
	// BuildArgs are --build-arg values; a nil value leaves the ARG's default.
	BuildArgs map[string]*string
	// Labels are set on the final image (--label).
	Labels map[string]string
	// NoCache builds every step anew.
	NoCache bool
	// Pull pulls every FROM image even if it is present.
	Pull bool
	// Secrets are the values of RUN --mount=type=secret, by id (berth
	// build --secret); they reach no image and no cache key.
	Secrets map[string][]byte
	// NetworkMode is the network of RUN steps: "none", "host", or "",
	// "default" and "bridge": the default bridge (see Config.Network).
	NetworkMode string
	// Out receives the progress, in Docker's classic build stream format.
	Out io.Writer
}

// Result is what a build made.
type Result struct {
	// ImageID is the built image ("sha256:...").
	ImageID digest.Digest
}

// Build builds opts.Dockerfile in opts.ContextDir and tags the result.
// Bad input (syntax, unknown stage, missing files, a path out of the
// context) fails with errdefs.ErrInvalidArgument before or at its step;
// a failing RUN fails with Docker's "returned a non-zero code" message.
// Whatever fails, no build snapshot, container or scratch file is left.
func (b *Builder) Build(ctx context.Context, opts Options) (Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.ContextDir == "" {
		return Result{}, fmt.Errorf("build: no build context: %w", errdefs.ErrInvalidArgument)
	}
	ctxDir, err := filepath.Abs(opts.ContextDir)
	if err != nil {
		return Result{}, fmt.Errorf("build: context %s: %w", opts.ContextDir, err)
	}
	opts.ContextDir = ctxDir
	switch opts.NetworkMode {
	case "", "default", "bridge", "none", "host":
	default:
		return Result{}, fmt.Errorf("build: network mode %q is not supported (none, host, default): %w", opts.NetworkMode, errdefs.ErrNotImplemented)
	}
	df, err := readDockerfile(ctxDir, opts.Dockerfile)
	if err != nil {
		return Result{}, err
	}
	parsed, err := parse(df)
	if err != nil {
		return Result{}, err
	}
	for _, t := range opts.Tags {
		if _, err := image.ParseReference(t); err != nil {
			return Result{}, fmt.Errorf("invalid tag %q: %w", t, errdefs.ErrInvalidArgument)
		}
	}
	scratch, err := os.MkdirTemp(b.cfg.StateDir, "build-")
	if err != nil {
		return Result{}, fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(scratch)

	// The lease keeps the layers made and the snapshots read from the
	// image collector until the images that use them are recorded; it
	// expires should the daemon die before it is deleted.
	lease := "build-" + filepath.Base(scratch)
	err = b.cfg.DB.Update(func(tx *metadata.Tx) error {
		return tx.PutLease(metadata.Lease{ID: lease, Expires: time.Now().Add(24 * time.Hour).UTC()})
	})
	if err != nil {
		return Result{}, fmt.Errorf("build: %w", err)
	}
	defer func() {
		err := b.cfg.DB.Update(func(tx *metadata.Tx) error { return tx.DeleteLease(lease) })
		if err != nil {
			log.G(ctx).Warn("build: delete lease", "lease", lease, "error", err)
		}
	}()
	bd := &build{b: b, opts: opts, df: parsed, scratch: scratch, lease: lease, lex: shell.NewLex(parsed.escape), usedMu: &sync.Mutex{}, used: map[string]bool{},
		holds: &imageHolds{ids: map[digest.Digest]bool{}}}
	defer bd.releaseImages()
	id, err := bd.run(ctx)
	if err != nil {
		return Result{}, err
	}
	if unused := bd.unusedArgs(); len(unused) > 0 {
		fmt.Fprintf(opts.Out, "[Warning] One or more build-args [%s] were not consumed\n", strings.Join(unused, " "))
	}
	if err := b.markResult(id); err != nil {
		return Result{}, err
	}
	fmt.Fprintf(opts.Out, "Successfully built %s\n", shortID(id))
	for _, t := range opts.Tags {
		if err := b.cfg.Images.Tag(ctx, id.String(), t); err != nil {
			return Result{}, fmt.Errorf("tag %s: %w", t, err)
		}
		fmt.Fprintf(opts.Out, "Successfully tagged %s\n", t)
	}
	return Result{ImageID: id}, nil
}

// readDockerfile reads the Dockerfile named rel inside ctxDir.
func readDockerfile(ctxDir, rel string) ([]byte, error) {
	if rel == "" {
		rel = "Dockerfile"
		// Docker falls back to the lower-case name.
		if _, err := os.Lstat(filepath.Join(ctxDir, rel)); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Lstat(filepath.Join(ctxDir, "dockerfile")); err == nil {
				rel = "dockerfile"
			}
		}
	}
	p, err := inContext(ctxDir, rel)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		//lint:ignore ST1005 Docker's wording
		return nil, fmt.Errorf("Cannot locate specified Dockerfile: %s: %w", rel, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("read dockerfile: %w", err)
	}
	return data, nil
}

// shortID is the 12-hex-digit form of an image ID.
func shortID(id digest.Digest) string {
	e := id.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}

// unusedArgs lists the build args no ARG instruction declared, sorted.
func (bd *build) unusedArgs() []string {
	bd.usedMu.Lock()
	defer bd.usedMu.Unlock()
	var out []string
	for k := range bd.opts.BuildArgs {
		if !bd.used[k] && !predefinedArgs[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// predefinedArgs are the build args usable without an ARG (proxies).
var predefinedArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// ExitError is a RUN step whose command failed; its message is Docker's.
type ExitError struct {
	// Command is the step's command line, joined by spaces.
	Command string
	// Code is its exit status.
	Code int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", e.Command, e.Code)
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// inContext resolves rel, a path the user gave, inside the context dir:
// a path out of the context is refused, symlinks resolve inside it.
func inContext(ctxDir, rel string) (string, error) {
	clean := filepath.Clean(rel)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("forbidden path outside the build context: %s (): %w", rel, errdefs.ErrInvalidArgument)
	}
	p, err := securejoin.SecureJoin(ctxDir, clean)
	if err != nil {
		return "", fmt.Errorf("resolve %s in the build context: %w", rel, err)
	}
	return p, nil
}

// hold adds a resource to the build's lease.
func (bd *build) hold(kind, id string) error {
	err := bd.b.cfg.DB.Update(func(tx *metadata.Tx) error {
		return tx.AddResource(bd.lease, metadata.Resource{Kind: kind, ID: id})
	})
	if err != nil {
		return fmt.Errorf("build lease: %w", err)
	}
	return nil
}
