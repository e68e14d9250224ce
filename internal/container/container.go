// Package container holds berthd's container records: what a container is
// made of (its configuration as the Engine API sent it, merged with its
// image's), its state machine, and the pure rules around it: names, the
// restart policy and its back-off, and health check results. It does no
// I/O; internal/daemon stores the records in metadata and drives the
// shims.
//
// The configuration is kept in the Engine API's own types
// (github.com/moby/moby/api/types/container Config and HostConfig): they are
// plain data, they are what `docker inspect` shows, and a second copy of
// every field would only add a conversion to get wrong.
package container

import (
	"slices"
	"time"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Kind is the metadata kind under which container records are stored.
const Kind = "containers"

// Container is one container's record, persisted as JSON.
type Container struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"` // without the leading "/"
	Created time.Time `json:"created"`
	// Path and Args are the command the container runs (entrypoint and
	// cmd after merging with the image).
	Path string   `json:"path"`
	Args []string `json:"args"`
	// Image is the image ID (its config digest); Config.Image keeps the
	// name the client asked for.
	Image      string          `json:"image"`
	Config     *api.Config     `json:"config"`
	HostConfig *api.HostConfig `json:"hostConfig"`
	// Endpoints is the NetworkingConfig of the create request, with the
	// networks connected and disconnected since.
	Endpoints map[string]*network.EndpointSettings `json:"endpoints,omitempty"`
	// PrimaryDisconnected is set when the network of HostConfig.NetworkMode
	// was disconnected: the mode stays as it was (as in Docker), but the
	// next start does not join that network, until it is connected again.
	PrimaryDisconnected bool `json:"primaryDisconnected,omitempty"`
	// Network is what the network manager answered at the last start.
	Network NetworkState `json:"network"`
	State   State        `json:"state"`
	// RestartCount counts restarts by the restart policy since the last
	// start by a user.
	RestartCount int `json:"restartCount"`
	// ManuallyStopped is set by stop/kill from a user: the restart policy
	// (unless-stopped, always after a daemon restart) leaves it stopped.
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	// SnapshotKey is the container's writable snapshot; Driver the storage
	// driver that holds it.
	SnapshotKey string `json:"snapshotKey"`
	Driver      string `json:"driver"`
	// LogPath is the json-file log ("" with the none driver).
	LogPath string `json:"logPath,omitempty"`
	// Mounts are the container's volume, bind and tmpfs mounts, resolved at
	// create.
	Mounts []Mount `json:"mounts,omitempty"`
	// HasBeenStarted is set at the first start.
	HasBeenStarted bool `json:"hasBeenStarted,omitempty"`
}

// NetworkState is a container's networking as inspect shows it.
type NetworkState struct {
	SandboxKey     string                               `json:"sandboxKey,omitempty"`
	HostsPath      string                               `json:"hostsPath,omitempty"`
	ResolvConfPath string                               `json:"resolvConfPath,omitempty"`
	HostnamePath   string                               `json:"hostnamePath,omitempty"`
	Networks       map[string]*network.EndpointSettings `json:"networks,omitempty"`
	Ports          network.PortMap                      `json:"ports,omitempty"`
}

// Mount is one mount of a container: a named or anonymous volume, a bind
// mount or a tmpfs.
type Mount struct {
	Type        string `json:"type"` // "volume", "bind", "tmpfs"
	Name        string `json:"name,omitempty"`
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	Driver      string `json:"driver,omitempty"`
	Mode        string `json:"mode,omitempty"`
	RW          bool   `json:"rw"`
	Propagation string `json:"propagation,omitempty"`
	// Options are extra mount options (tmpfs size, mode).
	Options []string `json:"options,omitempty"`
	// Anonymous volumes are removed with the container by rm -v.
	Anonymous bool `json:"anonymous,omitempty"`
}

// State is where a container is in its life.
type State struct {
	Status     api.ContainerState `json:"status"`
	Pid        int                `json:"pid,omitempty"`
	ExitCode   int                `json:"exitCode"`
	OOMKilled  bool               `json:"oomKilled,omitempty"`
	Error      string             `json:"error,omitempty"`
	StartedAt  time.Time          `json:"startedAt,omitzero"`
	FinishedAt time.Time          `json:"finishedAt,omitzero"`
	Health     *api.Health        `json:"health,omitempty"`
}

// Running reports whether the container's process is alive (running or
// paused).
func (s State) Running() bool {
	return s.Status == api.StateRunning || s.Status == api.StatePaused
}

// Clone returns a deep enough copy of c for a reader to keep while the
// daemon changes the original: the record's own fields and slices are
// copied; Config and HostConfig are copied one level deep.
func (c *Container) Clone() *Container {
	n := *c
	n.Args = slices.Clone(c.Args)
	if c.Config != nil {
		cfg := *c.Config
		n.Config = &cfg
	}
	if c.HostConfig != nil {
		hc := *c.HostConfig
		n.HostConfig = &hc
	}
	n.Mounts = slices.Clone(c.Mounts)
	if c.Network.Networks != nil {
		n.Network.Networks = make(map[string]*network.EndpointSettings, len(c.Network.Networks))
		for name, ep := range c.Network.Networks {
			n.Network.Networks[name] = ep.Copy()
		}
	}
	if c.State.Health != nil {
		h := *c.State.Health
		h.Log = slices.Clone(h.Log)
		n.State.Health = &h
	}
	return &n
}
