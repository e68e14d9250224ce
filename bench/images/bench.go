//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/bench/internal/dockerd"
	"github.com/berth-project/berth/bench/internal/timing"
	"github.com/berth-project/berth/bench/internal/workdir"
	"github.com/berth-project/berth/internal/image"
)

// impl is one implementation of a scenario's operation. before and after
// run around every op, outside the timing; after runs whenever before
// succeeded.
type impl struct {
	name   string
	before func(ctx context.Context) error
	op     func(ctx context.Context) error
	after  func(ctx context.Context) error
	// cpu returns the cumulative user+system CPU time of the processes
	// that do the work; its difference across op is the op's CPU time.
	cpu         func() time.Duration
	unavailable string // why it does not run, if it does not

	wall, cpuTimes []time.Duration
}

// scenario is one measured operation.
type scenario struct {
	name string
	runs int // measured rounds unless -n says otherwise
	// impls returns the doc line and the implementations, berth first; the
	// one named "docker" is the baseline of the ratios.
	impls func(ctx context.Context, b *bench) (string, []*impl, error)
}

var scenarios = []scenario{
	{name: "pull-200mb", runs: 5, impls: pullBig},
	{name: "pull-10-layers", runs: 7, impls: pullTen},
	{name: "save-10-layers", runs: 7, impls: saveTen},
	{name: "load-10-layers", runs: 7, impls: loadTen},
}

// bench holds what one bench run made.
type bench struct {
	dir     string
	n       int
	reg     *benchRegistry
	dk      *dockerd.Daemon
	big     *fixture // one layer, ~200 MB unpacked
	ten     *fixture // ten layers, ~20 MB each
	saved   *berthRoot
	archive string // `docker save` of ten
	seq     int
}

