package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	api "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/network/etchosts"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/shim"
	"github.com/berth-project/berth/internal/volume"
)

// cgroupsPath is where a container's cgroup lives (cgroupfs style).
func cgroupsPath(id string) string { return "/berth/" + id }

// buildSpec produces the OCI spec of c with its root at rootfs, joining
// the namespaces in join (type -> path).
func (d *Daemon) buildSpec(c *container.Container, rootfs string, join map[specs.LinuxNamespaceType]string, linkEnv []string, shm string) (*specs.Spec, error) {
	spec, err := oci.Generate(oci.Input{
		ID:             c.ID,
		Config:         c.Config,
		HostConfig:     c.HostConfig,
		Rootfs:         rootfs,
		Mounts:         append(volume.SpecMounts(c.Mounts), shmMount(shm)...),
		HostsPath:      c.Network.HostsPath,
		ResolvConfPath: c.Network.ResolvConfPath,
		HostnamePath:   c.Network.HostnamePath,
		JoinNamespaces: join,
		InitPath:       d.cfg.InitPath,
		CgroupsPath:    cgroupsPath(c.ID),
		LinkEnv:        linkEnv,
	})
	if err != nil {
		return nil, err
	}
	if spec.Linux != nil {
		// Shared or slave binds need a root that propagates as they do.
		spec.Linux.RootfsPropagation = volume.RootfsPropagation(c.Mounts, spec.Linux.RootfsPropagation)
	}
	return spec, nil
}

// joinedNamespaces returns the namespaces c shares with other containers
// (network, pid and ipc modes "container:<ref>"), which must be running.
func (d *Daemon) joinedNamespaces(c *container.Container) (map[specs.LinuxNamespaceType]string, error) {
	join := map[specs.LinuxNamespaceType]string{}
	hc := c.HostConfig
	add := func(kind specs.LinuxNamespaceType, what, ref string) error {
		pid, err := d.runningPid(ref, c.ID)
		if err != nil {
			return fmt.Errorf("cannot join %s of a non running container: %s: %w", what, ref, err)
		}
		join[kind] = fmt.Sprintf("/proc/%d/ns/%s", pid, nsFile(kind))
		return nil
	}
	if hc.NetworkMode.IsContainer() {
		if err := add(specs.NetworkNamespace, "network namespace", hc.NetworkMode.ConnectedContainer()); err != nil {
			return nil, err
		}
	}
	if hc.PidMode.IsContainer() {
		if err := add(specs.PIDNamespace, "PID namespace", hc.PidMode.Container()); err != nil {
			return nil, err
		}
	}
	if hc.IpcMode.IsContainer() {
		if err := add(specs.IPCNamespace, "IPC namespace", hc.IpcMode.Container()); err != nil {
			return nil, err
		}
	}
	return join, nil
}

// IPC namespaces are shared as Docker shares them: a container whose
// IpcMode is "shareable" gets its /dev/shm from a tmpfs the daemon mounts
// on the host (in its bundle), which containers that join its IPC
// namespace ("container:<ref>") mount too. (A container's own mounts
// cannot be bound from another mount namespace through /proc/<pid>/root.)

// shmDir is the host tmpfs of a shareable container's /dev/shm.
func (d *Daemon) shmDir(id string) string { return filepath.Join(d.bundleDir(id), "shm") }

// shmMount binds the host tmpfs shm at /dev/shm (none for "").
func shmMount(shm string) []specs.Mount {
	if shm == "" {
		return nil
	}
	return []specs.Mount{{Destination: "/dev/shm", Type: "bind", Source: shm, Options: []string{"rbind", "rprivate"}}}
}

// shmSource returns the host /dev/shm c binds at its start: its own for
// a shareable IPC namespace, the donor's when it joins one ("" for
// neither). The donor must run and be shareable.
func (d *Daemon) shmSource(c *container.Container) (string, error) {
	mode := c.HostConfig.IpcMode
	switch {
	case mode.IsShareable():
		return d.shmDir(c.ID), nil
	case !mode.IsContainer():
		return "", nil
	}
	e, err := d.ctrs.get(mode.Container())
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.c.HostConfig.IpcMode.IsShareable() {
		return "", fmt.Errorf("can't join IPC of container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container): %w", e.c.ID, errdefs.ErrConflict)
	}
	if !e.c.State.Running() {
		return "", fmt.Errorf("can't join IPC of container %s: container %s is not running: %w", e.c.ID, e.c.ID, errdefs.ErrConflict)
	}
	return d.shmDir(e.c.ID), nil
}

func nsFile(kind specs.LinuxNamespaceType) string {
	switch kind {
	case specs.NetworkNamespace:
		return "net"
	case specs.PIDNamespace:
		return "pid"
	case specs.IPCNamespace:
		return "ipc"
	}
	return string(kind)
}

// runningPid returns the init pid of the running container ref (not self).
func (d *Daemon) runningPid(ref, self string) (int, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return 0, err
	}
	if e == nil {
		return 0, noSuchContainer(ref)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c.ID == self {
		return 0, fmt.Errorf("cannot join own namespaces: %w", errdefs.ErrInvalidArgument)
	}
	if !e.c.State.Running() || e.c.State.Pid == 0 {
		return 0, fmt.Errorf("container %s is not running: %w", e.c.ID, errdefs.ErrConflict)
	}
	return e.c.State.Pid, nil
}

