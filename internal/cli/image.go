package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImagesOptions are the options of images / image ls.
type ImagesOptions struct {
	Reference string
	All       bool
	Quiet     bool
	Digests   bool
	NoTrunc   bool
	Format    string
	Filters   []string
}

var imageHeaders = map[string]string{
	"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST", "CreatedSince": "CREATED",
	"CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
	"UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
}

// Images lists images.
func (c *CLI) Images(ctx context.Context, o ImagesOptions) error {
	o.Format = c.configFormat(o.Format, func(cf *configfile.ConfigFile) string { return cf.ImagesFormat })
	table := "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	if o.Digests {
		table = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	f := Formatter{Format: o.Format, DefaultTable: table, Headers: imageHeaders, Quiet: o.Quiet, QuietTemplate: "{{.ID}}"}
	if err := f.ParseFormat(); err != nil {
		return err
	}
	filters, err := ParseFilters(o.Filters)
	if err != nil {
		return err
	}
	if o.Reference != "" {
		filters.Add("reference", o.Reference)
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ImageList(ctx, client.ImageListOptions{All: o.All, Filters: filters})
	if err != nil {
		return c.daemonError(err)
	}
	digests := o.Digests || strings.Contains(o.Format, ".Digest")
	var rows []any
	for _, img := range res.Items {
		for _, r := range imageRows(img, digests, !o.NoTrunc) {
			rows = append(rows, r)
		}
	}
	return f.Write(c.Out, rows)
}

// imageRows expands an image into one row per repository and tag (and
// digest, when shown), as docker images does.
func imageRows(img image.Summary, showDigests, trunc bool) []*ImageRow {
	tags := map[string][]string{}
	digests := map[string][]string{}
	for _, s := range img.RepoTags {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if nt, ok := ref.(reference.NamedTagged); ok {
			name := reference.FamiliarName(ref)
			tags[name] = append(tags[name], nt.Tag())
		}
	}
	for _, s := range img.RepoDigests {
		ref, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			continue
		}
		if cd, ok := ref.(reference.Canonical); ok {
			name := reference.FamiliarName(ref)
			digests[name] = append(digests[name], cd.Digest().String())
		}
	}
	var rows []*ImageRow
	add := func(repo, tag, dgst string) {
		rows = append(rows, &ImageRow{i: img, repo: repo, tag: tag, digest: dgst, trunc: trunc})
	}
	for repo, ts := range tags {
		ds := digests[repo]
		delete(digests, repo)
		if !showDigests {
			ds = nil
		}
		for _, t := range ts {
			if len(ds) == 0 {
				add(repo, t, "<none>")
			}
			for _, d := range ds {
				add(repo, t, d)
			}
		}
	}
	for repo, ds := range digests {
		if !showDigests {
			add(repo, "<none>", "<none>")
			continue
		}
		for _, d := range ds {
			add(repo, "<none>", d)
		}
	}
	if len(rows) == 0 {
		add("<none>", "<none>", "<none>")
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].repo != rows[j].repo {
			return rows[i].repo < rows[j].repo
		}
		if rows[i].tag != rows[j].tag {
			return rows[i].tag < rows[j].tag
		}
		return rows[i].digest < rows[j].digest
	})
	return rows
}

// ImageRow is one line of the image list as templates see it.
type ImageRow struct {
	i                 image.Summary
	repo, tag, digest string
	trunc             bool
}

// MarshalJSON is what {{json .}} prints.
func (r *ImageRow) MarshalJSON() ([]byte, error) { return rowJSON(r) }

// ID is the image ID, short unless --no-trunc.
func (r *ImageRow) ID() string {
	if r.trunc {
		return shortID(r.i.ID)
	}
	return r.i.ID
}

// Repository is the repository name, or <none>.
func (r *ImageRow) Repository() string { return r.repo }

// Tag is the tag, or <none>.
func (r *ImageRow) Tag() string { return r.tag }

// Digest is the repository digest, or <none>.
func (r *ImageRow) Digest() string { return r.digest }

// CreatedSince is how long ago the image was created.
func (r *ImageRow) CreatedSince() string {
	if r.i.Created == 0 {
		return "N/A"
	}
	return HumanSince(time.Unix(r.i.Created, 0))
}

// CreatedAt is the creation time.
func (r *ImageRow) CreatedAt() string {
	if r.i.Created == 0 {
		return ""
	}
	return time.Unix(r.i.Created, 0).String()
}

// Size is the image's size.
func (r *ImageRow) Size() string { return units.HumanSizeWithPrecision(float64(r.i.Size), 3) }

