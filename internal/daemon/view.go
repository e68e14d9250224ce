package daemon

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/errdefs"
)

// Container returns a copy of the container ref for inspect, with the
// sizes of its layers when size is set.
func (d *Daemon) Container(ctx context.Context, ref string, size bool) (ContainerView, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return ContainerView{}, err
	}
	return d.view(ctx, e, size), nil
}

// view copies e for a reader.
func (d *Daemon) view(ctx context.Context, e *ctrEntry, size bool) ContainerView {
	e.mu.Lock()
	v := ContainerView{Container: e.c.Clone(), ImageName: e.c.Config.Image}
	for id := range e.execs {
		v.ExecIDs = append(v.ExecIDs, id)
	}
	e.mu.Unlock()
	if !v.State.Running() {
		// Docker shows the networks a container will join even before
		// its first start (clients such as compose read them).
		v.Network.Networks = d.configuredNetworks(v.Container)
	}
	slices.Sort(v.ExecIDs)
	if size {
		if u, err := d.snap.Usage(ctx, v.SnapshotKey); err == nil {
			v.SizeRw = u.Size
		}
		v.SizeRootFs = v.SizeRw
		if img, err := d.imgs.Resolve(ctx, v.Image); err == nil {
			if key, err := d.imgs.SnapshotKey(ctx, img); err == nil && key != "" {
				if u, err := d.snap.Usage(ctx, key); err == nil {
					v.SizeRootFs += u.Size
				}
			}
		}
	}
	return v
}

// listFilters are the filters container list accepts.
var listFilters = []string{"id", "name", "label", "status", "ancestor", "exited", "before", "since", "health", "network", "volume", "publish", "expose", "is-task"}

// Containers lists containers, newest first: the running ones, or all
// with opts.All (or a limit), selected by opts.Filters as Docker does.
func (d *Daemon) Containers(ctx context.Context, opts ListContainersOptions) ([]ContainerView, error) {
	for k, vals := range opts.Filters {
		if !slices.Contains(listFilters, k) {
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
		for _, v := range vals {
			if err := checkFilterValue(k, v); err != nil {
				return nil, err
			}
		}
	}
	all := opts.All || opts.Limit > 0 || len(opts.Filters["status"]) > 0 || len(opts.Filters["exited"]) > 0
	var before, since int64 = -1, -1
	for _, ref := range opts.Filters["before"] {
		v, err := d.Container(ctx, ref, false)
		if err != nil {
			return nil, err
		}
		before = v.Created.UnixNano()
	}
	for _, ref := range opts.Filters["since"] {
		v, err := d.Container(ctx, ref, false)
		if err != nil {
			return nil, err
		}
		since = v.Created.UnixNano()
	}
	var out []ContainerView
	for _, e := range d.ctrs.all() {
		v := d.view(ctx, e, false)
		if !all && !v.State.Running() {
			continue
		}
		if before >= 0 && v.Created.UnixNano() >= before || since >= 0 && v.Created.UnixNano() <= since {
			continue
		}
		if !d.matchContainer(ctx, v, opts.Filters) {
			continue
		}
		if opts.Size {
			v = d.view(ctx, e, true)
		}
		out = append(out, v)
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

func checkFilterValue(k, v string) error {
	switch k {
	case "status":
		if api.ValidateContainerState(api.ContainerState(v)) != nil {
			return fmt.Errorf("invalid filter 'status=%s': %w", v, errdefs.ErrInvalidArgument)
		}
	case "exited":
		if _, err := strconv.Atoi(v); err != nil {
			return fmt.Errorf("invalid filter 'exited=%s': %w", v, errdefs.ErrInvalidArgument)
		}
	case "health":
		switch api.HealthStatus(v) {
		case api.Starting, api.Healthy, api.Unhealthy, api.NoHealthcheck:
		default:
			return fmt.Errorf("unrecognized filter value for health: %s: %w", v, errdefs.ErrInvalidArgument)
		}
	case "name":
		if _, err := regexp.Compile(v); err != nil {
			return fmt.Errorf("invalid filter 'name=%s': %w", v, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// matchContainer applies list filters: values of one key are alternatives,
// keys must all match.
func (d *Daemon) matchContainer(ctx context.Context, v ContainerView, f map[string][]string) bool {
	any := func(key string, ok func(string) bool) bool {
		vals := f[key]
		if len(vals) == 0 {
			return true
		}
		return slices.ContainsFunc(vals, ok)
	}
	return any("id", func(s string) bool { return strings.HasPrefix(v.ID, s) }) &&
		any("name", func(s string) bool {
			re, err := regexp.Compile(s)
			return err == nil && re.MatchString("/"+v.Name)
		}) &&
		// every label filter must match
		allLabels(f["label"], v.Config.Labels) &&
		any("status", func(s string) bool { return string(v.State.Status) == s }) &&
		any("exited", func(s string) bool {
			n, _ := strconv.Atoi(s)
			return v.State.Status == api.StateExited && v.State.ExitCode == n
		}) &&
		any("ancestor", func(s string) bool { return d.isAncestor(ctx, s, v) }) &&
		any("health", func(s string) bool {
			if v.State.Health == nil {
				return s == string(api.NoHealthcheck)
			}
			return string(v.State.Health.Status) == s
		}) &&
		any("network", func(s string) bool {
			if string(v.HostConfig.NetworkMode) == s {
				return true
			}
			for name, ep := range v.Network.Networks {
				if name == s || ep != nil && strings.HasPrefix(ep.NetworkID, s) {
					return true
				}
			}
			return false
		}) &&
		any("volume", func(s string) bool {
			for _, m := range v.Mounts {
				if m.Name == s || m.Destination == s || m.Source == s {
					return true
				}
			}
			return false
		}) &&
		any("publish", func(s string) bool {
			for port, bindings := range v.Network.Ports {
				for _, b := range bindings {
					if b.HostPort == s || b.HostPort+"/"+string(port.Proto()) == s {
						return true
					}
				}
			}
			return false
		}) &&
		any("expose", func(s string) bool {
			for port := range v.Config.ExposedPorts {
				if port.String() == s || strconv.Itoa(int(port.Num())) == s {
					return true
				}
			}
			return false
		}) &&
		any("is-task", func(s string) bool { return s == "false" })
}

// allLabels reports whether labels has every "key" or "key=value" of want.
func allLabels(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, val, hasVal := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || hasVal && got != val {
			return false
		}
	}
	return true
}

// isAncestor reports whether the image ref is v's image or one of its
// parents, as the ancestor filter asks.
func (d *Daemon) isAncestor(ctx context.Context, ref string, v ContainerView) bool {
	img, err := d.imgs.Resolve(ctx, ref)
	if err != nil {
		return false
	}
	want := img.ID.String()
	id := v.Image
	for range 64 {
		if id == want {
			return true
		}
		cur, err := d.imgs.Resolve(ctx, id)
		if err != nil || cur.Parent == "" {
			return false
		}
		id = cur.Parent.String()
	}
	return false
}
