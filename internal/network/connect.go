package network

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/network/bridge"
)

// Connect attaches a running container (one with a sandbox) to another
// bridge network, with the aliases, static addresses and MAC of es, and
// rewrites its hosts file (and resolv.conf, when this starts its embedded
// DNS server) in place. A container that is not running has no sandbox:
// the daemon records the network for its next start instead.
func (m *Manager) Connect(ctx context.Context, idOrName, containerID string, es *network.EndpointSettings) error {
	m.mu.Lock()
	n, err := m.lookupNetwork(idOrName)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	sb, err := m.changeable(containerID)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	switch {
	case n.rec.Driver == DriverHost || m.hostMode(&sb.rec):
		m.mu.Unlock()
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrPermission)
	case n.rec.Driver == DriverNull || sb.rec.NetNS == "" || m.onDriver(&sb.rec, DriverNull):
		m.mu.Unlock()
		return fmt.Errorf("container cannot be connected to multiple networks with one of the networks in private (none) mode: %w", errdefs.ErrPermission)
	}
	if slices.ContainsFunc(sb.rec.Endpoints, func(ep *endpointRecord) bool { return ep.NetworkID == n.rec.ID }) {
		m.mu.Unlock()
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", sb.rec.Name, n.rec.Name, errdefs.ErrPermission)
	}
	before := sb.rec
	before.Endpoints = slices.Clone(sb.rec.Endpoints)
	ep, err := m.newEndpoint(&sb.rec, n, es)
	var fs fileSet
	if err == nil {
		if !n.rec.Internal && !slices.ContainsFunc(before.Endpoints, func(e *endpointRecord) bool { return e.Gateway }) {
			ep.Gateway = true
		}
		fs, err = m.buildFiles(&sb.rec)
	}
	if err != nil {
		if len(sb.rec.Endpoints) > len(before.Endpoints) {
			m.releaseEndpoint(sb.rec.Endpoints[len(sb.rec.Endpoints)-1])
		}
		sb.rec = before
		m.mu.Unlock()
		return err
	}
	att, _ := m.attachment(&sb.rec, ep)
	sb.ready = false
	m.mu.Unlock()

	err = bridge.Attach(att.bridge, att.ep)
	if err == nil && sb.rec.EmbeddedDNS && sb.dns == nil {
		err = m.startDNS(ctx, sb)
	}
	if err == nil {
		err = writeFiles(&sb.rec, fs, true)
	}
	if err == nil {
		err = m.putSandbox(&sb.rec)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	sb.ready = true
	if err != nil {
		_ = bridge.Detach(ep.HostIf)
		m.releaseEndpoint(ep)
		sb.rec = before
		if old, ferr := m.buildFiles(&sb.rec); ferr == nil {
			_ = writeFiles(&sb.rec, old, true)
		}
		return fmt.Errorf("connect container %s to network %s: %w", containerID, n.rec.Name, err)
	}
	return nil
}

// Disconnect detaches a running container from a network: its veth,
// address and published ports there go, and its hosts file is rewritten.
// When the network carried the default route, the next network that can
// takes it over.
func (m *Manager) Disconnect(ctx context.Context, idOrName, containerID string, force bool) error {
	m.mu.Lock()
	n, err := m.lookupNetwork(idOrName)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	sb, err := m.changeable(containerID)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	i := slices.IndexFunc(sb.rec.Endpoints, func(ep *endpointRecord) bool { return ep.NetworkID == n.rec.ID })
	switch {
	case i < 0:
		m.mu.Unlock()
		return fmt.Errorf("container %s is not connected to network %s: %w", containerID, n.rec.Name, errdefs.ErrNotFound)
	case n.rec.Driver == DriverHost:
		m.mu.Unlock()
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrPermission)
	case n.rec.Driver == DriverNull:
		m.mu.Unlock()
		return fmt.Errorf("container cannot be disconnected from the none network: %w", errdefs.ErrPermission)
	}
	before := sb.rec
	before.Endpoints = slices.Clone(sb.rec.Endpoints)
	ep := sb.rec.Endpoints[i]
	sb.rec.Endpoints = slices.Delete(slices.Clone(sb.rec.Endpoints), i, i+1)
	var next *endpointRecord
	var nextAtt attachment
	if ep.Gateway {
		for _, e := range sb.rec.Endpoints {
			if x := m.networks[e.NetworkID]; x != nil && x.rec.Driver == DriverBridge && !x.rec.Internal {
				next = e
				break
			}
		}
		if next != nil {
			c := *next
			c.Gateway = true
			nextAtt, _ = m.attachment(&sb.rec, &c)
		}
	}
	fs, err := m.buildFiles(&sb.rec)
	if err != nil {
		sb.rec = before
		m.mu.Unlock()
		return err
	}
	sb.ready = false
	m.mu.Unlock()

	var errs []error
	if err := m.fw.RemovePorts(mappings(ep.Ports)...); err != nil {
		errs = append(errs, err)
	}
	if err := bridge.Detach(ep.HostIf); err != nil {
		errs = append(errs, err)
	}
	if next != nil {
		if err := bridge.Attach(nextAtt.bridge, nextAtt.ep); err != nil {
			errs = append(errs, err)
		} else {
			next.Gateway = true
		}
	}
	if err := writeFiles(&sb.rec, fs, true); err != nil {
		errs = append(errs, err)
	}
	if err := m.putSandbox(&sb.rec); err != nil {
		errs = append(errs, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	sb.ready = true
	for _, p := range ep.Ports {
		if h := sb.holds[mappingKey(p.Mapping)]; h != nil {
			_ = h.Close()
			delete(sb.holds, mappingKey(p.Mapping))
		}
	}
	m.releaseEndpoint(ep)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("disconnect container %s from network %s: %w", containerID, n.rec.Name, err)
	}
	return nil
}

// changeable returns the ready sandbox of a container. Callers hold mu.
func (m *Manager) changeable(containerID string) (*sandbox, error) {
	sb := m.sandboxes[containerID]
	if sb == nil {
		return nil, fmt.Errorf("container %s has no network (is it running?): %w", containerID, errdefs.ErrNotFound)
	}
	if !sb.ready {
		return nil, fmt.Errorf("network of container %s is being changed: %w", containerID, errdefs.ErrUnavailable)
	}
	return sb, nil
}

// onDriver reports whether the sandbox has an endpoint on a network of
// that driver. Callers hold mu.
func (m *Manager) onDriver(rec *sandboxRecord, driver string) bool {
	return slices.ContainsFunc(rec.Endpoints, func(ep *endpointRecord) bool {
		n := m.networks[ep.NetworkID]
		return n != nil && n.rec.Driver == driver
	})
}

// Rename changes the name a running container answers to on its
// user-defined networks (docker rename); its aliases and hostname stay.
func (m *Manager) Rename(containerID, name string) error {
	name = strings.TrimPrefix(name, "/")
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.changeable(containerID)
	if err != nil {
		return err
	}
	rec := sb.rec
	rec.Name = name
	rec.Endpoints = nil
	for _, ep := range sb.rec.Endpoints {
		c := *ep
		if len(c.DNSNames) > 0 {
			c.DNSNames = dnsNames(&rec, &c)
		}
		rec.Endpoints = append(rec.Endpoints, &c)
	}
	if err := m.putSandbox(&rec); err != nil {
		return fmt.Errorf("rename container %s: %w", containerID, err)
	}
	sb.rec = rec
	return nil
}
