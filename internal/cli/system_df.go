package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
)

// DfOptions are the options of system df.
type DfOptions struct {
	Format  string
	Verbose bool
}

var dfHeaders = map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}

// DfRow is one kind of object in system df.
type DfRow struct {
	kind                      string
	total, active, size, recl int64
}

// MarshalJSON is what {{json .}} prints.
func (r *DfRow) MarshalJSON() ([]byte, error) { return rowJSON(r) }

// Type is the kind of object.
func (r *DfRow) Type() string { return r.kind }

// TotalCount is the number of objects.
func (r *DfRow) TotalCount() string { return strconv.FormatInt(r.total, 10) }

// Active is the number of objects in use.
func (r *DfRow) Active() string { return strconv.FormatInt(r.active, 10) }

// Size is the space they take.
func (r *DfRow) Size() string { return units.HumanSize(float64(r.size)) }

// Reclaimable is the space a prune would free.
func (r *DfRow) Reclaimable() string {
	s := units.HumanSize(float64(r.recl))
	if r.size > 0 {
		s += fmt.Sprintf(" (%d%%)", r.recl*100/r.size)
	}
	return s
}

// Df prints disk usage by kind of object.
func (c *CLI) Df(ctx context.Context, o DfOptions) error {
	f := Formatter{Format: o.Format, DefaultTable: "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", Headers: dfHeaders}
	if err := f.ParseFormat(); err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	du, err := cl.DiskUsage(ctx, client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: o.Verbose})
	if err != nil {
		return c.daemonError(err)
	}
	rows := []any{
		&DfRow{"Images", du.Images.TotalCount, du.Images.ActiveCount, du.Images.TotalSize, du.Images.Reclaimable},
		&DfRow{"Containers", du.Containers.TotalCount, du.Containers.ActiveCount, du.Containers.TotalSize, du.Containers.Reclaimable},
		&DfRow{"Local Volumes", du.Volumes.TotalCount, du.Volumes.ActiveCount, du.Volumes.TotalSize, du.Volumes.Reclaimable},
		&DfRow{"Build Cache", du.BuildCache.TotalCount, du.BuildCache.ActiveCount, du.BuildCache.TotalSize, du.BuildCache.Reclaimable},
	}
	if err := f.Write(c.Out, rows); err != nil {
		return err
	}
	if !o.Verbose {
		return nil
	}
	fmt.Fprintln(c.Out, "\nImages space usage:")
	var imgs []any
	for _, img := range du.Images.Items {
		for _, r := range imageRows(img, false, true) {
			imgs = append(imgs, r)
		}
	}
	if err := (Formatter{DefaultTable: "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}", Headers: imageHeaders}).Write(c.Out, imgs); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, "\nContainers space usage:")
	var ctrs []any
	for _, s := range du.Containers.Items {
		ctrs = append(ctrs, &ContainerRow{c: s, trunc: true})
	}
	if err := (Formatter{DefaultTable: "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}", Headers: psHeaders}).Write(c.Out, ctrs); err != nil {
		return err
	}
	fmt.Fprintln(c.Out, "\nLocal Volumes space usage:")
	var vols []any
	for _, v := range du.Volumes.Items {
		vols = append(vols, &VolumeRow{v: v})
	}
	return (Formatter{DefaultTable: "{{.Name}}\t{{.Links}}\t{{.Size}}", Headers: volumeHeaders}).Write(c.Out, vols)
}
