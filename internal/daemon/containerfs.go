package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	api "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/snapshot"
)

// This file holds the verbs that look at or change a container's file
// system from outside: diff, cp (archive HEAD/GET/PUT), export, commit,
// and container prune. The Linux-only part, the view of a container's file
// system that cp works on, is in containerfs_linux.go.
//
// Locking: a verb that mounts or binds a container's layer holds e.op for
// as long as the mount lives, so that the container neither starts, stops
// nor goes away under it (two overlay mounts must never share an upper
// directory).

// fileNotFound is Docker's error for a missing path in a container.
func fileNotFound(file, ref string) error {
	//lint:ignore ST1005 Docker's wording, which clients match
	return fmt.Errorf("Could not find the file %s in container %s: %w", file, ref, errdefs.ErrNotFound)
}

// lockFS returns the entry of ref with e.op held, a copy of its record and
// whether it runs (its root is then mounted at bundleDir/rootfs).
func (d *Daemon) lockFS(ref string) (*ctrEntry, *container.Container, bool, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return nil, nil, false, err
	}
	e.op.Lock()
	e.mu.Lock()
	c, removed, running := e.c.Clone(), e.removed, e.c.State.Running()
	e.mu.Unlock()
	if removed {
		e.op.Unlock()
		return nil, nil, false, noSuchContainer(ref)
	}
	return e, c, running, nil
}

// ContainerChanges lists what the container changed in its writable layer
// against its image, sorted by path, as docker diff shows it. The mount
// points the runtime and the daemon made in the layer (see mountPoints)
// are left out while they are empty, as Docker's init layer hides them.
func (d *Daemon) ContainerChanges(ctx context.Context, ref string) ([]api.FilesystemChange, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	c, removed := e.c.Clone(), e.removed
	e.mu.Unlock()
	if removed {
		return nil, noSuchContainer(ref)
	}
	mounts, err := d.snap.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
	}
	upper, lowers, err := snapshot.UpperDir(mounts)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
	}
	var changes []archive.Change
	if mounts[0].Type == "overlay" {
		changes, err = archive.OverlayChanges(ctx, upper, lowers)
	} else {
		err = d.withParentTree(ctx, c.SnapshotKey, func(lower string) error {
			var err error
			changes, err = archive.Changes(ctx, lower, upper)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
	}
	root, err := os.OpenRoot(upper)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
	}
	defer root.Close()
	changes = hideMountPoints(changes, mountPoints(c), func(p string, hidden func(string) bool) bool {
		return emptyPlaceholder(root, p, hidden)
	})
	out := make([]api.FilesystemChange, len(changes))
	for i, ch := range changes {
		out[i] = api.FilesystemChange{Kind: api.ChangeType(ch.Kind), Path: ch.Path}
	}
	return out, nil
}

// withParentTree calls fn with a directory holding the full tree of the
// parent of the snapshot key (an empty one for none): the parent's own
// directory when a bind mount exposes it, else a temporary mount.
func (d *Daemon) withParentTree(ctx context.Context, key string, fn func(dir string) error) error {
	info, err := d.snap.Stat(ctx, key)
	if err != nil {
		return err
	}
	if info.Parent == "" {
		empty, err := os.MkdirTemp(filepath.Join(d.cfg.DataRoot, "tmp"), "empty-")
		if err != nil {
			return err
		}
		defer os.Remove(empty)
		return fn(empty)
	}
	mounts, err := d.snap.Mounts(ctx, info.Parent)
	if err != nil {
		return fmt.Errorf("parent %s: %w", info.Parent, err)
	}
	if len(mounts) == 1 && (mounts[0].Type == "bind" || mounts[0].Type == "rbind") {
		return fn(mounts[0].Source)
	}
	return snapshot.WithTempMount(ctx, mounts, fn)
}

// defaultMountPoints are where the runtime mounts something in every
// container (/proc, /sys, /dev and what lives in them) and where the daemon
// binds its files.
var defaultMountPoints = []string{
	"/proc", "/sys", "/sys/fs/cgroup", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console",
	"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", oci.InitPathInContainer,
}

