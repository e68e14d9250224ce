package daemon

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/registry"
)

// PullOptions tune PullImage.
type PullOptions struct {
	Platform *ocispec.Platform
	// Auth, if set, are the credentials the client sent; without them
	// the pull is anonymous.
	Auth     *registry.AuthConfig
	Progress image.ProgressFunc
}

// withAuth returns ctx carrying a (anonymous when nil): the daemon never
// uses credentials a client did not send.
func withAuth(ctx context.Context, a *registry.AuthConfig) context.Context {
	if a == nil {
		return registry.WithAuth(ctx, registry.AuthConfig{})
	}
	return registry.WithAuth(ctx, *a)
}

// PullImage pulls name (tag "latest" when it has none) and publishes a
// pull event.
func (d *Daemon) PullImage(ctx context.Context, name string, opts PullOptions) (image.PullResult, error) {
	ref, err := image.ParseReference(name)
	if err != nil {
		return image.PullResult{}, err
	}
	svc := d.imgs
	res, err := svc.Pull(withAuth(ctx, opts.Auth), ref.String(), image.PullOptions{Platform: opts.Platform, Progress: opts.Progress})
	if err != nil {
		return res, err
	}
	fam := image.FamiliarString(ref)
	d.publishImage("pull", fam, fam, res.Image.ID)
	return res, nil
}

// PushImage pushes name (a tag, or a repository for all its tags) and
// publishes a push event for each tag pushed.
func (d *Daemon) PushImage(ctx context.Context, name string, auth *registry.AuthConfig, progress image.ProgressFunc) ([]image.PushResult, error) {
	svc := d.imgs
	res, err := svc.Push(withAuth(ctx, auth), name, image.PushOptions{Progress: progress})
	for _, r := range res {
		ref := stripTag(familiar(name)) + ":" + r.Tag
		d.publish(Event{Type: "image", Action: "push", ID: ref, Attributes: map[string]string{"name": ref}})
	}
	return res, err
}

// familiar returns the familiar form of name, or name if it does not parse.
func familiar(name string) string {
	ref, err := image.ParseReference(name)
	if err != nil {
		return name
	}
	s := image.FamiliarString(ref)
	if !strings.Contains(name, ":") || strings.LastIndex(name, ":") < strings.LastIndex(name, "/") {
		return stripTag(s)
	}
	return s
}

// TagImage points target at the image source names and publishes a tag
// event.
func (d *Daemon) TagImage(ctx context.Context, source, target string) error {
	svc := d.imgs
	if err := svc.Tag(ctx, source, target); err != nil {
		return err
	}
	img, err := svc.Resolve(ctx, target)
	if err != nil {
		return err
	}
	ref, _ := image.ParseReference(target)
	d.publishImage("tag", img.ID.String(), image.FamiliarString(ref), img.ID)
	return nil
}

// RemoveImage untags and deletes images as docker rmi does and publishes
// an untag event for each name removed and a delete event for each image.
func (d *Daemon) RemoveImage(ctx context.Context, name string, opts image.RemoveOptions) ([]image.Removed, error) {
	svc := d.imgs
	var id digest.Digest
	if img, err := svc.Resolve(ctx, name); err == nil {
		id = img.ID
	}
	out, err := svc.Remove(ctx, name, opts)
	d.publishRemoved(id, out)
	return out, err
}

func (d *Daemon) publishRemoved(id digest.Digest, out []image.Removed) {
	for _, r := range out {
		switch {
		case r.Untagged != "":
			d.publishImage("untag", id.String(), r.Untagged, id)
		case r.Deleted != "":
			id = digest.Digest(r.Deleted)
			d.publishImage("delete", r.Deleted, r.Deleted, id)
		}
	}
}

// PruneImages removes unused images (dangling only unless opts.All) and
// publishes their untag and delete events and a prune event.
func (d *Daemon) PruneImages(ctx context.Context, opts image.PruneOptions) (image.PruneReport, error) {
	svc := d.imgs
	rep, err := svc.Prune(ctx, opts)
	d.publishPruned(rep.Removed)
	if err == nil {
		d.publish(Event{Type: "image", Action: "prune", Attributes: map[string]string{"reclaimed": strconv.FormatInt(rep.SpaceReclaimed, 10)}})
	}
	return rep, err
}

// publishPruned publishes the events of a prune report, whose untagged
// names come before the ID of the image they belonged to.
func (d *Daemon) publishPruned(removed []image.Removed) {
	var pending []string
	for _, r := range removed {
		if r.Untagged != "" {
			pending = append(pending, r.Untagged)
			continue
		}
		id := digest.Digest(r.Deleted)
		for _, n := range pending {
			d.publishImage("untag", r.Deleted, n, id)
		}
		pending = nil
		d.publishImage("delete", r.Deleted, r.Deleted, id)
	}
}

