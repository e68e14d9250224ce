package daemon

import (
	"net/netip"
	"slices"
	"testing"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
)

func TestParseLink(t *testing.T) {
	for _, tc := range []struct{ in, name, alias string }{
		{"db", "db", "db"},
		{"db:alias", "db", "alias"},
		{"/db:/web/alias", "db", "alias"},
	} {
		name, alias, err := parseLink(tc.in)
		if err != nil || name != tc.name || alias != tc.alias {
			t.Errorf("parseLink(%q) = %q %q %v, want %q %q", tc.in, name, alias, err, tc.name, tc.alias)
		}
	}
	for _, bad := range []string{"", ":x", "db:", "a:b:c"} {
		if _, _, err := parseLink(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("parseLink(%q): %v, want invalid argument", bad, err)
		}
	}
}

func TestLinkEnv(t *testing.T) {
	child := &container.Container{Config: &api.Config{
		Env:          []string{"PATH=/bin", "HOME=/root", "PW=x=y", "BARE"},
		ExposedPorts: network.PortSet{network.MustParsePort("8080/tcp"): {}, network.MustParsePort("80/udp"): {}, network.MustParsePort("80/tcp"): {}},
	}}
	got := linkEnv("/web/my-db", "my-db", netip.MustParseAddr("10.0.0.2"), child)
	want := []string{
		"MY_DB_PORT=tcp://10.0.0.2:80",
		"MY_DB_PORT_80_TCP=tcp://10.0.0.2:80", "MY_DB_PORT_80_TCP_ADDR=10.0.0.2", "MY_DB_PORT_80_TCP_PORT=80", "MY_DB_PORT_80_TCP_PROTO=tcp",
		"MY_DB_PORT_80_UDP=udp://10.0.0.2:80", "MY_DB_PORT_80_UDP_ADDR=10.0.0.2", "MY_DB_PORT_80_UDP_PORT=80", "MY_DB_PORT_80_UDP_PROTO=udp",
		"MY_DB_PORT_8080_TCP=tcp://10.0.0.2:8080", "MY_DB_PORT_8080_TCP_ADDR=10.0.0.2", "MY_DB_PORT_8080_TCP_PORT=8080", "MY_DB_PORT_8080_TCP_PROTO=tcp",
		"MY_DB_NAME=/web/my-db",
		"MY_DB_ENV_PW=x=y",
	}
	if !slices.Equal(got, want) {
		t.Errorf("linkEnv =\n%q\nwant\n%q", got, want)
	}
}
