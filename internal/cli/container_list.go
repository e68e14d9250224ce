package cli

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// PsOptions are the options of berth ps.
type PsOptions struct {
	All     bool
	Quiet   bool
	Size    bool
	NoTrunc bool
	Latest  bool
	Last    int
	Format  string
	Filters []string
}

const defaultPsTable = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "Status": "STATUS", "State": "STATE", "Size": "SIZE",
	"Names": "NAMES", "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
	"LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Platform": "PLATFORM",
}

// Ps lists containers.
func (c *CLI) Ps(ctx context.Context, o PsOptions) error {
	o.Format = c.configFormat(o.Format, func(cf *configfile.ConfigFile) string { return cf.PsFormat })
	f := Formatter{Format: o.Format, DefaultTable: defaultPsTable, Headers: psHeaders,
		Quiet: o.Quiet, QuietTemplate: "{{.ID}}"}
	if o.Size && (o.Format == "" || o.Format == FormatTable) {
		f.DefaultTable += "\t{{.Size}}"
	}
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
	size := o.Size || strings.Contains(o.Format, ".Size")
	last := o.Last
	if o.Latest && last <= 0 {
		last = 1
	}
	res, err := cl.ContainerList(ctx, client.ContainerListOptions{All: o.All || last > 0, Size: size,
		Limit: last, Filters: filters})
	if err != nil {
		return c.daemonError(err)
	}
	rows := make([]any, 0, len(res.Items))
	for _, s := range res.Items {
		rows = append(rows, &ContainerRow{c: s, trunc: !o.NoTrunc})
	}
	return f.Write(c.Out, rows)
}

// ParseFilters turns --filter key=value flags into API filters.
func ParseFilters(args []string) (client.Filters, error) {
	f := client.Filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		f.Add(strings.ToLower(strings.TrimSpace(k)), v)
	}
	return f, nil
}

// ContainerRow is one container as ps templates see it.
type ContainerRow struct {
	c     container.Summary
	trunc bool
}

// MarshalJSON is what {{json .}} prints.
func (r *ContainerRow) MarshalJSON() ([]byte, error) { return rowJSON(r) }

// ID is the container ID, short unless --no-trunc.
func (r *ContainerRow) ID() string {
	if r.trunc {
		return shortID(r.c.ID)
	}
	return r.c.ID
}

// Names are the container's names without their slash.
func (r *ContainerRow) Names() string {
	var names []string
	for _, n := range r.c.Names {
		n = strings.TrimPrefix(n, "/")
		if r.trunc && strings.Contains(n, "/") {
			continue // a link alias
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// Image is the image the container was created from.
func (r *ContainerRow) Image() string {
	img := r.c.Image
	if img == "" {
		return "<no image>"
	}
	if r.trunc {
		if strings.HasPrefix(img, "sha256:") || shortID(img) == shortID(r.c.ImageID) {
			return shortID(img)
		}
		if name, _, ok := strings.Cut(img, "@"); ok && strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
			return name
		}
	}
	return img
}

// Command is the quoted command, cut to 20 characters unless --no-trunc.
func (r *ContainerRow) Command() string {
	cmd := r.c.Command
	if r.trunc {
		cmd = Ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

// CreatedAt is the creation time.
func (r *ContainerRow) CreatedAt() string { return time.Unix(r.c.Created, 0).String() }

// RunningFor is how long ago the container was created.
func (r *ContainerRow) RunningFor() string { return HumanSince(time.Unix(r.c.Created, 0)) }

// Ports are the published and exposed ports.
func (r *ContainerRow) Ports() string { return DisplayablePorts(r.c.Ports) }

// State is the container's state word (running, exited, ...).
func (r *ContainerRow) State() string { return string(r.c.State) }

// Status is the human status (Up 3 minutes, Exited (0) ...).
func (r *ContainerRow) Status() string { return r.c.Status }

// Size is the writable layer's size and the virtual size.
func (r *ContainerRow) Size() string {
	rw := units.HumanSizeWithPrecision(float64(r.c.SizeRw), 3)
	if r.c.SizeRootFs > 0 {
		return fmt.Sprintf("%s (virtual %s)", rw, units.HumanSizeWithPrecision(float64(r.c.SizeRootFs), 3))
	}
	return rw
}

// Platform is the platform of the container's image manifest, if known.
func (r *ContainerRow) Platform() any {
	if d := r.c.ImageManifestDescriptor; d != nil && d.Platform != nil {
		return d.Platform
	}
	return nil
}

// Labels are the labels as k=v joined by commas.
func (r *ContainerRow) Labels() string { return joinLabels(r.c.Labels) }

// Label is the value of one label.
func (r *ContainerRow) Label(name string) string { return r.c.Labels[name] }

// Mounts are the names (or sources) of the container's mounts.
func (r *ContainerRow) Mounts() string {
	var names []string
	for _, m := range r.c.Mounts {
		n := m.Name
		if n == "" {
			n = m.Source
		}
		if r.trunc {
			n = Ellipsis(n, 15)
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// LocalVolumes counts the mounts of local volumes.
func (r *ContainerRow) LocalVolumes() string {
	n := 0
	for _, m := range r.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

// Networks are the names of the networks the container is on.
func (r *ContainerRow) Networks() string {
	if r.c.NetworkSettings == nil {
		return ""
	}
	var names []string
	for n := range r.c.NetworkSettings.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func joinLabels(l map[string]string) string {
	var kv []string
	for k, v := range l {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// shortID is the first 12 hex digits of an ID, without any algorithm.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Ellipsis cuts s to max characters, ending it with "…" when cut.
func Ellipsis(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	if max <= 1 {
		return string(r[:max])
	}
	return string(r[:max-1]) + "…"
}

// HumanSince is "3 minutes ago" for t.
func HumanSince(t time.Time) string {
	return units.HumanDuration(time.Now().UTC().Sub(t)) + " ago"
}

// DisplayablePorts renders ports as docker ps does: consecutive private
// ports of the same address and protocol merge into ranges, and published
// ports read host->container.
func DisplayablePorts(ports []container.PortSummary) string {
	ps := append([]container.PortSummary(nil), ports...)
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.Less(b.IP)
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	type group struct{ first, last uint16 }
	groups := map[string]*group{}
	var keys, result, mappings []string
	for _, p := range ps {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				host := net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort)))
				mappings = append(mappings, fmt.Sprintf("%s->%d/%s", host, p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "|" + p.Type
		}
		g := groups[key]
		if g == nil {
			groups[key] = &group{p.PrivatePort, p.PrivatePort}
			keys = append(keys, key)
			continue
		}
		if p.PrivatePort == g.last+1 {
			g.last = p.PrivatePort
			continue
		}
		result = append(result, portGroup(key, g.first, g.last))
		groups[key] = &group{p.PrivatePort, p.PrivatePort}
	}
	for _, k := range keys {
		result = append(result, portGroup(k, groups[k].first, groups[k].last))
	}
	return strings.Join(append(result, mappings...), ", ")
}

func portGroup(key string, first, last uint16) string {
	ip, proto, ok := strings.Cut(key, "|")
	if !ok {
		ip, proto = "", key
	}
	g := strconv.Itoa(int(first))
	if first != last {
		g += "-" + strconv.Itoa(int(last))
	}
	if ip != "" {
		g = net.JoinHostPort(ip, g) + "->" + g
	}
	return g + "/" + proto
}
