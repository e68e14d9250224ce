package network

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/network/nettest"
)

// TestForwarding runs in a namespace of its own: the sysctls under
// /proc/sys/net and the nftables table belong to the namespace of the
// thread, and the host's must stay as they are. A manager that finds
// forwarding off turns it on, records it and guards it; a restart in the
// same boot keeps the guard; forwarding that was on already, or a record
// of another boot, gets none.
func TestForwarding(t *testing.T) {
	nettest.RequireRoot(t)
	host, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	ns := nettest.NewNS(t)
	ctx := context.Background()
	execRoot := t.TempDir()
	t.Cleanup(func() { _ = unix.Unmount(filepath.Join(execRoot, "netns"), unix.MNT_DETACH) })
	cfg := Config{ExecRoot: execRoot, BridgeName: nettest.RandName("bb"), BIP: "10.250.192.1/24",
		FirewallTable: nettest.RandName("berthtest"), IPForward: true}
	openDB := func() *metadata.DB {
		db, err := metadata.Open(filepath.Join(t.TempDir(), "metadata.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
		}
		return strings.TrimSpace(string(b))
	}
	// start opens a manager in the namespace (and closes it) and returns
	// the forwarding switches and the guard's jumps in the table.
	start := func(db *metadata.DB, ipv6Net bool) (v4, v6, guard string) {
		t.Helper()
		cfg := cfg
		cfg.DB = db
		err := nettest.Do(ns, func() error {
			m, err := New(ctx, cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			if ipv6Net {
				if _, _, err := m.Create(ctx, nettest.RandName("v6"), network.CreateRequest{EnableIPv6: ptr(true)}); err != nil {
					return err
				}
			}
			v4, v6 = read("/proc/sys/net/ipv4/ip_forward"), read("/proc/sys/net/ipv6/conf/all/forwarding")
			out, err := exec.Command("nft", "list", "chain", "inet", cfg.FirewallTable, "forward").CombinedOutput()
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "jump forward-guard") {
					guard += strings.Fields(line)[2] + " "
				}
			}
			if err != nil {
				return fmt.Errorf("nft: %v: %s", err, out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return v4, v6, strings.TrimSpace(guard)
	}
	// A new namespace copies the host's IPv4 switch: start from off.
	if err := nettest.Do(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("0"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	db := openDB()
	if v4, v6, guard := start(db, false); v4 != "1" || v6 != "0" || guard != "ipv4" {
		t.Fatalf("first start: ip_forward %s, IPv6 forwarding %s, guard %q", v4, v6, guard)
	}
	if v4, v6, guard := start(db, true); v4 != "1" || v6 != "1" || guard != "ipv4 ipv6" {
		t.Fatalf("restart, IPv6 network: ip_forward %s, IPv6 forwarding %s, guard %q", v4, v6, guard)
	}
	if _, _, guard := start(db, false); guard != "ipv4 ipv6" {
		t.Fatalf("restart: guard %q", guard)
	}
	// Another daemon (store) finds forwarding on: no guard of its own.
	if _, _, guard := start(openDB(), false); guard != "" {
		t.Fatalf("forwarding on already: guard %q", guard)
	}
	// A record of another boot says nothing.
	stale := openDB()
	if err := stale.Update(func(tx *metadata.Tx) error {
		return tx.PutJSON(kindForwarding, keyForwarding, forwardRecord{BootID: "another boot", IPv4: true})
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, guard := start(stale, false); guard != "" {
		t.Fatalf("record of another boot: guard %q", guard)
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
