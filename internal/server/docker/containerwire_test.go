package docker

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/daemon"
)

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "Less than a second"},
		{999 * time.Millisecond, "Less than a second"},
		{time.Second, "1 second"},
		{3 * time.Second, "3 seconds"},
		{59 * time.Second, "59 seconds"},
		{90 * time.Second, "About a minute"},
		{5 * time.Minute, "5 minutes"},
		{59 * time.Minute, "59 minutes"},
		{60 * time.Minute, "About an hour"},
		{7 * time.Hour, "7 hours"},
		{47 * time.Hour, "47 hours"},
		{72 * time.Hour, "3 days"},
		{15 * 24 * time.Hour, "2 weeks"},
		{90 * 24 * time.Hour, "3 months"},
		{800 * 24 * time.Hour, "2 years"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestContainerStatus(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		st   container.State
		want string
	}{
		{container.State{Status: api.StateCreated}, "Created"},
		{container.State{Status: api.StateRunning, StartedAt: ago(3 * time.Second)}, "Up 3 seconds"},
		{container.State{Status: api.StatePaused, StartedAt: ago(2 * time.Second)}, "Up 2 seconds (Paused)"},
		{container.State{Status: api.StateRunning, StartedAt: ago(time.Minute), Health: &api.Health{Status: api.Healthy}}, "Up About a minute (healthy)"},
		{container.State{Status: api.StateRunning, StartedAt: ago(time.Second), Health: &api.Health{Status: api.Starting}}, "Up 1 second (health: starting)"},
		{container.State{Status: api.StateRestarting, ExitCode: 1, StartedAt: ago(time.Hour), FinishedAt: ago(time.Second)}, "Restarting (1) 1 second ago"},
		{container.State{Status: api.StateExited, ExitCode: 0, StartedAt: ago(time.Hour), FinishedAt: ago(5 * time.Second)}, "Exited (0) 5 seconds ago"},
		{container.State{Status: api.StateExited, ExitCode: 137, StartedAt: ago(time.Hour), FinishedAt: ago(3 * time.Hour)}, "Exited (137) 3 hours ago"},
		{container.State{Status: api.StateRemoving}, "Removal In Progress"},
		{container.State{Status: api.StateDead}, "Dead"},
	} {
		if got := containerStatus(tc.st, now); got != tc.want {
			t.Errorf("status of %+v = %q, want %q", tc.st, got, tc.want)
		}
	}
}

// testView is a running container with a published port, a volume and
// an endpoint on the default bridge.
func testView(t *testing.T) daemon.ContainerView {
	t.Helper()
	p80, err := network.ParsePort("80/tcp")
	if err != nil {
		t.Fatal(err)
	}
	p53, _ := network.ParsePort("53/udp")
	created := time.Date(2025, 3, 1, 11, 0, 0, 123456789, time.UTC)
	return daemon.ContainerView{
		Container: &container.Container{
			ID:      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			Name:    "web",
			Created: created,
			Path:    "sh",
			Args:    []string{"-c", "echo hi"},
			Image:   "sha256:aaaa",
			Config:  &api.Config{Image: "busybox", Tty: true},
			HostConfig: &api.HostConfig{
				NetworkMode: "bridge",
			},
			Network: container.NetworkState{
				SandboxKey:     "/run/berth/netns/0123456789ab",
				ResolvConfPath: "/data/containers/0123/resolv.conf",
				HostsPath:      "/data/containers/0123/hosts",
				HostnamePath:   "/data/containers/0123/hostname",
				Networks: map[string]*network.EndpointSettings{"bridge": {
					NetworkID: "net1", EndpointID: "ep1",
					IPAddress: netip.MustParseAddr("172.17.0.2"), IPPrefixLen: 16, Gateway: netip.MustParseAddr("172.17.0.1"),
					MacAddress: network.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, 0x02},
				}},
				Ports: network.PortMap{
					p80: {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "8080"}, {HostIP: netip.MustParseAddr("::"), HostPort: "8080"}},
					p53: nil,
				},
			},
			State: container.State{
				Status: api.StateRunning, Pid: 42,
				StartedAt: created.Add(time.Minute),
			},
			RestartCount: 2,
			Driver:       "overlay2",
			LogPath:      "/data/containers/0123/0123-json.log",
			Mounts: []container.Mount{{
				Type: "volume", Name: "vol", Source: "/data/volumes/vol/_data", Destination: "/data", Driver: "local", Mode: "z", RW: true,
			}},
		},
		ImageName: "busybox",
	}
}