// mountPoints returns the paths at which c gets something mounted: the
// defaults, its volumes, binds and tmpfs mounts.
func mountPoints(c *container.Container) map[string]bool {
	out := map[string]bool{}
	for _, p := range defaultMountPoints {
		out[p] = true
	}
	for _, m := range c.Mounts {
		out[path.Clean("/"+m.Destination)] = true
	}
	if c.HostConfig != nil {
		for p := range c.HostConfig.Tmpfs {
			out[path.Clean("/"+p)] = true
		}
	}
	return out
}

// hideMountPoints drops from changes (sorted by path) what only mounting
// made: an added mount point that is an empty placeholder (empty says so,
// given which paths are already hidden), and a directory above mount
// points that was added or changed only because hidden ones were made in
// it. A change the user made below a directory keeps it.
func hideMountPoints(changes []archive.Change, points map[string]bool, empty func(p string, hidden func(string) bool) bool) []archive.Change {
	above := map[string]bool{}
	for p := range points {
		for a := path.Dir(p); a != "/" && a != "."; a = path.Dir(a) {
			above[a] = true
		}
	}
	hidden := map[string]bool{}
	keptBelow, hiddenBelow := map[string]bool{}, map[string]bool{}
	isHidden := func(p string) bool { return hidden[p] }
	// Children sort after their parent: walk backwards to see them first.
	for i := len(changes) - 1; i >= 0; i-- {
		ch := changes[i]
		p := ch.Path
		hide := false
		switch {
		case keptBelow[p] || ch.Kind == archive.Delete:
		case points[p] && ch.Kind == archive.Add && empty(p, isHidden):
			hide = true
		case above[p] && hiddenBelow[p]:
			hide = true
		}
		mark := keptBelow
		if hide {
			hidden[p] = true
			mark = hiddenBelow
		}
		for a := path.Dir(p); ; a = path.Dir(a) {
			mark[a] = true
			if a == "/" || a == "." {
				break
			}
		}
	}
	out := make([]archive.Change, 0, len(changes))
	for _, ch := range changes {
		if !hidden[ch.Path] {
			out = append(out, ch)
		}
	}
	return out
}

// emptyPlaceholder reports whether the layer entry p under root is an
// empty regular file or a directory holding only hidden entries.
func emptyPlaceholder(root *os.Root, p string, hidden func(string) bool) bool {
	rel := strings.TrimPrefix(p, "/")
	fi, err := root.Lstat(rel)
	if err != nil {
		return false
	}
	switch {
	case fi.Mode().IsRegular():
		return fi.Size() == 0
	case !fi.IsDir():
		return false
	}
	f, err := root.Open(rel)
	if err != nil {
		return false
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return false
	}
	for _, n := range names {
		if !hidden(path.Join(p, n)) {
			return false
		}
	}
	return true
}

// containerPath turns the path of a cp request into an absolute, clean
// path inside the container (relative paths are relative to "/").
func containerPath(p string) string { return path.Clean("/" + p) }

// followsLast reports whether the request path ends with "/" or "/.",
// which makes its last component, if a symlink, followed (as the shell
// does for "dir/" and "dir/.").
func followsLast(p string) bool {
	return p == "." || strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
}

// statName is the Name that archive HEAD/GET report for the request
// path p, as Docker computes it: the base name, "." for a path ending
// with "/." and "/" for the root.
func statName(p string) string {
	if p == "." || strings.HasSuffix(p, "/.") {
		return "."
	}
	return path.Base(containerPath(p))
}

// archiveName is the name of the top entry of the tar of p: its base name,
// and "." for the root (whose base name "/" cannot be an entry name).
func archiveName(p string) string {
	if n := statName(p); n != "/" {
		return n
	}
	return "."
}

// mountAt returns the mount of mounts that holds the container path p
// (the one with the longest destination), or nil.
func mountAt(mounts []container.Mount, p string) *container.Mount {
	var best *container.Mount
	for i := range mounts {
		d := path.Clean("/" + mounts[i].Destination)
		if p != d && !strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			continue
		}
		if best == nil || len(d) > len(path.Clean("/"+best.Destination)) {
			best = &mounts[i]
		}
	}
	return best
}

