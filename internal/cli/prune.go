package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
)

// PruneOptions are the options of the prune commands.
type PruneOptions struct {
	Force   bool
	All     bool
	Volumes bool
	Filters []string
}

// pruneReport is what a prune removed: titled sections of lines and the
// space it freed.
type pruneReport struct {
	sections []pruneSection
	space    uint64
	counted  bool // the kind reports space (networks do not)
}

type pruneSection struct {
	title string
	lines []string
}

func (r *pruneReport) add(title string, lines []string) {
	if len(lines) > 0 {
		r.sections = append(r.sections, pruneSection{title, lines})
	}
}

func (r *pruneReport) merge(o pruneReport) {
	r.sections = append(r.sections, o.sections...)
	r.space += o.space
	r.counted = r.counted || o.counted
}

// print writes the report as docker does: each section, a blank line
// after it, then the space reclaimed.
func (r pruneReport) print(w io.Writer) {
	for _, s := range r.sections {
		fmt.Fprintf(w, "%s\n", s.title)
		for _, l := range s.lines {
			fmt.Fprintln(w, l)
		}
		if r.counted {
			fmt.Fprintln(w)
		}
	}
	if r.counted {
		fmt.Fprintf(w, "Total reclaimed space: %s\n", units.HumanSize(float64(r.space)))
	}
}

// prune asks for confirmation unless forced, runs fn and prints its
// report.
func (c *CLI) prune(ctx context.Context, o PruneOptions, warning string, fn func(context.Context, *client.Client, client.Filters) (pruneReport, error)) error {
	f, err := ParseFilters(o.Filters)
	if err != nil {
		return err
	}
	if !o.Force && !c.confirm(ctx, warning) {
		return nil
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	r, err := fn(ctx, cl, f)
	if err != nil {
		return c.daemonError(err)
	}
	r.print(c.Out)
	return nil
}

func pruneContainers(ctx context.Context, cl *client.Client, f client.Filters) (pruneReport, error) {
	res, err := cl.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: f})
	r := pruneReport{space: res.Report.SpaceReclaimed, counted: true}
	r.add("Deleted Containers:", res.Report.ContainersDeleted)
	return r, err
}

func pruneNetworks(ctx context.Context, cl *client.Client, f client.Filters) (pruneReport, error) {
	res, err := cl.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: f})
	var r pruneReport
	r.add("Deleted Networks:", res.Report.NetworksDeleted)
	return r, err
}

func pruneVolumes(all bool) func(context.Context, *client.Client, client.Filters) (pruneReport, error) {
	return func(ctx context.Context, cl *client.Client, f client.Filters) (pruneReport, error) {
		res, err := cl.VolumePrune(ctx, client.VolumePruneOptions{All: all, Filters: f})
		r := pruneReport{space: res.Report.SpaceReclaimed, counted: true}
		r.add("Deleted Volumes:", res.Report.VolumesDeleted)
		return r, err
	}
}

func pruneImages(all bool) func(context.Context, *client.Client, client.Filters) (pruneReport, error) {
	return func(ctx context.Context, cl *client.Client, f client.Filters) (pruneReport, error) {
		if all {
			f = cloneFilters(f).Add("dangling", "false")
		}
		res, err := cl.ImagePrune(ctx, client.ImagePruneOptions{Filters: f})
		r := pruneReport{space: res.Report.SpaceReclaimed, counted: true}
		var lines []string
		for _, d := range res.Report.ImagesDeleted {
			if d.Untagged != "" {
				lines = append(lines, "untagged: "+d.Untagged)
			} else {
				lines = append(lines, "deleted: "+d.Deleted)
			}
		}
		r.add("Deleted Images:", lines)
		return r, err
	}
}

// pruneBuildCache drops the build cache (the filters do not apply to it).
func pruneBuildCache(ctx context.Context, cl *client.Client, _ client.Filters) (pruneReport, error) {
	res, err := cl.BuildCachePrune(ctx, client.BuildCachePruneOptions{})
	r := pruneReport{space: res.Report.SpaceReclaimed, counted: true}
	r.add("Deleted build cache objects:", res.Report.CachesDeleted)
	return r, err
}

func cloneFilters(f client.Filters) client.Filters {
	out := client.Filters{}
	for k, vs := range f {
		for v := range vs {
			out.Add(k, v)
		}
	}
	return out
}

// ContainerPrune removes stopped containers.
func (c *CLI) ContainerPrune(ctx context.Context, o PruneOptions) error {
	return c.prune(ctx, o, "WARNING! This will remove all stopped containers.", pruneContainers)
}

// NetworkPrune removes networks no container uses.
func (c *CLI) NetworkPrune(ctx context.Context, o PruneOptions) error {
	return c.prune(ctx, o, "WARNING! This will remove all custom networks not used by at least one container.", pruneNetworks)
}

// VolumePrune removes unused anonymous (or, with -a, all unused) volumes.
func (c *CLI) VolumePrune(ctx context.Context, o PruneOptions) error {
	msg := "WARNING! This will remove anonymous local volumes not used by at least one container."
	if o.All {
		msg = "WARNING! This will remove all local volumes not used by at least one container."
	}
	return c.prune(ctx, o, msg, pruneVolumes(o.All))
}

// ImagePrune removes dangling (or, with -a, all unused) images.
func (c *CLI) ImagePrune(ctx context.Context, o PruneOptions) error {
	msg := "WARNING! This will remove all dangling images."
	if o.All {
		msg = "WARNING! This will remove all images without at least one container associated to them."
	}
	return c.prune(ctx, o, msg, pruneImages(o.All))
}

// SystemPrune removes stopped containers, unused networks, dangling (or
// all unused) images, the build cache and, with --volumes, unused
// anonymous volumes, and prints one report.
func (c *CLI) SystemPrune(ctx context.Context, o PruneOptions) error {
	msg := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n"
	if o.Volumes {
		msg += "  - all anonymous volumes not used by at least one container\n"
	}
	if o.All {
		msg += "  - all images without at least one container associated to them\n"
	} else {
		msg += "  - all dangling images\n"
	}
	msg += "  - unused build cache\n"
	steps := []func(context.Context, *client.Client, client.Filters) (pruneReport, error){pruneContainers, pruneNetworks}
	if o.Volumes {
		steps = append(steps, pruneVolumes(false))
	}
	steps = append(steps, pruneImages(o.All), pruneBuildCache)
	return c.prune(ctx, o, msg, func(ctx context.Context, cl *client.Client, f client.Filters) (pruneReport, error) {
		total := pruneReport{counted: true}
		for _, step := range steps {
			r, err := step(ctx, cl, f)
			if err != nil {
				return total, err
			}
			total.merge(r)
		}
		return total, nil
	})
}