// jsonMap marshals v and decodes it as a generic map, to check the wire
// form rather than the Go values.
func jsonMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestContainerSummaryWire(t *testing.T) {
	v := testView(t)
	now := v.State.StartedAt.Add(3 * time.Second)
	m := jsonMap(t, toContainerSummary(v, now))
	want := map[string]any{
		"Id":      v.ID,
		"Names":   []any{"/web"},
		"Image":   "busybox",
		"ImageID": "sha256:aaaa",
		"Command": "sh -c 'echo hi'",
		"Created": float64(v.Created.Unix()),
		"Labels":  map[string]any{},
		"State":   "running",
		"Status":  "Up 3 seconds",
		"Ports": []any{
			map[string]any{"IP": "", "PrivatePort": 53.0, "Type": "udp"},
			map[string]any{"IP": "0.0.0.0", "PrivatePort": 80.0, "PublicPort": 8080.0, "Type": "tcp"},
			map[string]any{"IP": "::", "PrivatePort": 80.0, "PublicPort": 8080.0, "Type": "tcp"},
		},
		"HostConfig": map[string]any{"NetworkMode": "bridge"},
		"Mounts": []any{map[string]any{
			"Type": "volume", "Name": "vol", "Source": "/data/volumes/vol/_data", "Destination": "/data",
			"Driver": "local", "Mode": "z", "RW": true, "Propagation": "",
		}},
	}
	for k, w := range want {
		if !reflect.DeepEqual(m[k], w) {
			t.Errorf("%s = %#v, want %#v", k, m[k], w)
		}
	}
	if _, ok := m["SizeRw"]; ok {
		t.Errorf("SizeRw without a size request: %v", m["SizeRw"])
	}
	if nets := m["NetworkSettings"].(map[string]any)["Networks"].(map[string]any); nets["bridge"].(map[string]any)["IPAddress"] != "172.17.0.2" {
		t.Errorf("networks %v", nets)
	}
	// A created container without command arguments, labels or networks.
	v.State = container.State{Status: api.StateCreated}
	v.Args, v.Network, v.Mounts, v.ImageName = nil, container.NetworkState{}, nil, ""
	m = jsonMap(t, toContainerSummary(v, now))
	if m["Command"] != "sh" || m["Status"] != "Created" || m["Image"] != "sha256:aaaa" ||
		!reflect.DeepEqual(m["Ports"], []any{}) || !reflect.DeepEqual(m["Mounts"], []any{}) ||
		!reflect.DeepEqual(m["NetworkSettings"], map[string]any{"Networks": map[string]any{}}) {
		t.Errorf("created container: %v", m)
	}
}

func TestContainerInspectWire(t *testing.T) {
	v := testView(t)
	v.ExecIDs = nil
	m := jsonMap(t, toContainerInspect(v, "1.52", false))
	want := map[string]any{
		"Id":              v.ID,
		"Created":         "2025-03-01T11:00:00.123456789Z",
		"Path":            "sh",
		"Args":            []any{"-c", "echo hi"},
		"Image":           "sha256:aaaa",
		"Name":            "/web",
		"RestartCount":    2.0,
		"Driver":          "overlay2",
		"Platform":        "linux",
		"ResolvConfPath":  "/data/containers/0123/resolv.conf",
		"HostsPath":       "/data/containers/0123/hosts",
		"HostnamePath":    "/data/containers/0123/hostname",
		"LogPath":         "/data/containers/0123/0123-json.log",
		"ExecIDs":         nil,
		"MountLabel":      "",
		"ProcessLabel":    "",
		"AppArmorProfile": "",
		"GraphDriver":     map[string]any{"Name": "overlay2", "Data": map[string]any{}},
	}
	for k, w := range want {
		got, ok := m[k]
		if !ok || !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, w)
		}
	}
	st := m["State"].(map[string]any)
	if st["Status"] != "running" || st["Running"] != true || st["Paused"] != false || st["Pid"] != 42.0 ||
		st["StartedAt"] != "2025-03-01T11:01:00.123456789Z" || st["FinishedAt"] != "0001-01-01T00:00:00Z" {
		t.Errorf("state %v", st)
	}
	if _, ok := st["Health"]; ok {
		t.Errorf("health without a health check: %v", st["Health"])
	}
	for _, k := range []string{"SizeRw", "SizeRootFs"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s without a size request", k)
		}
	}
	if m["Config"].(map[string]any)["Image"] != "busybox" || m["HostConfig"].(map[string]any)["NetworkMode"] != "bridge" {
		t.Errorf("config %v host config %v", m["Config"], m["HostConfig"])
	}
	ns := m["NetworkSettings"].(map[string]any)
	if ns["SandboxKey"] != "/run/berth/netns/0123456789ab" || ns["SandboxID"] != "0123456789ab" {
		t.Errorf("sandbox: %v", ns)
	}
	if ports := ns["Ports"].(map[string]any); !reflect.DeepEqual(ports["53/udp"], nil) ||
		!reflect.DeepEqual(ports["80/tcp"], []any{map[string]any{"HostIp": "0.0.0.0", "HostPort": "8080"}, map[string]any{"HostIp": "::", "HostPort": "8080"}}) {
		t.Errorf("ports %v", ports)
	}
	if _, ok := ns["IPAddress"]; ok {
		t.Errorf("API 1.52 got the deprecated IPAddress")
	}
	if mounts := m["Mounts"].([]any); len(mounts) != 1 || mounts[0].(map[string]any)["Name"] != "vol" {
		t.Errorf("mounts %v", mounts)
	}

	// Before API 1.52 the default bridge's endpoint shows at the top too;
	// sizes show when asked for.
	v.SizeRw, v.SizeRootFs = 10, 1000
	v.ExecIDs = []string{"e1"}
	v.State.Health = &api.Health{Status: api.Healthy}
	m = jsonMap(t, toContainerInspect(v, "1.50", true))
	ns = m["NetworkSettings"].(map[string]any)
	for k, w := range map[string]any{"IPAddress": "172.17.0.2", "IPPrefixLen": 16.0, "Gateway": "172.17.0.1",
		"MacAddress": "02:42:ac:11:00:02", "EndpointID": "ep1", "Bridge": "", "GlobalIPv6Address": "", "IPv6Gateway": ""} {
		if !reflect.DeepEqual(ns[k], w) {
			t.Errorf("1.50 NetworkSettings.%s = %#v, want %#v", k, ns[k], w)
		}
	}
	if m["SizeRw"] != 10.0 || m["SizeRootFs"] != 1000.0 || !reflect.DeepEqual(m["ExecIDs"], []any{"e1"}) {
		t.Errorf("sizes %v %v exec IDs %v", m["SizeRw"], m["SizeRootFs"], m["ExecIDs"])
	}
	if h := m["State"].(map[string]any)["Health"].(map[string]any); h["Status"] != "healthy" {
		t.Errorf("health %v", h)
	}
	// A stopped container without networks has empty maps, not null.
	v.Network = container.NetworkState{}
	ns = jsonMap(t, toContainerInspect(v, "1.52", false))["NetworkSettings"].(map[string]any)
	if !reflect.DeepEqual(ns["Ports"], map[string]any{}) || !reflect.DeepEqual(ns["Networks"], map[string]any{}) || ns["SandboxID"] != "" {
		t.Errorf("no network: %v", ns)
	}
}

