package docker

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/daemon"
)

// This file converts container records (daemon.ContainerView) to the
// wire types of list and inspect, with Docker's exact formats.

// humanDuration words a duration as Docker's status strings do: "Less
// than a second", "1 second", "3 seconds", "About a minute", "5 minutes",
// "About an hour", "7 hours", "3 days", "2 weeks", "4 months", "2 years".
func humanDuration(d time.Duration) string {
	seconds := int(d.Seconds())
	minutes := int(d.Minutes())
	hours := int(math.Round(d.Hours()))
	switch {
	case seconds < 1:
		return "Less than a second"
	case seconds == 1:
		return "1 second"
	case seconds < 60:
		return fmt.Sprintf("%d seconds", seconds)
	case minutes == 1:
		return "About a minute"
	case minutes < 60:
		return fmt.Sprintf("%d minutes", minutes)
	case hours == 1:
		return "About an hour"
	case hours < 48:
		return fmt.Sprintf("%d hours", hours)
	case hours < 24*7*2:
		return fmt.Sprintf("%d days", hours/24)
	case hours < 24*30*2:
		return fmt.Sprintf("%d weeks", hours/24/7)
	case hours < 24*365*2:
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// containerStatus is the Status column of docker ps: "Up 3 seconds",
// "Up 2 seconds (Paused)", "Up 1 minute (healthy)", "Restarting (1) 1
// second ago", "Exited (0) 5 seconds ago", "Created", "Removal In
// Progress", "Dead".
func containerStatus(st container.State, now time.Time) string {
	switch st.Status {
	case api.StateRunning:
		up := humanDuration(now.Sub(st.StartedAt))
		if h := st.Health; h != nil {
			return fmt.Sprintf("Up %s (%s)", up, healthWord(h.Status))
		}
		return "Up " + up
	case api.StatePaused:
		return fmt.Sprintf("Up %s (Paused)", humanDuration(now.Sub(st.StartedAt)))
	case api.StateRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(now.Sub(st.FinishedAt)))
	case api.StateRemoving:
		return "Removal In Progress"
	case api.StateDead:
		return "Dead"
	}
	if st.StartedAt.IsZero() {
		return "Created"
	}
	if st.FinishedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(now.Sub(st.FinishedAt)))
}

// healthWord is the health part of a status: "health: starting",
// "healthy", "unhealthy".
func healthWord(s api.HealthStatus) string {
	if s == api.Starting {
		return "health: starting"
	}
	return string(s)
}

