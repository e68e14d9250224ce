package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"

	apinetwork "github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/network/etchosts"
)

// Legacy links (--link NAME[:ALIAS]). On the default bridge, as in
// Docker, the linked container must run when the linking one starts: it
// gets a line in /etc/hosts (alias, hostname and name) and environment
// variables naming its address, exposed ports and environment. On a
// user-defined network a link is an alias that only the linking container
// resolves (the network's DNS answers it).

// parseLink splits a link "NAME[:ALIAS]", as given or as recorded
// ("/name:/parent/alias"), into the linked container's name and the alias.
func parseLink(link string) (name, alias string, err error) {
	name, alias, ok := strings.Cut(link, ":")
	if !ok {
		alias = name
	}
	name = strings.TrimPrefix(name, "/")
	alias = path.Base(alias)
	if name == "" || alias == "" || alias == "/" || alias == "." || strings.Contains(alias, ":") {
		return "", "", fmt.Errorf("invalid link %q: want NAME[:ALIAS]: %w", link, errdefs.ErrInvalidArgument)
	}
	return name, alias, nil
}

// normalizeLinks checks the links of a new container named parent at
// create and records them as Docker shows them ("/name:/parent/alias").
// On a user-defined network they stay as given: they are resolved only
// when looked up.
func (d *Daemon) normalizeLinks(parent string, c *container.Container) error {
	hc := c.HostConfig
	if len(hc.Links) == 0 || hc.NetworkMode.IsUserDefined() {
		return nil
	}
	out := make([]string, 0, len(hc.Links))
	for _, l := range hc.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return err
		}
		e, err := d.ctrs.get(name)
		if err != nil {
			return fmt.Errorf("could not get container for %s: %w", name, errdefs.ErrInvalidArgument)
		}
		e.mu.Lock()
		childName, host := e.c.Name, e.c.HostConfig.NetworkMode.IsHost()
		e.mu.Unlock()
		if host {
			return fmt.Errorf("conflicting options: host type networking can't be used with links. This would result in undefined behavior: %w", errdefs.ErrInvalidArgument)
		}
		out = append(out, "/"+childName+":/"+parent+"/"+alias)
	}
	hc.Links = out
	return nil
}

// renameLinks rewrites the recorded links that name a container renamed
// from old to name, as the linked or the linking one, as Docker does.
func (d *Daemon) renameLinks(ctx context.Context, old, name string) {
	for _, e := range d.ctrs.all() {
		e.mu.Lock()
		hc := e.c.HostConfig
		links := slices.Clone(hc.Links) // views share the old slice
		changed := false
		for i, l := range links {
			child, parentAlias, ok := strings.Cut(l, ":")
			if !ok || !strings.HasPrefix(child, "/") || hc.NetworkMode.IsUserDefined() {
				continue
			}
			if child == "/"+old {
				child, changed = "/"+name, true
			}
			if p, alias, ok := strings.Cut(strings.TrimPrefix(parentAlias, "/"), "/"); ok && p == old {
				parentAlias, changed = "/"+name+"/"+alias, true
			}
			links[i] = child + ":" + parentAlias
		}
		if changed {
			hc.Links = links
			if err := d.save(e); err != nil {
				log.G(ctx).Warn("record renamed links", "container", e.c.ID, "error", err)
			}
		}
		e.mu.Unlock()
	}
}

// linkedSetup is what c's links on the default bridge add at its start.
type linkedSetup struct {
	hosts []etchosts.Entry
	env   []string
}

