package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// InspectOptions are the options of inspect and the inspect subcommands.
type InspectOptions struct {
	Format   string
	Size     bool
	Type     string // container, image, network, volume, or "" for any
	Verbose  bool   // network inspect -v
	Platform string // image inspect --platform
	Names    []string
}

// Inspect prints low-level information on objects of any type (or of
// o.Type), as JSON or through a template.
func (c *CLI) Inspect(ctx context.Context, o InspectOptions) error {
	switch o.Type {
	case "", "container", "image", "network", "volume":
	default:
		return fmt.Errorf("%q is not a valid value for --type", o.Type)
	}
	if err := checkInspectFormat(o.Format); err != nil {
		return err
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	var objs []any
	var raws [][]byte
	var failed bool
	for _, name := range o.Names {
		obj, raw, err := c.inspectOne(ctx, cl, o, name)
		if err != nil {
			err = c.daemonError(err)
			var ce *connError
			if errors.As(err, &ce) {
				return err
			}
			fmt.Fprintln(c.Err, err)
			failed = true
			continue
		}
		objs, raws = append(objs, obj), append(raws, raw)
	}
	if err := WriteInspect(c.Out, o.Format, objs, raws); err != nil {
		return err
	}
	if failed {
		return &StatusError{StatusCode: 1}
	}
	return nil
}

func checkInspectFormat(format string) error {
	if format == "" || format == FormatJSON {
		return nil
	}
	_, err := parseTemplate(format)
	return err
}

func (c *CLI) inspectOne(ctx context.Context, cl *client.Client, o InspectOptions, name string) (any, []byte, error) {
	try := func(kind string) bool { return o.Type == "" || o.Type == kind }
	if try("container") {
		r, err := cl.ContainerInspect(ctx, name, client.ContainerInspectOptions{Size: o.Size})
		if err == nil || !cerrdefs.IsNotFound(err) || o.Type != "" {
			return r.Container, r.Raw, err
		}
	}
	if try("image") {
		var raw bytes.Buffer
		opts := []client.ImageInspectOption{client.ImageInspectWithRawResponse(&raw)}
		if o.Platform != "" {
			p, err := ParsePlatform(o.Platform)
			if err != nil {
				return nil, nil, err
			}
			opts = append(opts, client.ImageInspectWithPlatform(&p))
		}
		r, err := cl.ImageInspect(ctx, name, opts...)
		if err == nil || !cerrdefs.IsNotFound(err) || o.Type != "" {
			return r.InspectResponse, raw.Bytes(), err
		}
	}
	if try("volume") {
		r, err := cl.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
		if err == nil || !cerrdefs.IsNotFound(err) || o.Type != "" {
			return r.Volume, r.Raw, err
		}
	}
	if try("network") {
		r, err := cl.NetworkInspect(ctx, name, client.NetworkInspectOptions{Verbose: o.Verbose})
		if err == nil || !cerrdefs.IsNotFound(err) || o.Type != "" {
			return r.Network, r.Raw, err
		}
	}
	return nil, nil, fmt.Errorf("Error: No such object: %s", name)
}

// Top prints the processes of a container.
func (c *CLI) Top(ctx context.Context, container string, psArgs []string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ContainerTop(ctx, container, client.ContainerTopOptions{Arguments: psArgs})
	if err != nil {
		return c.daemonError(err)
	}
	tw := tabwriter.NewWriter(c.Out, 20, 1, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
	for _, p := range res.Processes {
		fmt.Fprintln(tw, strings.Join(p, "\t"))
	}
	return tw.Flush()
}

// Port prints a container's published ports, or where one port is
// published.
func (c *CLI) Port(ctx context.Context, container, port string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ContainerInspect(ctx, container, client.ContainerInspectOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	var ports network.PortMap
	if ns := res.Container.NetworkSettings; ns != nil {
		ports = ns.Ports
	}
	if port != "" {
		if !strings.Contains(port, "/") {
			port += "/tcp"
		}
		p, err := network.ParsePort(port)
		if err != nil {
			return fmt.Errorf("invalid port (%s): %w", port, err)
		}
		bindings, ok := ports[p]
		if !ok || len(bindings) == 0 {
			return fmt.Errorf("Error: No public port '%s' published for %s", p, container)
		}
		for _, b := range bindings {
			fmt.Fprintln(c.Out, hostAddr(b))
		}
		return nil
	}
	keys := make([]network.Port, 0, len(ports))
	for p := range ports {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Num() != keys[j].Num() {
			return keys[i].Num() < keys[j].Num()
		}
		return keys[i].Proto() < keys[j].Proto()
	})
	for _, p := range keys {
		for _, b := range ports[p] {
			fmt.Fprintf(c.Out, "%s -> %s\n", p, hostAddr(b))
		}
	}
	return nil
}

func hostAddr(b network.PortBinding) string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return net.JoinHostPort(ip, b.HostPort)
}

// Diff prints the changes to a container's filesystem.
func (c *CLI) Diff(ctx context.Context, container string) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res, err := cl.ContainerDiff(ctx, container, client.ContainerDiffOptions{})
	if err != nil {
		return c.daemonError(err)
	}
	for _, ch := range res.Changes {
		fmt.Fprintf(c.Out, "%s %s\n", ch.Kind, ch.Path)
	}
	return nil
}

// EventsOptions are the options of events.
type EventsOptions struct {
	Since, Until string
	Filters      []string
	Format       string
}

// Events streams the daemon's events until ctx ends (or until --until).
func (c *CLI) Events(ctx context.Context, o EventsOptions) error {
	f, err := ParseFilters(o.Filters)
	if err != nil {
		return err
	}
	format := o.Format
	if format == FormatJSON {
		format = "{{json .}}"
	}
	render := printEvent
	if format != "" {
		tmpl, err := parseTemplate(format)
		if err != nil {
			return err
		}
		render = func(w io.Writer, m events.Message) error {
			if err := tmpl.Execute(w, m); err != nil {
				return fmt.Errorf("template: %w", err)
			}
			_, err := fmt.Fprintln(w)
			return err
		}
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	res := cl.Events(ctx, client.EventsListOptions{Since: o.Since, Until: o.Until, Filters: f})
	for {
		select {
		case m := <-res.Messages:
			if err := render(c.Out, m); err != nil {
				return err
			}
		case err := <-res.Err:
			if err == nil || errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			return c.daemonError(err)
		}
	}
}

// printEvent writes an event in docker's default line form.
func printEvent(w io.Writer, m events.Message) error {
	t := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		t = time.Unix(m.Time, 0)
	}
	line := fmt.Sprintf("%s %s %s %s", t.Format("2006-01-02T15:04:05.000000000Z07:00"), m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		var kv []string
		for k, v := range m.Actor.Attributes {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		line += " (" + strings.Join(kv, ", ") + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