// commandString is docker ps's Command: the path and arguments joined by
// spaces, an argument with a space in single quotes as Docker shows it.
func commandString(path string, args []string) string {
	parts := []string{path}
	for _, a := range args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// dockerTime formats a time as inspect does; the zero time is
// "0001-01-01T00:00:00Z".
func dockerTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

func toContainerState(st container.State) *api.State {
	return &api.State{
		Status:     st.Status,
		Running:    st.Status == api.StateRunning || st.Status == api.StatePaused || st.Status == api.StateRestarting,
		Paused:     st.Status == api.StatePaused,
		Restarting: st.Status == api.StateRestarting,
		OOMKilled:  st.OOMKilled,
		Dead:       st.Status == api.StateDead,
		Pid:        st.Pid,
		ExitCode:   st.ExitCode,
		Error:      st.Error,
		StartedAt:  dockerTime(st.StartedAt),
		FinishedAt: dockerTime(st.FinishedAt),
		Health:     st.Health,
	}
}

func toMountPoints(ms []container.Mount) []api.MountPoint {
	out := make([]api.MountPoint, 0, len(ms))
	for _, m := range ms {
		out = append(out, api.MountPoint{
			Type:        mount.Type(m.Type),
			Name:        m.Name,
			Source:      m.Source,
			Destination: m.Destination,
			Driver:      m.Driver,
			Mode:        m.Mode,
			RW:          m.RW,
			Propagation: mount.Propagation(m.Propagation),
		})
	}
	return out
}

// toPortSummaries flattens a port map for docker ps: one entry per host
// binding, or one without a public port for a port that is only exposed;
// sorted by port, protocol and host address.
func toPortSummaries(pm network.PortMap) []api.PortSummary {
	out := []api.PortSummary{}
	for port, bindings := range pm {
		if len(bindings) == 0 {
			out = append(out, api.PortSummary{PrivatePort: port.Num(), Type: string(port.Proto())})
			continue
		}
		for _, b := range bindings {
			pub, _ := strconv.ParseUint(b.HostPort, 10, 16)
			out = append(out, api.PortSummary{IP: b.HostIP, PrivatePort: port.Num(), PublicPort: uint16(pub), Type: string(port.Proto())})
		}
	}
	slices.SortFunc(out, func(a, b api.PortSummary) int {
		return cmp.Or(cmp.Compare(a.PrivatePort, b.PrivatePort), cmp.Compare(a.Type, b.Type),
			a.IP.Compare(b.IP), cmp.Compare(a.PublicPort, b.PublicPort))
	})
	return out
}

// networksOrEmpty returns the endpoint map, never nil.
func networksOrEmpty(n map[string]*network.EndpointSettings) map[string]*network.EndpointSettings {
	if n == nil {
		return map[string]*network.EndpointSettings{}
	}
	return n
}

func labelsOrEmpty(cfg *api.Config) map[string]string {
	if cfg == nil || cfg.Labels == nil {
		return map[string]string{}
	}
	return cfg.Labels
}

// toContainerSummary is a container as GET /containers/json lists it.
func toContainerSummary(v daemon.ContainerView, now time.Time) api.Summary {
	out := api.Summary{
		ID:              v.ID,
		Names:           []string{"/" + v.Name},
		Image:           v.ImageName,
		ImageID:         v.Image,
		Command:         commandString(v.Path, v.Args),
		Created:         v.Created.Unix(),
		Ports:           toPortSummaries(v.Network.Ports),
		SizeRw:          v.SizeRw,
		SizeRootFs:      v.SizeRootFs,
		Labels:          labelsOrEmpty(v.Config),
		State:           v.State.Status,
		Status:          containerStatus(v.State, now),
		NetworkSettings: &api.NetworkSettingsSummary{Networks: networksOrEmpty(v.Network.Networks)},
		Mounts:          toMountPoints(v.Mounts),
	}
	if out.Image == "" {
		out.Image = v.Image
	}
	if hc := v.HostConfig; hc != nil {
		out.HostConfig.NetworkMode = string(hc.NetworkMode)
		out.HostConfig.Annotations = hc.Annotations
	}
	if h := v.State.Health; h != nil {
		out.Health = &api.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
	}
	return out
}

// containerInspect is GET /containers/{name}/json. NetworkSettings
// shadows the embedded field: clients older than API 1.52 also get the
// deprecated top-level address fields.
type containerInspect struct {
	api.InspectResponse
	NetworkSettings any `json:"NetworkSettings"`
}

// legacyNetworkSettings are the network settings clients before API 1.52
// read: the top-level fields describe the endpoint on the default
// "bridge" network.
type legacyNetworkSettings struct {
	Bridge                 string
	SandboxID              string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	Ports                  network.PortMap
	SandboxKey             string
	SecondaryIPAddresses   []string
	SecondaryIPv6Addresses []string
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
	Networks               map[string]*network.EndpointSettings
}

// addrString is an address as the legacy fields show it ("" when unset).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// toContainerInspect converts v for inspect at API version.
func toContainerInspect(v daemon.ContainerView, version string, size bool) containerInspect {
	out := containerInspect{InspectResponse: api.InspectResponse{
		ID:             v.ID,
		Created:        dockerTime(v.Created),
		Path:           v.Path,
		Args:           nonNil(v.Args),
		State:          toContainerState(v.State),
		Image:          v.Image,
		ResolvConfPath: v.Network.ResolvConfPath,
		HostnamePath:   v.Network.HostnamePath,
		HostsPath:      v.Network.HostsPath,
		LogPath:        v.LogPath,
		Name:           "/" + v.Name,
		RestartCount:   v.RestartCount,
		Driver:         v.Driver,
		Platform:       "linux",
		HostConfig:     v.HostConfig,
		GraphDriver:    &storage.DriverData{Name: v.Driver, Data: map[string]string{}},
		Mounts:         toMountPoints(v.Mounts),
		Config:         v.Config,
	}}
	if len(v.ExecIDs) > 0 {
		out.ExecIDs = v.ExecIDs
	}
	if size {
		rw, root := v.SizeRw, v.SizeRootFs
		out.SizeRw, out.SizeRootFs = &rw, &root
	}
	ports := v.Network.Ports
	if ports == nil {
		ports = network.PortMap{}
	}
	// berth names a sandbox by its network namespace file.
	var sandboxID string
	if v.Network.SandboxKey != "" {
		sandboxID = filepath.Base(v.Network.SandboxKey)
	}
	nets := networksOrEmpty(v.Network.Networks)
	if versionLess(version, "1.45") {
		// Before 1.45 a user-defined network's aliases also held the
		// container's short ID and hostname, which is how clients of
		// that age (compose v1) recognise a container they connected.
		withIDs := make(map[string]*network.EndpointSettings, len(nets))
		for name, ep := range nets {
			if ep != nil && api.NetworkMode(name).IsUserDefined() {
				ep = ep.Copy()
				ep.Aliases = appendNew(ep.Aliases, container.ShortID(v.ID), v.Config.Hostname)
			}
			withIDs[name] = ep
		}
		nets = withIDs
	}
	if !versionLess(version, "1.52") {
		out.NetworkSettings = &api.NetworkSettings{SandboxID: sandboxID, SandboxKey: v.Network.SandboxKey, Ports: ports, Networks: nets}
		return out
	}
	ls := legacyNetworkSettings{SandboxID: sandboxID, SandboxKey: v.Network.SandboxKey, Ports: ports, Networks: nets}
	if ep := nets["bridge"]; ep != nil {
		ls.EndpointID = ep.EndpointID
		ls.Gateway = addrString(ep.Gateway)
		ls.IPAddress = addrString(ep.IPAddress)
		ls.IPPrefixLen = ep.IPPrefixLen
		ls.IPv6Gateway = addrString(ep.IPv6Gateway)
		ls.GlobalIPv6Address = addrString(ep.GlobalIPv6Address)
		ls.GlobalIPv6PrefixLen = ep.GlobalIPv6PrefixLen
		if len(ep.MacAddress) > 0 {
			ls.MacAddress = ep.MacAddress.String()
		}
	}
	out.NetworkSettings = &ls
	return out
}

// toExecInspect converts an exec for GET /exec/{id}/json.
func toExecInspect(e daemon.ExecInfo) api.ExecInspectResponse {
	keys, err := parseDetachKeys(e.DetachKeys)
	if err != nil || e.DetachKeys == "" {
		keys = []byte{}
	}
	priv := e.Privileged
	return api.ExecInspectResponse{
		ID:       e.ID,
		Running:  e.Running,
		ExitCode: e.ExitCode,
		ProcessConfig: &api.ExecProcessConfig{
			Tty:        e.Tty,
			Entrypoint: e.Entrypoint,
			Arguments:  nonNil(e.Arguments),
			Privileged: &priv,
			User:       e.User,
		},
		OpenStdin:   e.OpenStdin,
		OpenStderr:  e.OpenStderr,
		OpenStdout:  e.OpenStdout,
		CanRemove:   e.CanRemove,
		ContainerID: e.ContainerID,
		DetachKeys:  keys,
		Pid:         e.Pid,
	}
}

// appendNew appends the non-empty values that list does not hold yet.
func appendNew(list []string, values ...string) []string {
	for _, v := range values {
		if v != "" && !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