// StatContainerPath describes the path p inside the container ref as
// archive HEAD does: an lstat of p, whose last component, if a symlink, is
// reported with its target fully resolved inside the container.
func (d *Daemon) StatContainerPath(ctx context.Context, ref, p string) (PathStat, error) {
	e, c, running, err := d.lockFS(ref)
	if err != nil {
		return PathStat{}, err
	}
	defer e.op.Unlock()
	v, err := d.openView(ctx, c, running)
	if err != nil {
		return PathStat{}, err
	}
	defer v.Close()
	st, _, err := v.stat(p)
	if err != nil {
		return PathStat{}, cpError(err, p, ref)
	}
	return st, nil
}

// cpError turns a file system error of a cp request into Docker's errors.
func cpError(err error, p, ref string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fileNotFound(p, ref)
	case errdefs.IsInvalidArgument(err), errdefs.IsConflict(err), errdefs.IsNotImplemented(err):
		return err
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("container %s: %s: %w: %w", ref, p, err, errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("container %s: %s: %w", ref, p, err)
}

// ContainerArchive returns a tar of the file or directory p of the
// container ref and its stat. The tar's top entry is named after p's base
// name ("." for "dir/." and for the root); a symlink is archived as the
// link. The container stays locked (it cannot start, stop or go away)
// until the tar was read to its end or the reader is closed: callers must
// Close it. ctx bounds the writing of the tar.
func (d *Daemon) ContainerArchive(ctx context.Context, ref, p string) (io.ReadCloser, PathStat, error) {
	e, c, running, err := d.lockFS(ref)
	if err != nil {
		return nil, PathStat{}, err
	}
	v, err := d.openView(ctx, c, running)
	if err != nil {
		e.op.Unlock()
		return nil, PathStat{}, err
	}
	st, loc, err := v.stat(p)
	if err != nil {
		v.Close()
		e.op.Unlock()
		return nil, PathStat{}, cpError(err, p, ref)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := v.archive(ctx, pw, loc, archiveName(p))
		v.Close()
		e.op.Unlock()
		if err != nil {
			err = cpError(err, p, ref)
		}
		pw.CloseWithError(err)
	}()
	d.publishContainer("archive-path", c, nil)
	return &archiveReader{PipeReader: pr, done: done}, st, nil
}

// archiveReader is the tar stream of ContainerArchive: Close stops the
// writer and waits until the container's file system is released.
type archiveReader struct {
	*io.PipeReader
	done chan struct{}
}

func (r *archiveReader) Close() error {
	r.PipeReader.CloseWithError(errors.New("archive reader closed"))
	<-r.done
	return nil
}

// ExtractToContainer extracts the tar r into the directory p of the
// container ref (docker cp into a container). Entries must stay inside p;
// symlinks in the container are followed inside its root only. A path in a
// read-only volume, or outside volumes with a read-only root file system,
// is refused with Docker's errors.
func (d *Daemon) ExtractToContainer(ctx context.Context, ref, p string, r io.Reader, opts ExtractOptions) error {
	e, c, running, err := d.lockFS(ref)
	if err != nil {
		return err
	}
	defer e.op.Unlock()
	v, err := d.openView(ctx, c, running)
	if err != nil {
		return err
	}
	defer v.Close()
	dir, err := v.extractionDir(p)
	if err != nil {
		return cpError(err, p, ref)
	}
	if m := mountAt(c.Mounts, dir); m != nil {
		if !m.RW {
			return fmt.Errorf("mounted volume is marked read-only: %w", errdefs.ErrInvalidArgument)
		}
	} else if c.HostConfig != nil && c.HostConfig.ReadonlyRootfs {
		return fmt.Errorf("container rootfs is marked read-only: %w", errdefs.ErrInvalidArgument)
	}
	xo := extractOpts{noOverwriteDirNonDir: opts.NoOverwriteDirNonDir}
	if !opts.CopyUIDGID {
		uid, gid, err := v.user(c.Config.User)
		if err != nil {
			return err
		}
		xo.owner = &[2]int{uid, gid}
	}
	if err := v.extract(ctx, dir, r, xo); err != nil {
		return cpError(err, p, ref)
	}
	d.publishContainer("extract-to-dir", c, nil)
	return nil
}

// extractOpts tune ctrView.extract.
type extractOpts struct {
	noOverwriteDirNonDir bool
	// owner, if set, replaces every entry's uid and gid.
	owner *[2]int
}

// ExportContainer writes the container's merged file system (its image
// and writable layer, without its volumes) to w as a tar, as docker export.
func (d *Daemon) ExportContainer(ctx context.Context, ref string, w io.Writer) error {
	e, c, running, err := d.lockFS(ref)
	if err != nil {
		return err
	}
	if running {
		// The export reads through a read-only mount of its own; a stop
		// meanwhile cannot disturb it.
		e.op.Unlock()
	} else {
		defer e.op.Unlock()
	}
	switch c.State.Status {
	case api.StateDead:
		//lint:ignore ST1005 Docker's wording
		return fmt.Errorf("You cannot export container %s which is Dead: %w", c.ID, errdefs.ErrConflict)
	case api.StateRemoving:
		//lint:ignore ST1005 Docker's wording
		return fmt.Errorf("You cannot export container %s which is being removed: %w", c.ID, errdefs.ErrConflict)
	}
	mounts, err := d.snap.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return fmt.Errorf("export container %s: %w", c.ID, err)
	}
	if err := d.imgs.Export(ctx, w, mounts); err != nil {
		return fmt.Errorf("export container %s: %w", c.ID, err)
	}
	d.publishContainer("export", c, nil)
	return nil
}