func TestExecInspectWire(t *testing.T) {
	code := 3
	m := jsonMap(t, toExecInspect(daemon.ExecInfo{
		ID: "e1", ContainerID: "c1", ExitCode: &code, Pid: 7, OpenStdin: true, OpenStdout: true, Tty: true,
		User: "1000", Entrypoint: "sh", Arguments: []string{"-c", "exit 3"}, DetachKeys: "ctrl-a",
	}))
	pc := m["ProcessConfig"].(map[string]any)
	if m["ID"] != "e1" || m["ContainerID"] != "c1" || m["ExitCode"] != 3.0 || m["Running"] != false || m["Pid"] != 7.0 ||
		m["OpenStdin"] != true || m["OpenStderr"] != false || m["DetachKeys"] != "AQ==" {
		t.Errorf("exec inspect %v", m)
	}
	if pc["tty"] != true || pc["entrypoint"] != "sh" || !reflect.DeepEqual(pc["arguments"], []any{"-c", "exit 3"}) ||
		pc["privileged"] != false || pc["user"] != "1000" {
		t.Errorf("process config %v", pc)
	}
	m = jsonMap(t, toExecInspect(daemon.ExecInfo{ID: "e2", Running: true}))
	if m["ExitCode"] != nil || m["DetachKeys"] != "" || !reflect.DeepEqual(m["ProcessConfig"].(map[string]any)["arguments"], []any{}) {
		t.Errorf("running exec %v", m)
	}
}

// TestLegacyAliases: before API 1.45 a user-defined network's aliases
// also hold the short ID and the hostname; the view is not changed.
func TestLegacyAliases(t *testing.T) {
	v := testView(t)
	v.Config.Hostname = "myhost"
	v.Network.Networks["back"] = &network.EndpointSettings{Aliases: []string{"fa"}}
	short := v.ID[:12]
	aliases := func(version string) map[string]any {
		ns := jsonMap(t, toContainerInspect(v, version, false))["NetworkSettings"].(map[string]any)
		out := map[string]any{}
		for name, ep := range ns["Networks"].(map[string]any) {
			out[name] = ep.(map[string]any)["Aliases"]
		}
		return out
	}
	if got, want := aliases("1.44"), map[string]any{"back": []any{"fa", short, "myhost"}, "bridge": nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("1.44 aliases = %v, want %v", got, want)
	}
	if got, want := aliases("1.45"), map[string]any{"back": []any{"fa"}, "bridge": nil}; !reflect.DeepEqual(got, want) {
		t.Errorf("1.45 aliases = %v, want %v", got, want)
	}
	if got := v.Network.Networks["back"].Aliases; !reflect.DeepEqual(got, []string{"fa"}) {
		t.Errorf("the view's aliases changed to %v", got)
	}
}
