package etchosts

import (
	"net/netip"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestHosts(t *testing.T) {
	gw := netip.MustParseAddr("172.17.0.1")
	db, err := ParseAddHost("db:10.1.2.3", gw)
	if err != nil {
		t.Fatal(err)
	}
	hg, err := ParseAddHost("host.docker.internal=host-gateway", gw)
	if err != nil {
		t.Fatal(err)
	}
	v6, err := ParseAddHost("six:[fd00::6]", gw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Hosts(Config{
		Hostname: "web", Domainname: "example.org",
		Addrs: []netip.Addr{netip.MustParseAddr("172.17.0.2")},
		Extra: []Entry{db, hg, v6},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::\tip6-localnet\n" +
		"ff00::\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n" +
		"10.1.2.3\tdb\n" +
		"172.17.0.1\thost.docker.internal\n" +
		"fd00::6\tsix\n" +
		"172.17.0.2\tweb.example.org web\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}

	got, err = Hosts(Config{Hostname: "solo", NoIPv6: true})
	if err != nil || string(got) != "127.0.0.1\tlocalhost\n" {
		t.Fatalf("no addresses, no IPv6: %q, %v", got, err)
	}
	for _, cfg := range []Config{
		{Hostname: "bad name"},
		{Hostname: "h", Domainname: "-x"},
		{Extra: []Entry{{IP: gw}}},
		{Extra: []Entry{{IP: gw, Names: []string{"a\nb"}}}},
	} {
		if _, err := Hosts(cfg); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Hosts(%+v) = %v", cfg, err)
		}
	}
}

func TestParseAddHostErrors(t *testing.T) {
	for _, s := range []string{"", "name", "name:", ":1.2.3.4", "name:notanip", "bad name:1.2.3.4"} {
		if _, err := ParseAddHost(s, netip.Addr{}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseAddHost(%q) = %v", s, err)
		}
	}
	if _, err := ParseAddHost("h:host-gateway", netip.Addr{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("host-gateway without a gateway: %v", err)
	}
}

func TestHostname(t *testing.T) {
	if got, err := Hostname("abc123"); err != nil || string(got) != "abc123\n" {
		t.Fatalf("Hostname = %q, %v", got, err)
	}
	if _, err := Hostname("a/b"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("Hostname(a/b) = %v", err)
	}
}