// networkFiles returns the network state of the container ref, for a
// container that shares its network.
func (d *Daemon) networkFiles(ref string) (container.NetworkState, error) {
	e, err := d.ctrs.get(ref)
	if err != nil {
		return container.NetworkState{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.c.Network, nil
}

// setupNetwork gives c its network for a start, with linkHosts in its
// /etc/hosts, and records it in c.Network; it returns the network
// namespace to join ("" for none to join: the host's, or one shared
// through joinedNamespaces).
func (d *Daemon) setupNetwork(ctx context.Context, c *container.Container, linkHosts []etchosts.Entry) (string, error) {
	hc := c.HostConfig
	if hc.NetworkMode.IsContainer() {
		st, err := d.networkFiles(hc.NetworkMode.ConnectedContainer())
		if err != nil {
			return "", err
		}
		c.Network = container.NetworkState{HostsPath: st.HostsPath, ResolvConfPath: st.ResolvConfPath, HostnamePath: st.HostnamePath}
		return "", nil
	}
	sb, err := d.net.Setup(ctx, network.SandboxRequest{
		ContainerID: c.ID,
		Name:        c.Name,
		Hostname:    c.Config.Hostname,
		Domainname:  c.Config.Domainname,
		NetworkMode: string(hc.NetworkMode),
		Endpoints:   linkEndpoints(c, d.primaryNetwork(c)),
		LinkHosts:   linkHosts,
		// Docker starts a container whose primary network was
		// disconnected on the networks it has left, or on none.
		SkipPrimary:     c.PrimaryDisconnected,
		PortBindings:    hc.PortBindings,
		PublishAllPorts: hc.PublishAllPorts,
		ExposedPorts:    c.Config.ExposedPorts,
		DNS:             hc.DNS,
		DNSSearch:       hc.DNSSearch,
		DNSOptions:      hc.DNSOptions,
		ExtraHosts:      hc.ExtraHosts,
		Dir:             d.ctrDir(c.ID),
	})
	if err != nil {
		return "", err
	}
	c.Network = container.NetworkState{
		SandboxKey:     sb.NetNSPath,
		HostsPath:      sb.HostsPath,
		ResolvConfPath: sb.ResolvConfPath,
		HostnamePath:   sb.HostnamePath,
		Networks:       sb.Networks,
		Ports:          sb.Ports,
	}
	return sb.NetNSPath, nil
}

// teardownNetwork releases what setupNetwork made for c.
func (d *Daemon) teardownNetwork(ctx context.Context, c *container.Container) {
	if c.HostConfig.NetworkMode.IsContainer() {
		return
	}
	if err := d.net.Teardown(ctx, c.ID); err != nil {
		log.G(ctx).Warn("tear down container network", "container", c.ID, "error", err)
	}
	c.Network.SandboxKey = ""
	c.Network.Ports = nil
	for _, ep := range c.Network.Networks {
		if ep != nil {
			// A stopped container has no address, as Docker shows it.
			ep.IPAddress, ep.Gateway, ep.IPPrefixLen = netip.Addr{}, netip.Addr{}, 0
			ep.GlobalIPv6Address, ep.IPv6Gateway, ep.GlobalIPv6PrefixLen = netip.Addr{}, netip.Addr{}, 0
			ep.EndpointID, ep.MacAddress = "", nil
		}
	}
}

// resolveMounts resolves c's volumes, binds and volumes-from at create.
func (d *Daemon) resolveMounts(ctx context.Context, c *container.Container) ([]container.Mount, error) {
	from := map[string][]container.Mount{}
	for _, spec := range c.HostConfig.VolumesFrom {
		ref, _, _ := strings.Cut(spec, ":")
		e, err := d.ctrs.get(ref)
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		from[spec] = e.c.Mounts
		e.mu.Unlock()
	}
	return d.vols.Resolve(ctx, c.ID, c.Config, c.HostConfig, from)
}

// releaseMounts drops c's use of its volumes (removing its anonymous
// ones with removeAnonymous).
func (d *Daemon) releaseMounts(ctx context.Context, c *container.Container, removeAnonymous bool) {
	if err := d.vols.Release(ctx, c.ID, c.Mounts, removeAnonymous); err != nil {
		log.G(ctx).Warn("release container volumes", "container", c.ID, "error", err)
	}
}

// mountVolumes prepares c's volumes for a start (and copies the image's
// content into new ones).
func (d *Daemon) mountVolumes(ctx context.Context, c *container.Container, rootfs string) error {
	return d.vols.Mount(ctx, c.ID, rootfs, c.Mounts)
}

func (d *Daemon) unmountVolumes(ctx context.Context, c *container.Container) {
	if err := d.vols.Unmount(ctx, c.ID, c.Mounts); err != nil {
		log.G(ctx).Warn("unmount container volumes", "container", c.ID, "error", err)
	}
}

// forceDeleteRuntime removes a container the runtime still knows after
// its shim failed to.
func (d *Daemon) forceDeleteRuntime(ctx context.Context, id string) {
	cmd := exec.CommandContext(ctx, d.cfg.RuntimePath, "--root", d.runtimeRoot(), "delete", "--force", id)
	if out, err := cmd.CombinedOutput(); err != nil {
		log.G(ctx).Warn("force delete container", "container", id, "error", err, "output", string(bytes.TrimSpace(out)))
	}
}

// imageHealthcheck returns the HEALTHCHECK of img's config, if any.
func imageHealthcheck(ctx context.Context, d *Daemon, img metadata.Image) *api.HealthConfig {
	raw, err := d.imgs.RawConfig(ctx, img)
	if err != nil {
		return nil
	}
	var cfg struct {
		Config struct {
			Healthcheck *api.HealthConfig `json:"Healthcheck"`
		} `json:"config"`
	}
	if json.Unmarshal(raw, &cfg) != nil {
		return nil
	}
	return cfg.Config.Healthcheck
}

func parseSize(s string) (int64, error) { return shim.ParseSize(s) }

func parsePositive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a positive number: %w", s, errdefs.ErrInvalidArgument)
	}
	return n, nil
}