// setup starts the registry and dockerd and pushes the fixtures that the
// selected scenarios need.
func (b *bench) setup(ctx context.Context, selected []scenario) error {
	var err error
	if b.reg, err = startRegistry(filepath.Join(b.dir, "registry")); err != nil {
		return err
	}
	// No bridge and no iptables, forwarding or masquerading: dockerd
	// leaves the host network alone.
	if b.dk, err = dockerd.Start(ctx, filepath.Join(b.dir, "docker"),
		"--bridge=none", "--iptables=false", "--ip6tables=false",
		"--ip-forward=false", "--ip-masq=false"); err != nil {
		b.dk = nil
		return err
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cli, _ := b.dk.Docker(ctx, "version", "--format", "{{.Client.Version}}")
	fmt.Printf("berth image bench: warm-up round, then measured rounds interleaved; sync before each run\n")
	fmt.Printf("kernel %s, %d CPUs; dockerd %s (overlay2, own containerd), docker CLI %s; registry %s; data roots under %s\n",
		strings.TrimSpace(string(kernel)), goruntime.NumCPU(), b.dk.Version, strings.TrimSpace(string(cli)), b.reg.host, b.dir)
	need := map[string]bool{}
	for _, sc := range selected {
		need[sc.name] = true
	}
	if need["pull-200mb"] {
		start := time.Now()
		if b.big, err = pushFixture(b.reg, "bench/big", 1, 1, 200<<20); err != nil {
			return err
		}
		fmt.Printf("fixture %s: 1 layer, %s unpacked in %d files, %s gzip (made and pushed in %.1fs)\n",
			b.big.ref, mib(b.big.unpacked), b.big.files, mib(b.big.packed), time.Since(start).Seconds())
	}
	if need["pull-10-layers"] || need["save-10-layers"] || need["load-10-layers"] {
		start := time.Now()
		if b.ten, err = pushFixture(b.reg, "bench/ten", 100, 10, 20<<20); err != nil {
			return err
		}
		fmt.Printf("fixture %s: 10 layers, %s unpacked in %d files, %s gzip (made and pushed in %.1fs)\n",
			b.ten.ref, mib(b.ten.unpacked), b.ten.files, mib(b.ten.packed), time.Since(start).Seconds())
	}
	fmt.Println()
	return nil
}

func (b *bench) cleanup() error {
	var errs []error
	errs = append(errs, b.saved.close(), b.dk.Stop(), b.reg.stop())
	if err := workdir.UnmountUnder(b.dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// path returns a new path under the work directory.
func (b *bench) path(prefix string) string {
	b.seq++
	return filepath.Join(b.dir, fmt.Sprintf("%s-%d", prefix, b.seq))
}

// runScenario runs the warm-up round and the measured rounds of sc and
// prints its table.
func (b *bench) runScenario(ctx context.Context, sc scenario) error {
	doc, impls, err := sc.impls(ctx, b)
	if err != nil {
		return err
	}
	var active []*impl
	for _, im := range impls {
		if im.unavailable == "" {
			active = append(active, im)
		}
	}
	runs := sc.runs
	if b.n > 0 {
		runs = b.n
	}
	for round := -1; round < runs; round++ {
		for k := range active {
			im := active[(max(round, 0)+k)%len(active)]
			wall, cpu, err := b.once(ctx, im)
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", ctx.Err())
			}
			if err != nil {
				return fmt.Errorf("%s: %w", im.name, err)
			}
			if round >= 0 {
				im.wall = append(im.wall, wall)
				im.cpuTimes = append(im.cpuTimes, cpu)
			}
		}
	}
	printResults(sc.name, doc, impls)
	return nil
}

// once runs one op of im with its before and after, and returns its wall
// and CPU time.
func (b *bench) once(ctx context.Context, im *impl) (wall, cpu time.Duration, err error) {
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	if im.before != nil {
		if err := im.before(ctx); err != nil {
			return 0, 0, fmt.Errorf("before: %w", err)
		}
	}
	if im.after != nil {
		defer func() {
			if aerr := im.after(context.WithoutCancel(ctx)); aerr != nil {
				err = errors.Join(err, fmt.Errorf("after: %w", aerr))
			}
		}()
	}
	unix.Sync()
	c0 := im.cpu()
	start := time.Now()
	err = im.op(ctx)
	wall = time.Since(start)
	return wall, im.cpu() - c0, err
}

// The CPU clocks of the implementations.

func rusage(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfCPU is this process's CPU time: berth's operations run in it.
func selfCPU() time.Duration { return rusage(unix.RUSAGE_SELF) }

// childCPU is the CPU time of this process's waited-for children (the
// docker CLI, the floor's shell and what it waited for).
func childCPU() time.Duration { return rusage(unix.RUSAGE_CHILDREN) }

// dockerCPU is dockerd's CPU time (with its waited-for children, such as
// the re-executed untar) plus childCPU.
func (b *bench) dockerCPU() time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", b.dk.Pid()))
	var ticks int64
	if err == nil {
		// The fields after the command name, which is in parentheses.
		s := string(raw)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// utime, stime, cutime, cstime are fields 14-17 of stat(5); the
		// slice starts at field 3.
		for _, f := range fields[11:15] {
			v, _ := strconv.ParseInt(f, 10, 64)
			ticks += v
		}
	}
	const userHZ = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration(ticks)*time.Second/userHZ + childCPU()
}

// The implementations.

// berthPull pulls ref into a fresh berth data root per run.
func (b *bench) berthPull(ref string) *impl {
	var root *berthRoot
	return &impl{
		name: "berth",
		before: func(ctx context.Context) (err error) {
			root, err = openBerth(b.path("berth"))
			return err
		},
		op: func(ctx context.Context) error {
			_, err := root.svc.Pull(ctx, ref, image.PullOptions{})
			return err
		},
		after: func(ctx context.Context) error {
			err := root.close()
			root = nil
			return err
		},
		cpu: selfCPU,
	}
}

// dockerPull runs `docker pull -q ref` with the image removed before.
func (b *bench) dockerPull(ref string) *impl {
	return &impl{
		name:   "docker",
		before: func(ctx context.Context) error { return b.dockerRemove(ctx, ref) },
		op: func(ctx context.Context) error {
			_, err := b.dk.Docker(ctx, "pull", "-q", ref)
			return err
		},
		cpu: b.dockerCPU,
	}
}

// dockerRemove removes ref from dockerd, if it is there, and prunes
// dangling images.
func (b *bench) dockerRemove(ctx context.Context, ref string) error {
	out, err := b.dk.Docker(ctx, "images", "-q", ref)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(out))) > 0 {
		if _, err := b.dk.Docker(ctx, "rmi", ref); err != nil {
			return err
		}
	}
	_, err = b.dk.Docker(ctx, "image", "prune", "-f")
	return err
}

// floorPull is `curl | gunzip | tar -x` of the one layer of f into a
// fresh directory.
func (b *bench) floorPull(f *fixture) *impl {
	var dir string
	return &impl{
		name: "floor",
		before: func(ctx context.Context) error {
			dir = b.path("floor")
			return os.Mkdir(dir, 0o755)
		},
		op: func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, "/bin/bash", "-o", "pipefail", "-c",
				`curl -sSf "$1" | gunzip | tar -x -C "$2"`, "floor", f.blobURLs[0], dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("curl | gunzip | tar -x: %w: %s", err, out)
			}
			return nil
		},
		after: func(ctx context.Context) error { return os.RemoveAll(dir) },
		cpu:   childCPU,
	}
}