// ListImages lists images matching filters (dangling, label, before,
// since, reference, until); all includes the intermediate images of
// builds.
func (d *Daemon) ListImages(ctx context.Context, filters map[string][]string, all bool) ([]image.Summary, error) {
	svc := d.imgs
	return svc.List(ctx, image.ListOptions{Filters: filters, HideIntermediate: !all})
}

// InspectImage returns what docker image inspect shows about name.
func (d *Daemon) InspectImage(ctx context.Context, name string) (image.Details, error) {
	svc := d.imgs
	return svc.Inspect(ctx, name)
}

// ImageHistory returns the history of name, newest first.
func (d *Daemon) ImageHistory(ctx context.Context, name string) ([]image.HistoryEntry, error) {
	svc := d.imgs
	return svc.History(ctx, name)
}

// ImageDiskUsage returns the disk used by images.
func (d *Daemon) ImageDiskUsage(ctx context.Context) (image.Usage, error) {
	svc := d.imgs
	return svc.DiskUsage(ctx)
}

// ImageCount returns the number of images.
func (d *Daemon) ImageCount() (int, error) {
	n := 0
	err := d.db.View(func(tx *metadata.Tx) error {
		imgs, err := tx.Images()
		n = len(imgs)
		return err
	})
	return n, err
}

// LayerDirs returns the directories of the storage driver that hold img's
// layers, the way Docker's GraphDriver.Data names them: for overlay,
// UpperDir is the top layer and LowerDir the others, top first, joined by
// ":". An image without layers has none.
func (d *Daemon) LayerDirs(ctx context.Context, img metadata.Image) (map[string]string, error) {
	svc := d.imgs
	key, err := svc.SnapshotKey(ctx, img)
	if err != nil || key == "" {
		return nil, err
	}
	mounts, err := d.snap.Mounts(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("layer dirs of %s: %w", img.ID, err)
	}
	var dirs []string
	for _, m := range mounts {
		switch m.Type {
		case "overlay":
			for _, o := range m.Options {
				if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
					dirs = append(dirs, strings.Split(v, ":")...)
				}
			}
		default:
			dirs = append(dirs, m.Source)
		}
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	out := map[string]string{"UpperDir": dirs[0]}
	if len(dirs) > 1 {
		out["LowerDir"] = strings.Join(dirs[1:], ":")
	}
	return out, nil
}

// Login checks the credentials against server ("" for Docker Hub) and
// returns the identity token the registry issued, if any.
func (d *Daemon) Login(ctx context.Context, server, user, password string) (string, error) {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	reg := registry.New(registry.Options{Insecure: cfg.InsecureRegistries, Mirrors: cfg.RegistryMirrors})
	return reg.Login(ctx, server, user, password)
}

// SaveImages writes the images names refer to as one archive to w and
// publishes a save event for each name.
func (d *Daemon) SaveImages(ctx context.Context, w io.Writer, names []string) error {
	svc := d.imgs
	if err := svc.Save(ctx, w, names); err != nil {
		return err
	}
	for _, n := range names {
		id := n
		if img, err := svc.Resolve(ctx, n); err == nil {
			id = img.ID.String()
		}
		d.publish(Event{Type: "image", Action: "save", ID: id, Attributes: map[string]string{"name": n}})
	}
	return nil
}

// LoadImages adds the images of the archive r and publishes a load event
// for each.
func (d *Daemon) LoadImages(ctx context.Context, r io.Reader, progress image.ProgressFunc) ([]image.LoadedImage, error) {
	svc := d.imgs
	loaded, err := svc.Load(ctx, r, progress)
	for _, li := range loaded {
		name := li.ID.String()
		if len(li.Names) > 0 {
			name = li.Names[0]
		}
		d.publishImage("load", li.ID.String(), name, li.ID)
	}
	return loaded, err
}

// ImportImage makes an image of the rootfs tarball r and publishes an
// import event.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader, opts image.ImportOptions) (digest.Digest, error) {
	svc := d.imgs
	id, err := svc.Import(ctx, r, opts)
	if err != nil {
		return "", err
	}
	name := id.String()
	if opts.Ref != "" {
		name = familiar(opts.Ref)
	}
	d.publishImage("import", id.String(), name, id)
	return id, nil
}

// publishImage publishes an image event about the object id whose name
// attribute is name; the image's labels join the attributes, as Docker's do.
func (d *Daemon) publishImage(action, id, name string, img digest.Digest) {
	attrs := map[string]string{"name": name}
	if img != "" {
		svc := d.imgs
		if rec, err := svc.Resolve(context.Background(), img.String()); err == nil {
			if c, err := svc.ConfigOf(context.Background(), rec); err == nil {
				for k, v := range c.Config.Labels {
					if _, taken := attrs[k]; !taken {
						attrs[k] = v
					}
				}
			}
		}
	}
	d.publish(Event{Type: "image", Action: action, ID: id, Attributes: attrs})
}

func (d *Daemon) publish(ev Event) { d.events.Publish(ev) }
