//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/bench/internal/berthd"
	"github.com/berth-project/berth/bench/internal/dockerd"
	"github.com/berth-project/berth/bench/internal/host"
	"github.com/berth-project/berth/bench/internal/workdir"
	"github.com/berth-project/berth/internal/testutil"
)

const (
	baseRef  = "bench/busybox:build" // the imported busybox layer, in both daemons
	imageRef = "bench/build:ref"     // what every build tags
	// cleanupTimeout bounds the final removal of containers and images:
	// a daemon that does not answer is then stopped.
	cleanupTimeout = 2 * time.Minute
)

// engine is one daemon as the bench drives it: through the docker CLI.
type engine struct {
	name    string // "berth" or "docker"
	cli     dockerd.CLI
	iidFile string // where --iidfile writes the built image's ID
	lastID  string // the image its last successful build made
	// steps and cached count the Dockerfile steps of its last build and
	// those that hit the cache, from its output.
	steps, cached int
}

// bench holds what one bench run made.
type bench struct {
	opts         options
	dir          string
	suffix       string // random, in the bridge name and cgroup parent
	contextDir   string
	baseTar      string // the busybox layer, imported into both
	cgroupParent string // dockerd's, "/bbb-<suffix>"
	berth        *berthd.Daemon
	docker       *dockerd.Daemon
	engines      []*engine // berth first
}

// newBench makes the work directory under parent.
func newBench(opts options) (*bench, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	b := &bench{opts: opts, suffix: hex.EncodeToString(r[:])[:6]}
	b.cgroupParent = "/bbb-" + b.suffix
	var err error
	if b.dir, err = os.MkdirTemp(opts.parent, "bbb-"); err != nil {
		return nil, fmt.Errorf("make work directory: %w", err)
	}
	workdir.SpreadChildren(b.dir)
	b.contextDir = filepath.Join(b.dir, "context")
	b.baseTar = filepath.Join(b.dir, "busybox.tar")
	return b, nil
}

// setup builds the berth binaries unless given, starts both daemons,
// writes the context, imports the base into both, builds the reference
// once on each and checks what its image holds.
func (b *bench) setup(ctx context.Context) error {
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
	// berthd's snapshot directories (one per layer) spread over block
	// groups as dockerd.Start makes dockerd's overlay2 layer directories
	// do, so that neither engine's creates pay for the other's or the
	// reset's deletes (see workdir.SpreadChildren).
	berthDir := filepath.Join(b.dir, "berth")
	snapshots := filepath.Join(berthDir, "data", "snapshots")
	if err := os.MkdirAll(snapshots, 0o700); err != nil {
		return err
	}
	workdir.SpreadChildren(snapshots)
	var err error
	if b.berth, err = berthd.Start(ctx, berthDir, binDir, "bbb"+b.suffix, "info"); err != nil {
		b.berth = nil
		return err
	}
	if b.docker, err = dockerd.Start(ctx, filepath.Join(b.dir, "docker"),
		"--bridge=none", "--iptables=false", "--ip6tables=false",
		"--ip-forward=false", "--ip-masq=false", "--cgroup-parent="+b.cgroupParent); err != nil {
		b.docker = nil
		return err
	}
	b.engines = []*engine{
		{name: "berth", cli: b.berth.CLI(), iidFile: filepath.Join(b.dir, "berth.iid")},
		{name: "docker", cli: b.docker.CLI(), iidFile: filepath.Join(b.dir, "docker.iid")},
	}
	if err := writeContext(b.contextDir, baseRef, b.opts.files); err != nil {
		return err
	}
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		return fmt.Errorf("busybox layer: %w", err)
	}
	if err := os.WriteFile(b.baseTar, layer, 0o600); err != nil {
		return err
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cliVersion, _ := b.engines[1].cli.Run(ctx, "version", "--format", "{{.Client.Version}}")
	fmt.Printf("berth build bench: %d CPUs, kernel %s; docker CLI %s (%s) drives both daemons, only -H differs\n",
		goruntime.NumCPU(), strings.TrimSpace(string(kernel)), strings.TrimSpace(string(cliVersion)), dockerd.CLIBinary)
	from := b.opts.binDir
	if from == "" {
		from = "make build"
	}
	fmt.Printf("berth:  %s (binaries from %s)\n", b.berth.Version, from)
	fmt.Printf("docker: dockerd %s with its own containerd (overlay2), classic builder (DOCKER_BUILDKIT=0), --bridge=none\n", b.docker.Version)
	fmt.Printf("build:  DOCKER_BUILDKIT=0 docker -H ... %s CONTEXT; base %s imported from testutil.BusyboxLayerTar (%d KiB)\n",
		strings.Join(buildArgs("IIDFILE"), " "), baseRef, len(layer)>>10)
	fmt.Printf("context: Dockerfile + %d files under src/ (1-8 KiB each); RUN steps make %d + %d files; roots under %s\n",
		b.opts.files, dataFiles, genDirs*genFiles, b.dir)
	for _, e := range b.engines {
		if err := b.reset(ctx, e); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		d, err := b.build(ctx, e)
		if err != nil {
			return fmt.Errorf("%s: first build: %w", e.name, err)
		}
		if err := b.check(ctx, e); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		fmt.Printf("checked %s: first build %.2fs, image %.19s runs and holds %d + %d + %d files\n",
			e.name, d.Seconds(), e.lastID, dataFiles, genDirs*genFiles, b.opts.files)
	}
	fmt.Println()
	return nil
}