// VirtualSize is the image's size (a legacy name).
func (r *ImageRow) VirtualSize() string { return units.HumanSize(float64(r.i.Size)) }

// Containers counts the containers using the image.
func (r *ImageRow) Containers() string {
	if r.i.Containers == -1 {
		return "N/A"
	}
	return strconv.FormatInt(r.i.Containers, 10)
}

// SharedSize is the size shared with other images.
func (r *ImageRow) SharedSize() string {
	if r.i.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSizeWithPrecision(float64(r.i.SharedSize), 3)
}

// UniqueSize is the size only this image uses.
func (r *ImageRow) UniqueSize() string {
	if r.i.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSizeWithPrecision(float64(r.i.Size-r.i.SharedSize), 3)
}

// PushOptions are the options of push.
type PushOptions struct {
	Ref      string
	AllTags  bool
	Quiet    bool
	Platform string
}

// Push uploads an image to its registry with progress.
func (c *CLI) Push(ctx context.Context, o PushOptions) error {
	named, err := parseRef(o.Ref)
	if err != nil {
		return err
	}
	if o.AllTags {
		if _, tagged := named.(reference.NamedTagged); tagged {
			return fmt.Errorf("tag can't be used with --all-tags/-a")
		}
	} else {
		named = reference.TagNameOnly(named)
	}
	auth, err := c.registryAuth(named.String())
	if err != nil {
		return err
	}
	po := client.ImagePushOptions{All: o.AllTags, RegistryAuth: auth, PrivilegeFunc: privilegeFunc(reference.Domain(named))}
	if o.Platform != "" {
		p, err := ParsePlatform(o.Platform)
		if err != nil {
			return err
		}
		po.Platform = &p
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	resp, err := cl.ImagePush(ctx, named.String(), po)
	if err != nil {
		return c.daemonError(err)
	}
	defer resp.Close()
	var out io.Writer = c.Out
	if o.Quiet {
		out = io.Discard
	}
	if err := c.displayProgress(resp, out, c.Out.IsTerminal() && !o.Quiet); err != nil {
		return err
	}
	if o.Quiet {
		fmt.Fprintln(c.Out, named.String())
	}
	return nil
}

// Tag gives an image a new name.
func (c *CLI) Tag(ctx context.Context, source, target string) error {
	if _, err := parseRef(target); err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	_, err = cl.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target})
	return c.daemonError(err)
}

// RmiOptions are the options of rmi / image rm.
type RmiOptions struct {
	Force, NoPrune bool
	Platforms      []string
	Images         []string
}

// Rmi removes images, printing what was untagged and deleted.
func (c *CLI) Rmi(ctx context.Context, o RmiOptions) error {
	var platforms []ocispec.Platform
	for _, s := range o.Platforms {
		p, err := ParsePlatform(s)
		if err != nil {
			return err
		}
		platforms = append(platforms, p)
	}
	return c.forEach(ctx, o.Images, false, func(ctx context.Context, cl *client.Client, img string) error {
		res, err := cl.ImageRemove(ctx, img, client.ImageRemoveOptions{Force: o.Force, PruneChildren: !o.NoPrune, Platforms: platforms})
		if err != nil {
			return err
		}
		for _, d := range res.Items {
			if d.Deleted != "" {
				fmt.Fprintf(c.Out, "Deleted: %s\n", d.Deleted)
			} else {
				fmt.Fprintf(c.Out, "Untagged: %s\n", d.Untagged)
			}
		}
		return nil
	})
}

// SaveOptions are the options of save.
type SaveOptions struct {
	Images    []string
	Output    string
	Platforms []string
}