// resolveLinks finds c's linked containers for a start on the default
// bridge: each must run there.
func (d *Daemon) resolveLinks(c *container.Container) (linkedSetup, error) {
	var out linkedSetup
	mode := c.HostConfig.NetworkMode
	if len(c.HostConfig.Links) == 0 || !(mode.IsDefault() || mode.IsBridge()) {
		return out, nil
	}
	for _, l := range c.HostConfig.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return out, err
		}
		e, err := d.ctrs.get(name)
		if err != nil {
			return out, fmt.Errorf("could not get container for %s: %w", name, errdefs.ErrInvalidArgument)
		}
		e.mu.Lock()
		child := e.c.Clone()
		e.mu.Unlock()
		if child.ID == c.ID {
			return out, fmt.Errorf("cannot link to itself: %s: %w", name, errdefs.ErrInvalidArgument)
		}
		if !child.State.Running() {
			//lint:ignore ST1005 Docker's wording
			return out, fmt.Errorf("Cannot link to a non running container: /%s AS /%s/%s: %w", child.Name, c.Name, alias, errdefs.ErrConflict)
		}
		ep := child.Network.Networks[apinetwork.NetworkBridge]
		if ep == nil || !ep.IPAddress.IsValid() {
			//lint:ignore ST1005 Docker's wording
			return out, fmt.Errorf("Cannot link to /%s, as it does not belong to the default network: %w", child.Name, errdefs.ErrConflict)
		}
		names := []string{alias}
		if child.Config.Hostname != "" && child.Config.Hostname != alias {
			names = append(names, child.Config.Hostname)
		}
		if child.Name != alias {
			names = append(names, child.Name)
		}
		out.hosts = append(out.hosts, etchosts.Entry{IP: ep.IPAddress, Names: names})
		out.env = append(out.env, linkEnv("/"+c.Name+"/"+alias, alias, ep.IPAddress, child)...)
	}
	return out, nil
}

// linkEnv returns the variables Docker sets for a link named linkName
// ("/parent/alias") to child at ip: ALIAS_PORT (the lowest exposed
// port), ALIAS_PORT_<port>_<PROTO>{,_ADDR,_PORT,_PROTO} for each exposed
// port, ALIAS_NAME, and ALIAS_ENV_<var> for the child's environment but
// HOME and PATH.
func linkEnv(linkName, alias string, ip netip.Addr, child *container.Container) []string {
	prefix := strings.ReplaceAll(strings.ToUpper(alias), "-", "_")
	ports := make([]apinetwork.Port, 0, len(child.Config.ExposedPorts))
	for p := range child.Config.ExposedPorts {
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b apinetwork.Port) int {
		if a.Num() != b.Num() {
			return int(a.Num()) - int(b.Num())
		}
		return strings.Compare(string(a.Proto()), string(b.Proto()))
	})
	var env []string
	if len(ports) > 0 {
		p := ports[0]
		env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", prefix, p.Proto(), ip, p.Num()))
	}
	for _, p := range ports {
		key := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Num(), strings.ToUpper(string(p.Proto())))
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%d", key, p.Proto(), ip, p.Num()),
			fmt.Sprintf("%s_ADDR=%s", key, ip),
			fmt.Sprintf("%s_PORT=%d", key, p.Num()),
			fmt.Sprintf("%s_PROTO=%s", key, p.Proto()))
	}
	env = append(env, fmt.Sprintf("%s_NAME=%s", prefix, linkName))
	for _, kv := range child.Config.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "HOME" || k == "PATH" {
			continue
		}
		env = append(env, fmt.Sprintf("%s_ENV_%s=%s", prefix, k, v))
	}
	return env
}

// linkEndpoints returns c's endpoint configuration for a start, with
// its links as the primary user-defined network's endpoint links.
func linkEndpoints(c *container.Container, primary string) map[string]*apinetwork.EndpointSettings {
	if len(c.HostConfig.Links) == 0 || !c.HostConfig.NetworkMode.IsUserDefined() || c.PrimaryDisconnected {
		return c.Endpoints
	}
	eps := make(map[string]*apinetwork.EndpointSettings, len(c.Endpoints)+1)
	key := primary
	for k, es := range c.Endpoints {
		eps[k] = es
		if k == string(c.HostConfig.NetworkMode) || k == primary {
			key = k
		}
	}
	es := eps[key].Copy()
	if es == nil {
		es = &apinetwork.EndpointSettings{}
	}
	for _, l := range c.HostConfig.Links {
		if !slices.Contains(es.Links, l) {
			es.Links = append(es.Links, l)
		}
	}
	eps[key] = es
	return eps
}