func pullBig(ctx context.Context, b *bench) (string, []*impl, error) {
	doc := fmt.Sprintf("pull of 1 layer, %s unpacked in %d files (%s gzip)", mib(b.big.unpacked), b.big.files, mib(b.big.packed))
	return doc, []*impl{b.berthPull(b.big.ref), b.dockerPull(b.big.ref), b.floorPull(b.big)}, nil
}

func pullTen(ctx context.Context, b *bench) (string, []*impl, error) {
	doc := fmt.Sprintf("pull of 10 layers, %s unpacked in %d files (%s gzip)", mib(b.ten.unpacked), b.ten.files, mib(b.ten.packed))
	return doc, []*impl{b.berthPull(b.ten.ref), b.dockerPull(b.ten.ref)}, nil
}

// dockerHas pulls ref into dockerd unless it is there.
func (b *bench) dockerHas(ctx context.Context, ref string) error {
	out, err := b.dk.Docker(ctx, "images", "-q", ref)
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		return err
	}
	_, err = b.dk.Docker(ctx, "pull", "-q", ref)
	return err
}

func saveTen(ctx context.Context, b *bench) (string, []*impl, error) {
	doc := fmt.Sprintf("save of the 10-layer image (%s unpacked) to a file", mib(b.ten.unpacked))
	if err := b.dockerHas(ctx, b.ten.ref); err != nil {
		return "", nil, err
	}
	var file string
	docker := &impl{
		name:   "docker",
		before: func(ctx context.Context) error { file = b.path("docker-save") + ".tar"; return nil },
		op: func(ctx context.Context) error {
			_, err := b.dk.Docker(ctx, "save", "-o", file, b.ten.ref)
			return err
		},
		after: func(ctx context.Context) error { return os.Remove(file) },
		cpu:   b.dockerCPU,
	}
	berth, err := b.berthSave(ctx)
	if err != nil {
		return "", nil, err
	}
	return doc, []*impl{berth, docker}, nil
}

func loadTen(ctx context.Context, b *bench) (string, []*impl, error) {
	if err := b.dockerHas(ctx, b.ten.ref); err != nil {
		return "", nil, err
	}
	if b.archive == "" {
		b.archive = filepath.Join(b.dir, "ten-docker-save.tar")
		if _, err := b.dk.Docker(ctx, "save", "-o", b.archive, b.ten.ref); err != nil {
			return "", nil, err
		}
	}
	st, err := os.Stat(b.archive)
	if err != nil {
		return "", nil, err
	}
	doc := fmt.Sprintf("load of the 10-layer image from `docker save`'s archive (%s)", mib(st.Size()))
	docker := &impl{
		name:   "docker",
		before: func(ctx context.Context) error { return b.dockerRemove(ctx, b.ten.ref) },
		op: func(ctx context.Context) error {
			_, err := b.dk.Docker(ctx, "load", "-q", "-i", b.archive)
			return err
		},
		cpu: b.dockerCPU,
	}
	return doc, []*impl{b.berthLoad(), docker}, nil
}

// printResults prints one scenario's table: median and p90 wall time,
// median CPU time and the ratio of wall medians to docker's.
func printResults(name, doc string, impls []*impl) {
	var baseline time.Duration
	for _, im := range impls {
		if im.name == "docker" && len(im.wall) > 0 {
			baseline = timing.Median(im.wall)
		}
	}
	fmt.Printf("%s: %s\n", name, doc)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "impl\tmedian\tp90\tcpu\tvs docker\t")
	for _, im := range impls {
		if len(im.wall) == 0 {
			reason := im.unavailable
			if reason == "" {
				reason = "no results"
			}
			fmt.Fprintf(w, "%s\tn/a\tn/a\tn/a\tn/a\t  %s\n", im.name, reason)
			continue
		}
		ratio := "n/a"
		if baseline > 0 {
			ratio = fmt.Sprintf("%.2f", float64(timing.Median(im.wall))/float64(baseline))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t\n", im.name, ms(timing.Median(im.wall)), ms(timing.Percentile(im.wall, 90)), ms(timing.Median(im.cpuTimes)), ratio)
	}
	w.Flush()
	fmt.Println()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}