// CommitContainer makes an image of the container's changes on top of its
// image, as docker commit: the config is the container's (opts.Config's
// fields winning), then opts.Changes apply; a running container is paused
// during the diff when opts.Pause. It returns the image ID.
func (d *Daemon) CommitContainer(ctx context.Context, ref string, opts CommitContainerOptions) (string, error) {
	e, c, _, err := d.lockFS(ref)
	if err != nil {
		return "", err
	}
	defer e.op.Unlock()
	switch c.State.Status {
	case api.StateDead:
		//lint:ignore ST1005 Docker's wording
		return "", fmt.Errorf("You cannot commit container %s which is Dead: %w", c.ID, errdefs.ErrConflict)
	case api.StateRemoving:
		//lint:ignore ST1005 Docker's wording
		return "", fmt.Errorf("You cannot commit container %s which is being removed: %w", c.ID, errdefs.ErrConflict)
	}
	cfg := commitConfig(opts.Config, c.Config)
	e.mu.Lock()
	cl := e.shim
	pause := opts.Pause && cl != nil && e.c.State.Status == api.StateRunning
	e.mu.Unlock()
	if pause {
		if err := cl.Pause(ctx); err != nil {
			return "", fmt.Errorf("commit container %s: pause: %w", c.ID, err)
		}
		defer func() {
			if err := cl.Resume(context.WithoutCancel(ctx)); err != nil {
				log.G(ctx).Warn("resume container after commit", "container", c.ID, "error", err)
			}
		}()
	}
	id, err := d.imgs.Commit(ctx, image.CommitOptions{
		Snapshot:  c.SnapshotKey,
		Parent:    digest.Digest(c.Image),
		Config:    cfg,
		Changes:   opts.Changes,
		Author:    opts.Author,
		Comment:   opts.Comment,
		CreatedBy: strings.Join(c.Config.Cmd, " "),
		Ref:       opts.Reference,
	})
	if err != nil {
		return "", err
	}
	attrs := map[string]string{"comment": opts.Comment, "imageID": id.String()}
	if r, err := image.ParseReference(opts.Reference); err == nil && opts.Reference != "" {
		name := image.FamiliarString(r)
		attrs["imageRef"] = name
		d.publishImage("tag", id.String(), name, id)
	}
	d.publishContainer("commit", c, attrs)
	return id.String(), nil
}