// buildArgs are the docker CLI's arguments before the context directory.
func buildArgs(iidFile string) []string {
	return []string{"build", "--network", "none", "--force-rm", "-t", imageRef, "--iidfile", iidFile}
}

// build builds the reference context on e after a sync(2), records the
// image ID in e.lastID and returns the build's wall time: the docker
// CLI's whole run, from exec to exit.
func (b *bench) build(ctx context.Context, e *engine) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.timeout)
	defer cancel()
	e.lastID = "" // until this build succeeds
	_ = os.Remove(e.iidFile)
	cmd := e.cli.Command(ctx, append(buildArgs(e.iidFile), b.contextDir)...)
	cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	unix.Sync()
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if ctx.Err() != nil {
		return 0, fmt.Errorf("docker build: %w", context.Cause(ctx))
	}
	if err != nil {
		return 0, fmt.Errorf("docker build: %w: %s", err, tail(out.Bytes()))
	}
	id, err := os.ReadFile(e.iidFile)
	if err != nil || len(id) == 0 {
		return 0, fmt.Errorf("docker build wrote no image ID (%v): %s", err, tail(out.Bytes()))
	}
	e.lastID = strings.TrimSpace(string(id))
	e.steps, e.cached = countSteps(out.Bytes())
	return d, nil
}

// countSteps counts the steps in a classic build's output ("Step 3/11 :
// ...") and those that hit the cache (" ---> Using cache").
func countSteps(out []byte) (steps, cached int) {
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Step "):
			steps++
		case strings.TrimSpace(line) == "---> Using cache":
			cached++
		}
	}
	return steps, cached
}

// check runs the built image and compares what it lists with what the
// Dockerfile made.
func (b *bench) check(ctx context.Context, e *engine) error {
	out, err := e.cli.Run(ctx, "run", "--rm", "--network", "none", imageRef, "sh", "-c", checkCommand)
	if err != nil {
		return fmt.Errorf("run the built image: %w", err)
	}
	if want := wantCheck(b.opts.files); strings.TrimSpace(string(out)) != strings.TrimSpace(want) {
		return fmt.Errorf("the built image holds %q files, want %q", strings.Fields(string(out)), strings.Fields(want))
	}
	return nil
}

// reset makes e cold: no container, no image and no build cache, then
// the base imported again. It checks that nothing is left.
func (b *bench) reset(ctx context.Context, e *engine) error {
	if err := removeContainers(ctx, e); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"image", "prune", "-a", "-f"},
		{"builder", "prune", "-a", "-f"},
	} {
		if _, err := e.cli.Run(ctx, args...); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	left, err := e.cli.Run(ctx, "images", "-aq")
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if ids := strings.Fields(string(left)); len(ids) > 0 {
		return fmt.Errorf("reset: image prune -a left %d images: %s", len(ids), strings.Join(ids, " "))
	}
	e.lastID = ""
	if _, err := e.cli.Run(ctx, "import", b.baseTar, baseRef); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}

// removeContainers force-removes every container of e (all are the
// bench's: the daemons are its own).
func removeContainers(ctx context.Context, e *engine) error {
	out, err := e.cli.Run(ctx, "ps", "-aq")
	if err != nil {
		return err
	}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		if _, err := e.cli.Run(ctx, append([]string{"rm", "-f"}, ids...)...); err != nil {
			return err
		}
	}
	return nil
}

// cleanup removes every container and image the bench made, stops both
// daemons and removes what they leave (mounts, berthd's bridge and
// nftables table, dockerd's containerd, shims and cgroup parent) and the
// work directory.
func (b *bench) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	for _, e := range b.engines {
		if err := removeContainers(ctx, e); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove containers: %w", e.name, err))
		}
		if _, err := e.cli.Run(ctx, "image", "prune", "-a", "-f"); err != nil {
			errs = append(errs, fmt.Errorf("%s: remove images: %w", e.name, err))
		}
	}
	errs = append(errs, b.berth.Stop())
	if b.docker != nil {
		execRoot := b.docker.ExecRoot
		errs = append(errs, b.docker.Stop())
		if ps, err := host.Processes(); err == nil {
			for _, p := range ps {
				if len(p.Argv) > 0 && filepath.Base(p.Argv[0]) == "containerd-shim-runc-v2" && host.ArgsUnder(p.Argv, execRoot) {
					_ = unix.Kill(p.Pid, unix.SIGKILL)
					errs = append(errs, fmt.Errorf("containerd-shim %d outlived its containers: killed", p.Pid))
				}
			}
		}
	}
	killed, err := host.RemoveCgroup(b.cgroupParent)
	if killed > 0 {
		errs = append(errs, fmt.Errorf("%d processes of dockerd's containers outlived it: killed", killed))
	}
	errs = append(errs, err)
	if err := workdir.UnmountUnder(b.dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// tail returns the end of a build's output, for an error.
func tail(out []byte) string {
	out = bytes.TrimSpace(out)
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return string(out)
}
