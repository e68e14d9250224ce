package network

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/network/nettest"
)

// TestEnableForwarding runs in a namespace of its own: the sysctls under
// /proc/sys/net belong to the namespace of the thread that opens them, and
// the host's must stay as they are.
func TestEnableForwarding(t *testing.T) {
	nettest.RequireRoot(t)
	host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	ns := nettest.NewNS(t)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
		}
		return strings.TrimSpace(string(b))
	}
	var v4, v6before, v6 string
	if err := nettest.Do(ns, func() error {
		if read("/proc/sys/net/ipv4/ip_forward") != "0" {
			t.Error("a new namespace starts with forwarding on")
		}
		if err := enableForwarding(false); err != nil {
			return err
		}
		v4 = read("/proc/sys/net/ipv4/ip_forward")
		v6before = read("/proc/sys/net/ipv6/conf/all/forwarding")
		if err := enableForwarding(true); err != nil {
			return err
		}
		v6 = read("/proc/sys/net/ipv6/conf/all/forwarding")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if v4 != "1" || v6before != "0" || v6 != "1" {
		t.Fatalf("ip_forward %s, IPv6 forwarding %s then %s", v4, v6before, v6)
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(host) {
		t.Fatalf("the host's ip_forward changed from %q to %q", host, now)
	}
}

func TestNetNSFile(t *testing.T) {
	nettest.RequireRoot(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "ns")
	if err := newNetNS(p); err != nil {
		t.Fatal(err)
	}
	if !isNetNS(p) {
		t.Fatal("not a namespace mount")
	}
	if ls := links(t, p); len(ls) != 1 || ls["lo"] == nil {
		t.Fatalf("links %v", ls)
	}
	if err := newNetNS(p); err == nil {
		t.Fatal("a second namespace on the same file")
	}
	if err := removeNetNS(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) || isNetNS(p) {
		t.Fatalf("file left: %v", err)
	}
	if err := removeNetNS(p); err != nil {
		t.Fatalf("remove twice: %v", err)
	}
	if err := newNetNS(filepath.Join(dir, "missing", "ns")); err == nil {
		t.Fatal("namespace in a missing directory")
	}
}