// commitConfig returns the image config a commit records: user's fields,
// with those it leaves empty taken from the container's config ctr, merged
// as Docker merges them (env and labels by key, ports and volumes as sets,
// cmd and entrypoint together).
func commitConfig(user, ctr *api.Config) *ocispec.ImageConfig {
	if ctr == nil {
		ctr = &api.Config{}
	}
	u := api.Config{}
	if user != nil {
		u = *user
	}
	if u.User == "" {
		u.User = ctr.User
	}
	ports := map[string]struct{}{}
	for p := range u.ExposedPorts {
		ports[p.String()] = struct{}{}
	}
	for p := range ctr.ExposedPorts {
		ports[p.String()] = struct{}{}
	}
	env := slices.Clone(u.Env)
	for _, kv := range ctr.Env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := envValue(u.Env, k); !ok {
			env = append(env, kv)
		}
	}
	labels := map[string]string{}
	for k, v := range ctr.Labels {
		labels[k] = v
	}
	for k, v := range u.Labels {
		labels[k] = v
	}
	if len(u.Entrypoint) == 0 {
		if len(u.Cmd) == 0 {
			u.Cmd = ctr.Cmd
		}
		if u.Entrypoint == nil {
			u.Entrypoint = ctr.Entrypoint
		}
	}
	if u.WorkingDir == "" {
		u.WorkingDir = ctr.WorkingDir
	}
	volumes := map[string]struct{}{}
	for v := range ctr.Volumes {
		volumes[v] = struct{}{}
	}
	for v := range u.Volumes {
		volumes[v] = struct{}{}
	}
	if u.StopSignal == "" {
		u.StopSignal = ctr.StopSignal
	}
	out := &ocispec.ImageConfig{
		User:       u.User,
		Env:        env,
		Entrypoint: slices.Clone(u.Entrypoint),
		Cmd:        slices.Clone(u.Cmd),
		WorkingDir: u.WorkingDir,
		StopSignal: u.StopSignal,
	}
	if len(ports) > 0 {
		out.ExposedPorts = ports
	}
	if len(volumes) > 0 {
		out.Volumes = volumes
	}
	if len(labels) > 0 {
		out.Labels = labels
	}
	return out
}

// pruneFilters are the filters container prune accepts.
var pruneFilters = []string{"until", "label", "label!"}

// PruneContainers removes the containers that do not run (created,
// exited, dead) and match filters (until=<time>: created before it;
// label=k[=v], label!=k[=v]), as docker container prune. It reports their
// IDs and the size of their writable layers.
func (d *Daemon) PruneContainers(ctx context.Context, filters map[string][]string) (ContainerPruneReport, error) {
	var rep ContainerPruneReport
	for k := range filters {
		if !slices.Contains(pruneFilters, k) {
			return rep, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	var until time.Time
	switch vals := filters["until"]; len(vals) {
	case 0:
	case 1:
		t, err := image.ParseTimestamp(vals[0], time.Now())
		if err != nil {
			return rep, err
		}
		until = t
	default:
		return rep, fmt.Errorf("more than one until filter specified: %w", errdefs.ErrInvalidArgument)
	}
	for _, e := range d.ctrs.all() {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		e.mu.Lock()
		c := e.c.Clone()
		e.mu.Unlock()
		switch c.State.Status {
		case api.StateCreated, api.StateExited, api.StateDead:
		default:
			continue
		}
		if !until.IsZero() && c.Created.After(until) {
			continue
		}
		labels := c.Config.Labels
		if !allLabels(filters["label"], labels) || len(filters["label!"]) > 0 && allLabels(filters["label!"], labels) {
			continue
		}
		var size int64
		if u, err := d.snap.Usage(ctx, c.SnapshotKey); err == nil {
			size = u.Size
		}
		if err := d.RemoveContainer(ctx, c.ID, RemoveContainerOptions{}); err != nil {
			if !errdefs.IsNotFound(err) {
				log.G(ctx).Warn("prune container", "container", c.ID, "error", err)
			}
			continue
		}
		rep.Deleted = append(rep.Deleted, c.ID)
		if size > 0 {
			rep.SpaceReclaimed += uint64(size)
		}
	}
	d.publish(Event{Type: "container", Action: "prune", Attributes: map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)}})
	return rep, nil
}
