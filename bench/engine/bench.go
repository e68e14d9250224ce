//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/bench/internal/berthd"
	"github.com/berth-project/berth/bench/internal/dockerd"
	"github.com/berth-project/berth/bench/internal/host"
	"github.com/berth-project/berth/bench/internal/workdir"
	"github.com/berth-project/berth/internal/testutil"
)

// imageRef is the tag the busybox layer is imported as, in both daemons.
const imageRef = "bench/busybox:engine"

// removeTimeout bounds the removal of a failed scenario's containers and
// the final clean-up's: a daemon that does not answer is then stopped.
const removeTimeout = 2 * time.Minute

// engine is one daemon as the scenarios drive it: through the docker CLI
// or the Engine API, with its processes for the memory figures.
type engine struct {
	name string // "berth" or "docker"
	cli  dockerd.CLI
	api  *apiClient
	// daemons returns the daemon's own processes by name (berthd;
	// dockerd and containerd); shim says whether a command line is one of
	// its container shims.
	daemons func() []namedPid
	shim    func(argv []string) bool
}

type namedPid struct {
	name string
	pid  int
}

// options are the command line's settings.
type options struct {
	runs, warmup, rounds, count, trace int
	scenarios                          []scenario
	binDir, parent, logLevel           string
	timeout                            time.Duration
}

// bench holds what one bench run made.
type bench struct {
	opts    options
	dir     string
	suffix  string // random, in the bridge names, cgroup parent and label
	label   string // "org.berth.bench.engine=<suffix>", on every container
	berth   *berthd.Daemon
	docker  *refDocker
	engines []*engine // berth first
	idle    map[string]memSample
}

// newBench makes the work directory under parent.
func newBench(opts options) (*bench, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	b := &bench{opts: opts, suffix: hex.EncodeToString(r[:])[:6], idle: map[string]memSample{}}
	b.label = "org.berth.bench.engine=" + b.suffix
	var err error
	if b.dir, err = os.MkdirTemp(opts.parent, "bbe-"); err != nil {
		return nil, fmt.Errorf("make work directory: %w", err)
	}
	workdir.SpreadChildren(b.dir)
	return b, nil
}

// setup builds the berth binaries unless given, starts both daemons,
// imports the busybox image into both and samples their idle memory.
func (b *bench) setup(ctx context.Context) error {
	// The bench runs its own copy of the binaries: a rebuild of -bin
	// during the run (make build by someone else) must not change them.
	binDir := filepath.Join(b.dir, "bin")
	if b.opts.binDir == "" {
		start := time.Now()
		if err := berthd.Build(ctx, binDir); err != nil {
			return err
		}
		fmt.Printf("built berth into %s in %.1fs (make build)\n", binDir, time.Since(start).Seconds())
	} else if err := berthd.CopyBinaries(b.opts.binDir, binDir); err != nil {
		return err
	}
	var err error
	// The bench's bridges: berthd's default bridge (its nftables table is
	// berth-<bridge>) and dockerd's, both unique to this run.
	if b.berth, err = berthd.Start(ctx, filepath.Join(b.dir, "berth"), binDir, "bbe"+b.suffix, b.opts.logLevel); err != nil {
		b.berth = nil
		return err
	}
	if b.docker, err = startDocker(ctx, filepath.Join(b.dir, "docker"), "bbd"+b.suffix, "/bbe-"+b.suffix); err != nil {
		b.docker = nil
		return err
	}
	be, de := b.berth, b.docker
	b.engines = []*engine{
		{
			name: "berth", cli: be.CLI(), api: newAPIClient(be.Socket), shim: be.ShimOf,
			daemons: func() []namedPid { return []namedPid{{"berthd", be.Pid()}} },
		},
		{
			name: "docker", cli: de.CLI(), api: de.api, shim: de.shimOf,
			daemons: func() []namedPid {
				ps := []namedPid{{"dockerd", de.Pid()}}
				if pid := de.ContainerdPid(); pid != 0 {
					ps = append(ps, namedPid{"containerd", pid})
				}
				return ps
			},
		},
	}
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		return fmt.Errorf("busybox layer: %w", err)
	}
	tarPath := filepath.Join(b.dir, "busybox.tar")
	if err := os.WriteFile(tarPath, layer, 0o600); err != nil {
		return err
	}
	for _, e := range b.engines {
		if _, err := e.cli.Run(ctx, "import", tarPath, imageRef); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cliVersion, _ := b.engines[1].cli.Run(ctx, "version", "--format", "{{.Client.Version}}")
	fmt.Printf("berth engine bench: %d CPUs, kernel %s; docker CLI %s (%s) drives both daemons, only -H differs\n",
		goruntime.NumCPU(), strings.TrimSpace(string(kernel)), strings.TrimSpace(string(cliVersion)), dockerd.CLIBinary)
	from := b.opts.binDir
	if from == "" {
		from = "make build"
	}
	fmt.Printf("berth:  %s (binaries from %s), bridge %s, log level %s\n", be.Version, from, be.Bridge, b.opts.logLevel)
	fmt.Printf("docker: dockerd %s with its own containerd (overlay2), bridge %s (%s) without iptables, forwarding or masquerading\n",
		de.Version, de.bridge, de.subnet)
	fmt.Printf("image %s: `docker import` of testutil.BusyboxLayerTar (%d KiB) into both; roots under %s\n",
		imageRef, len(layer)>>10, b.dir)
	fmt.Printf("runs interleave the engines; each starts once the machine is quiet (at most %v of CPU in %v, or after %v)\n", quietBusy, quietWindow, quietLimit)
	for _, e := range b.engines {
		m, err := b.sampleMemory(ctx, e)
		if err != nil {
			return err
		}
		b.idle[e.name] = m
	}
	fmt.Println()
	return nil
}

// cleanup removes every container the bench made, stops both daemons and
// removes what they leave (mounts, bridges, berthd's nftables table,
// dockerd's cgroup parent) and the work directory.
func (b *bench) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
	defer cancel()
	var errs []error
	for _, e := range b.engines {
		if err := b.removeAll(ctx, e); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove containers: %w", e.name, err))
		}
	}
	errs = append(errs, b.berth.Stop(), b.docker.stop())
	if err := workdir.UnmountUnder(b.dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeAll force-removes every container of e with the bench's label,
// some at a time, and waits until their shims are gone.
func (b *bench) removeAll(ctx context.Context, e *engine) error {
	cs, err := e.api.list(ctx, b.label)
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, 8)
	for _, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := e.api.remove(ctx, c.ID, true); err != nil && !strings.Contains(err.Error(), "404") {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d removals failed, the first: %w", len(errs), len(cs), errs[0])
	}
	return waitFor(ctx, 60*time.Second, "shims of removed containers to exit", func() (bool, error) {
		pids, err := host.PidsOf(e.shim)
		return len(pids) == 0, err
	})
}

// waitFor polls cond every 20ms until it holds, it fails, ctx ends or
// limit passes.
func waitFor(ctx context.Context, limit time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s: not after %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
