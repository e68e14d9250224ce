package daemon

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/build"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/network"
)

// BuildOptions say what one build does: the context and docker build's
// flags.
type BuildOptions struct {
	// Context is the build context as a tar stream, plain or compressed
	// with gzip, bzip2, xz or zstd.
	Context io.Reader
	// Dockerfile is the Dockerfile's path in the context ("" =
	// "Dockerfile").
	Dockerfile  string
	Tags        []string
	Target      string
	BuildArgs   map[string]*string
	Labels      map[string]string
	NoCache     bool
	Pull        bool
	NetworkMode string
	// Out receives the build's progress in Docker's classic builder
	// text ("Step 1/4 : FROM busybox").
	Out io.Writer
}

// lazyBuilder is the daemon's builder, made on first use.
type lazyBuilder struct {
	once sync.Once
	b    *build.Builder
	err  error
	made atomic.Pointer[build.Builder] // b, once made: readable any time
}

// builder returns the builder, making it the first time. Its containers
// have a runtime root of their own beside the daemon's, and its scratch
// space is <data-root>/build.
func (d *Daemon) builder() (*build.Builder, error) {
	d.bld.once.Do(func() {
		d.bld.b, d.bld.err = build.New(build.Config{
			Images:      d.imgs,
			Snapshotter: d.snap,
			DB:          d.db,
			RuntimePath: d.cfg.RuntimePath,
			RuntimeRoot: filepath.Join(d.cfg.ExecRoot, "build", "runtime"),
			StateDir:    filepath.Join(d.cfg.DataRoot, "build"),
			Network:     buildNetwork{d},
		})
		if d.bld.err == nil {
			d.bld.made.Store(d.bld.b)
		}
	})
	return d.bld.b, d.bld.err
}

// buildNetwork connects build containers to the default bridge through
// the daemon's network manager. A daemon that dies mid-build finds the
// sandbox at restart with no running container and tears it down.
type buildNetwork struct{ d *Daemon }

// Attach sets up a sandbox on the default bridge for build container id,
// its hosts, hostname and resolv.conf written into dir.
func (n buildNetwork) Attach(ctx context.Context, id, dir string) (build.Attachment, error) {
	sb, err := n.d.net.Setup(ctx, network.SandboxRequest{ContainerID: id, Hostname: id[:12], NetworkMode: "bridge", Dir: dir})
	if err != nil {
		return build.Attachment{}, err
	}
	return build.Attachment{NetNSPath: sb.NetNSPath, HostsPath: sb.HostsPath, ResolvConfPath: sb.ResolvConfPath}, nil
}

// Detach tears down the sandbox of build container id.
func (n buildNetwork) Detach(ctx context.Context, id string) error {
	return n.d.net.Teardown(ctx, id)
}

// CheckBuildOptions refuses bad build options before a build starts: an
// invalid tag or a Dockerfile path leaving the context.
func CheckBuildOptions(opts BuildOptions) error {
	if _, err := buildTags(opts.Tags); err != nil {
		return err
	}
	if opts.Dockerfile != "" && !filepath.IsLocal(filepath.Clean(opts.Dockerfile)) {
		return fmt.Errorf("the Dockerfile (%s) must be within the build context: %w", opts.Dockerfile, errdefs.ErrInvalidArgument)
	}
	return nil
}

// buildTags returns tags in their familiar form with a tag ("x" is
// "x:latest"), as the build reports them.
func buildTags(tags []string) ([]string, error) {
	var out []string
	for _, t := range tags {
		ref, err := image.ParseReference(t)
		if err != nil {
			return nil, err
		}
		out = append(out, image.FamiliarString(ref))
	}
	return out, nil
}

// Build unpacks the context (see contextDirs), builds it, and publishes a tag event for each tag. It returns the
// image ID.
func (d *Daemon) Build(ctx context.Context, opts BuildOptions) (digest.Digest, error) {
	if err := CheckBuildOptions(opts); err != nil {
		return "", err
	}
	tags, err := buildTags(opts.Tags)
	if err != nil {
		return "", err
	}
	if opts.Context == nil {
		return "", fmt.Errorf("build: no build context: %w", errdefs.ErrInvalidArgument)
	}
	b, err := d.builder()
	if err != nil {
		return "", err
	}
	dir, release, err := d.ctxDirs.unpack(ctx, opts.Context)
	if err != nil {
		return "", err
	}
	defer release()
	res, err := b.Build(withAuth(ctx, nil), build.Options{
		ContextDir:  dir,
		Dockerfile:  opts.Dockerfile,
		Tags:        tags,
		Target:      opts.Target,
		BuildArgs:   opts.BuildArgs,
		Labels:      opts.Labels,
		NoCache:     opts.NoCache,
		Pull:        opts.Pull,
		NetworkMode: opts.NetworkMode,
		Out:         opts.Out,
	})
	if err != nil {
		return "", err
	}
	for _, t := range tags {
		d.publishImage("tag", res.ImageID.String(), t, res.ImageID)
	}
	return res.ImageID, nil
}

// BuilderPrune drops the build cache and the images only it kept, and
// returns the bytes reclaimed.
func (d *Daemon) BuilderPrune(ctx context.Context) (int64, error) {
	b, err := d.builder()
	if err != nil {
		return 0, err
	}
	n, err := b.Prune(ctx)
	if err != nil {
		return n, err
	}
	if err := d.ctxDirs.prune(); err != nil {
		return n, fmt.Errorf("builder prune: %w", err)
	}
	d.publish(Event{Type: "builder", Action: "prune", Attributes: map[string]string{"reclaimed": fmt.Sprint(n)}})
	return n, nil
}