// Save writes images to a tar archive.
func (c *CLI) Save(ctx context.Context, o SaveOptions) error {
	if o.Output == "" && c.Out.IsTerminal() {
		return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	var opts []client.ImageSaveOption
	for _, s := range o.Platforms {
		p, err := ParsePlatform(s)
		if err != nil {
			return err
		}
		opts = append(opts, client.ImageSaveWithPlatforms(p))
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	rc, err := cl.ImageSave(ctx, o.Images, opts...)
	if err != nil {
		return c.daemonError(err)
	}
	defer rc.Close()
	return c.writeOutput(rc, o.Output, "save")
}

// LoadOptions are the options of load.
type LoadOptions struct {
	Input     string
	Quiet     bool
	Platforms []string
}

// Load reads images from a tar archive (a file or stdin).
func (c *CLI) Load(ctx context.Context, o LoadOptions) error {
	var in io.Reader = c.In
	if o.Input != "" {
		f, err := os.Open(o.Input)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else if c.In.IsTerminal() {
		return errors.New("requested load from stdin, but stdin is empty")
	}
	opts := []client.ImageLoadOption{client.ImageLoadWithQuiet(o.Quiet || !c.Out.IsTerminal())}
	for _, s := range o.Platforms {
		p, err := ParsePlatform(s)
		if err != nil {
			return err
		}
		opts = append(opts, client.ImageLoadWithPlatforms(p))
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	rc, err := cl.ImageLoad(ctx, in, opts...)
	if err != nil {
		return c.daemonError(err)
	}
	defer rc.Close()
	return c.displayProgress(rc, c.Out, c.Out.IsTerminal())
}

// ImportOptions are the options of import.
type ImportOptions struct {
	Source    string // a file, a URL, or "-" for stdin
	Reference string
	Changes   []string
	Message   string
	Platform  string
}

// Import makes an image from a filesystem tarball and prints its ID.
func (c *CLI) Import(ctx context.Context, o ImportOptions) error {
	src := client.ImageImportSource{SourceName: o.Source}
	switch {
	case o.Source == "-":
		src.Source = c.In
	case strings.HasPrefix(o.Source, "http://") || strings.HasPrefix(o.Source, "https://"):
	default:
		f, err := os.Open(o.Source)
		if err != nil {
			return err
		}
		defer f.Close()
		src = client.ImageImportSource{SourceName: "-", Source: f}
	}
	if o.Reference != "" {
		if _, err := parseRef(o.Reference); err != nil {
			return err
		}
	}
	iopts := client.ImageImportOptions{Message: o.Message, Changes: o.Changes}
	if o.Platform != "" {
		p, err := ParsePlatform(o.Platform)
		if err != nil {
			return err
		}
		iopts.Platform = p
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	rc, err := cl.ImageImport(ctx, src, o.Reference, iopts)
	if err != nil {
		return c.daemonError(err)
	}
	defer rc.Close()
	return c.displayProgress(rc, c.Out, c.Out.IsTerminal())
}

// HistoryOptions are the options of history.
type HistoryOptions struct {
	Image                 string
	Human, Quiet, NoTrunc bool
	Format, Platform      string
}

var historyHeaders = map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}

// History prints an image's layers.
func (c *CLI) History(ctx context.Context, o HistoryOptions) error {
	f := Formatter{Format: o.Format, DefaultTable: "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
		Headers: historyHeaders, Quiet: o.Quiet, QuietTemplate: "{{.ID}}"}
	if err := f.ParseFormat(); err != nil {
		return err
	}
	var opts []client.ImageHistoryOption
	if o.Platform != "" {
		p, err := ParsePlatform(o.Platform)
		if err != nil {
			return err
		}
		opts = append(opts, client.ImageHistoryWithPlatform(p))
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ImageHistory(ctx, o.Image, opts...)
	if err != nil {
		return c.daemonError(err)
	}
	rows := make([]any, 0, len(res.Items))
	for _, h := range res.Items {
		rows = append(rows, &HistoryRow{h: h, human: o.Human, trunc: !o.NoTrunc})
	}
	return f.Write(c.Out, rows)
}

// HistoryRow is one layer as history templates see it.
type HistoryRow struct {
	h            image.HistoryResponseItem
	human, trunc bool
}

// MarshalJSON is what {{json .}} prints.
func (r *HistoryRow) MarshalJSON() ([]byte, error) { return rowJSON(r) }

// ID is the layer's image ID or <missing>.
func (r *HistoryRow) ID() string {
	if r.trunc && r.h.ID != "<missing>" {
		return shortID(r.h.ID)
	}
	return r.h.ID
}

// CreatedSince is when the layer was made, human or RFC 3339.
func (r *HistoryRow) CreatedSince() string {
	if !r.human {
		return r.CreatedAt()
	}
	return HumanSince(time.Unix(r.h.Created, 0))
}

// CreatedAt is the creation time in RFC 3339.
func (r *HistoryRow) CreatedAt() string { return time.Unix(r.h.Created, 0).Format(time.RFC3339) }

// CreatedBy is the command that made the layer.
func (r *HistoryRow) CreatedBy() string {
	s := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		return Ellipsis(s, 45)
	}
	return s
}

// Size is the layer's size.
func (r *HistoryRow) Size() string {
	if r.human {
		return units.HumanSizeWithPrecision(float64(r.h.Size), 3)
	}
	return strconv.FormatInt(r.h.Size, 10)
}

// Comment is the layer's comment.
func (r *HistoryRow) Comment() string { return r.h.Comment }
