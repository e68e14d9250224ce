package daemon

import (
	"context"
	"fmt"
	"maps"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
)

// CreateNetwork creates a user-defined network and publishes a create
// event.
func (d *Daemon) CreateNetwork(ctx context.Context, name string, req network.CreateRequest) (string, string, error) {
	id, warning, err := d.net.Create(ctx, name, req)
	if err != nil {
		return "", "", err
	}
	d.publish(Event{Type: "network", Action: "create", ID: id, Attributes: map[string]string{"name": name, "type": networkDriver(req.Driver)}})
	return id, warning, nil
}

func networkDriver(d string) string {
	if d == "" {
		return "bridge"
	}
	return d
}

// Networks lists networks selected by filters.
func (d *Daemon) Networks(ctx context.Context, filters map[string][]string) ([]network.Summary, error) {
	return d.net.List(ctx, filters)
}

// Network returns a network with its containers.
func (d *Daemon) Network(ctx context.Context, idOrName string) (network.Inspect, error) {
	return d.net.Inspect(ctx, idOrName)
}

// RemoveNetwork removes a network no container uses.
func (d *Daemon) RemoveNetwork(ctx context.Context, idOrName string) error {
	n, err := d.net.Inspect(ctx, idOrName)
	if err != nil {
		return err
	}
	if err := d.net.Remove(ctx, idOrName); err != nil {
		return err
	}
	d.publish(Event{Type: "network", Action: "destroy", ID: n.ID, Attributes: map[string]string{"name": n.Name, "type": n.Driver}})
	return nil
}

// PruneNetworks removes the unused user-defined networks.
func (d *Daemon) PruneNetworks(ctx context.Context, filters map[string][]string) ([]string, error) {
	deleted, err := d.net.Prune(ctx, filters)
	if err != nil {
		return nil, err
	}
	for _, name := range deleted {
		d.publish(Event{Type: "network", Action: "destroy", ID: name, Attributes: map[string]string{"name": name}})
	}
	d.publish(Event{Type: "network", Action: "prune"})
	return deleted, nil
}

// ConnectNetwork connects a container to a network: at once when it runs,
// and at its every start (the network joins its endpoint configuration).
func (d *Daemon) ConnectNetwork(ctx context.Context, idOrName, ref string, es *network.EndpointSettings) error {
	netID, netName, err := d.net.Resolve(idOrName)
	if err != nil {
		return err
	}
	e, err := d.ctrs.get(ref)
	if err != nil {
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.c
	switch mode := c.HostConfig.NetworkMode; {
	case mode.IsContainer():
		return fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network: %w", errdefs.ErrInvalidArgument)
	case mode.IsHost():
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrInvalidArgument)
	case mode.IsNone():
		return fmt.Errorf("container cannot be connected to multiple networks with one of the networks in private (none) mode: %w", errdefs.ErrInvalidArgument)
	}
	primary := netName == d.primaryNetwork(c)
	if _, ok := c.Endpoints[netName]; ok || primary && !c.PrimaryDisconnected || c.Network.Networks[netName] != nil {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, netName, errdefs.ErrAlreadyExists)
	}
	if es == nil {
		es = &network.EndpointSettings{}
	}
	if c.State.Running() {
		if err := d.net.Connect(ctx, netID, c.ID, es); err != nil {
			return err
		}
		if sb, ok := d.net.Sandbox(c.ID); ok {
			c.Network.Networks = sb.Networks
			c.Network.Ports = sb.Ports
		}
	}
	eps := maps.Clone(c.Endpoints)
	if eps == nil {
		eps = map[string]*network.EndpointSettings{}
	}
	eps[netName] = es
	c.Endpoints = eps
	if primary {
		c.PrimaryDisconnected = false
	}
	if err := d.save(e); err != nil {
		return err
	}
	d.publish(Event{Type: "network", Action: "connect", ID: netID, Attributes: map[string]string{"name": netName, "container": c.ID, "type": "bridge"}})
	return nil
}

// DisconnectNetwork disconnects a container from a network.
func (d *Daemon) DisconnectNetwork(ctx context.Context, idOrName, ref string, force bool) error {
	netID, netName, err := d.net.Resolve(idOrName)
	if err != nil {
		return err
	}
	e, err := d.ctrs.get(ref)
	if err != nil {
		if force {
			return nil
		}
		return err
	}
	e.op.Lock()
	defer e.op.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.c
	_, configured := c.Endpoints[netName]
	primary := netName == d.primaryNetwork(c) && !c.PrimaryDisconnected
	if !configured && !primary && c.Network.Networks[netName] == nil {
		return fmt.Errorf("container %s is not connected to network %s: %w", c.ID, netName, errdefs.ErrNotFound)
	}
	if c.State.Running() {
		if err := d.net.Disconnect(ctx, netID, c.ID, force); err != nil && !force {
			return err
		}
		if sb, ok := d.net.Sandbox(c.ID); ok {
			c.Network.Networks = sb.Networks
			c.Network.Ports = sb.Ports
		}
	} else {
		delete(c.Network.Networks, netName)
	}
	eps := maps.Clone(c.Endpoints)
	delete(eps, netName)
	if primary {
		// The CLI names the primary network as the mode does ("default"
		// for the default bridge). As in Docker, the mode stays, and the
		// next start joins only the networks left (see setupNetwork).
		delete(eps, string(c.HostConfig.NetworkMode))
		delete(eps, network.NetworkDefault)
		c.PrimaryDisconnected = true
	}
	c.Endpoints = eps
	if err := d.save(e); err != nil {
		log.G(ctx).Warn("record network disconnect", "container", c.ID, "error", err)
	}
	d.publish(Event{Type: "network", Action: "disconnect", ID: netID, Attributes: map[string]string{"name": netName, "container": c.ID, "type": "bridge"}})
	return nil
}

// primaryNetwork names the network c's NetworkMode joins: "bridge" for
// the default, "host" or "none", a user-defined network by its name (the
// mode as given if there is no such network), "" for another container's.
func (d *Daemon) primaryNetwork(c *container.Container) string {
	mode := c.HostConfig.NetworkMode
	switch {
	case mode.IsDefault() || mode.IsBridge():
		return network.NetworkBridge
	case mode.IsContainer():
		return ""
	case mode.IsHost() || mode.IsNone():
		return string(mode)
	}
	if _, name, err := d.net.Resolve(string(mode)); err == nil {
		return name
	}
	return string(mode)
}

// configuredNetworks are the networks a container that is not running
// joins at its next start, as inspect shows them: each with what its last
// run left (no addresses), or else with its endpoint configuration.
func (d *Daemon) configuredNetworks(c *container.Container) map[string]*network.EndpointSettings {
	nets := map[string]*network.EndpointSettings{}
	entry := func(name string, es *network.EndpointSettings) {
		if prev := c.Network.Networks[name]; prev != nil {
			nets[name] = prev.Copy()
		} else if es != nil {
			nets[name] = es.Copy()
		} else {
			nets[name] = &network.EndpointSettings{}
		}
	}
	primary := d.primaryNetwork(c)
	var primarySettings *network.EndpointSettings
	for key, es := range c.Endpoints {
		name := key
		if key == network.NetworkDefault || key == string(c.HostConfig.NetworkMode) {
			name = primary
		} else if _, n, err := d.net.Resolve(key); err == nil {
			name = n
		}
		if name == primary {
			primarySettings = es
			continue
		}
		entry(name, es)
	}
	if primary != "" && !c.PrimaryDisconnected {
		entry(primary, primarySettings)
	}
	return nets
}
