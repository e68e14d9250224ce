package cli

import (
	"context"
	"fmt"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }

// VolumeCreateOptions are the options of volume create.
type VolumeCreateOptions struct {
	Name    string
	Driver  string
	Options []string
	Labels  []string
}

// VolumeCreate creates a volume and prints its name.
func (c *CLI) VolumeCreate(ctx context.Context, o VolumeCreateOptions) error {
	opts, err := kvMap(o.Options, "opt")
	if err != nil {
		return err
	}
	labels, err := kvMap(o.Labels, "label")
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.VolumeCreate(ctx, client.VolumeCreateOptions{Name: o.Name, Driver: o.Driver, DriverOpts: opts, Labels: labels})
	if err != nil {
		return c.daemonError(err)
	}
	fmt.Fprintln(c.Out, res.Volume.Name)
	return nil
}

// VolumeLsOptions are the options of volume ls.
type VolumeLsOptions struct {
	Quiet   bool
	Format  string
	Filters []string
}

var volumeHeaders = map[string]string{"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
	"Labels": "LABELS", "Label": "LABEL", "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY", "Group": "GROUP", "Status": "STATUS"}

// VolumeRow is one volume as templates see it.
type VolumeRow struct{ v volume.Volume }

// MarshalJSON is what {{json .}} prints.
func (r *VolumeRow) MarshalJSON() ([]byte, error) { return rowJSON(r) }

// Name is the volume's name.
func (r *VolumeRow) Name() string { return r.v.Name }

// Driver is the volume's driver.
func (r *VolumeRow) Driver() string { return r.v.Driver }

// Scope is the volume's scope.
func (r *VolumeRow) Scope() string { return r.v.Scope }

// Mountpoint is where the volume lives on the host.
func (r *VolumeRow) Mountpoint() string { return r.v.Mountpoint }

// Labels are the volume's labels.
func (r *VolumeRow) Labels() string { return joinLabels(r.v.Labels) }

// Label is one label's value.
func (r *VolumeRow) Label(name string) string { return r.v.Labels[name] }

// Links counts the containers using the volume, N/A when unknown.
func (r *VolumeRow) Links() string {
	if r.v.UsageData == nil {
		return "N/A"
	}
	return strconv.FormatInt(r.v.UsageData.RefCount, 10)
}

// Size is the volume's size, N/A when unknown.
func (r *VolumeRow) Size() string {
	if r.v.UsageData == nil || r.v.UsageData.Size < 0 {
		return "N/A"
	}
	return units.HumanSize(float64(r.v.UsageData.Size))
}

// Availability is a cluster volume's availability ("N/A" here).
func (r *VolumeRow) Availability() string { return "N/A" }

// Group is a cluster volume's group ("N/A" here).
func (r *VolumeRow) Group() string { return "N/A" }

// Status is a cluster volume's status ("N/A" here).
func (r *VolumeRow) Status() string { return "N/A" }

// VolumeLs lists volumes.
func (c *CLI) VolumeLs(ctx context.Context, o VolumeLsOptions) error {
	o.Format = c.configFormat(o.Format, func(cf *configfile.ConfigFile) string { return cf.VolumesFormat })
	f := Formatter{Format: o.Format, DefaultTable: "{{.Driver}}\t{{.Name}}", Headers: volumeHeaders, Quiet: o.Quiet, QuietTemplate: "{{.Name}}"}
	if err := f.ParseFormat(); err != nil {
		return err
	}
	filters, err := ParseFilters(o.Filters)
	if err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.VolumeList(ctx, client.VolumeListOptions{Filters: filters})
	if err != nil {
		return c.daemonError(err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(c.Err, w)
	}
	vols := append([]volume.Volume(nil), res.Items...)
	for i := 1; i < len(vols); i++ {
		for j := i; j > 0 && vols[j].Name < vols[j-1].Name; j-- {
			vols[j], vols[j-1] = vols[j-1], vols[j]
		}
	}
	rows := make([]any, 0, len(vols))
	for _, v := range vols {
		rows = append(rows, &VolumeRow{v: v})
	}
	return f.Write(c.Out, rows)
}

// VolumeRm removes volumes.
func (c *CLI) VolumeRm(ctx context.Context, names []string, force bool) error {
	return c.forEach(ctx, names, true, func(ctx context.Context, cl *client.Client, n string) error {
		_, err := cl.VolumeRemove(ctx, n, client.VolumeRemoveOptions{Force: force})
		return err
	})
}
