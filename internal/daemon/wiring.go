package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/network"
	"github.com/berth-project/berth/internal/network/ipam"
)

// findBinaries fills the helper binaries' paths the configuration leaves
// empty: beside berthd's own executable first, then in PATH.
func findBinaries(cfg *Config) error {
	self, _ := os.Executable()
	for _, b := range []struct {
		path *string
		name string
	}{{&cfg.ShimPath, "berth-shim"}, {&cfg.RuntimePath, "berth-runtime"}, {&cfg.InitPath, "berth-init"}} {
		if *b.path != "" {
			continue
		}
		if self != "" {
			p := filepath.Join(filepath.Dir(self), b.name)
			if _, err := os.Stat(p); err == nil {
				*b.path = p
				continue
			}
		}
		p, err := exec.LookPath(b.name)
		if err != nil {
			if b.name == "berth-init" {
				continue // only --init needs it; that start then fails clearly
			}
			return fmt.Errorf("cannot find %s beside berthd or in PATH: %w", b.name, errdefs.ErrNotFound)
		}
		*b.path = p
	}
	return nil
}

// firewallTable is the nftables table of a daemon: "berth" for the
// default bridge, one per bridge name otherwise, so that daemons with
// different bridges (tests side by side) never share rules.
func firewallTable(bridge string) string {
	if bridge == "" || bridge == network.DefaultBridgeName {
		return "berth"
	}
	return "berth-" + bridge
}

// newNetworkManager opens the network manager for cfg.
func newNetworkManager(ctx context.Context, cfg Config, db *metadata.DB) (*network.Manager, error) {
	var pools []ipam.Pool
	for _, p := range cfg.DefaultAddressPools {
		pool, err := ipam.ParsePool(p.Base, p.Size)
		if err != nil {
			return nil, fmt.Errorf("default-address-pools: %w", err)
		}
		pools = append(pools, pool)
	}
	return network.New(ctx, network.Config{
		DB:                  db,
		ExecRoot:            cfg.ExecRoot,
		BridgeName:          cfg.Bridge,
		BIP:                 cfg.BIP,
		DefaultAddressPools: pools,
		FirewallTable:       firewallTable(cfg.Bridge),
		IPForward:           cfg.IPForward == nil || *cfg.IPForward,
		MTU:                 cfg.MTU,
	})
}

// imageUsers tells the image service which containers use an image.
func (d *Daemon) imageUsers(id digest.Digest) ([]string, bool) {
	var users []string
	running := false
	for _, e := range d.ctrs.all() {
		e.mu.Lock()
		if e.c.Image == id.String() {
			users = append(users, e.c.ID)
			running = running || e.c.State.Running()
		}
		e.mu.Unlock()
	}
	slices.Sort(users)
	// An image a build is building on is in use, as by a running container
	// (named "build" in the conflict messages).
	if b := d.bld.made.Load(); b != nil && b.InUse(id) {
		users, running = append(users, "build"), true
	}
	return users, running
}

// stopAll stops every running container (daemon shutdown without live
// restore), in parallel, each with its own stop timeout.
func (d *Daemon) stopAll() {
	var wg sync.WaitGroup
	for _, e := range d.ctrs.all() {
		e.mu.Lock()
		run := e.c.State.Running()
		id := e.c.ID
		e.mu.Unlock()
		if !run {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			e, err := d.ctrs.get(id)
			if err != nil {
				return
			}
			e.op.Lock()
			defer e.op.Unlock()
			if err := d.stopLocked(ctx, e, StopOptions{}, false); err != nil && !errdefs.IsNotModified(err) {
				log.G(ctx).Warn("stop container at shutdown", "container", id, "error", err)
			}
		}()
	}
	wg.Wait()
}
