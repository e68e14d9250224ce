package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/metadata"
)

const cacheDockerfile = `
FROM busybox
ENV A=1
COPY first.txt /first.txt
RUN cat /first.txt > /seen-first
COPY second.txt /second.txt
RUN cat /second.txt > /seen-second
`

// cachedSteps returns the numbers of the steps the output says were cached.
func cachedSteps(out string) []int {
	var steps []int
	cur := 0
	for _, line := range strings.Split(out, "\n") {
		var n, total int
		if _, err := fmt.Sscanf(line, "Step %d/%d :", &n, &total); err == nil {
			cur = n
		}
		if line == " ---> Using cache" {
			steps = append(steps, cur)
		}
	}
	return steps
}

// TestCache rebuilds from the cache, invalidates exactly the steps after
// a changed file (content or mode, not mtime), survives a restart of the
// stores, is skipped by NoCache and is emptied by Prune.
func TestCache(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{"Dockerfile": cacheDockerfile, "first.txt": "1\n", "second.txt": "2\n"})
	first, out := e.mustBuild(dir, Options{Tags: []string{"cached:latest"}})
	if got := cachedSteps(out); len(got) != 0 {
		t.Fatalf("first build used the cache at steps %v", got)
	}
	again, out := e.mustBuild(dir, Options{})
	if again != first || !slices.Equal(cachedSteps(out), []int{2, 3, 4, 5, 6}) || strings.Contains(out, "Running in") {
		t.Fatalf("rebuild made %s (first %s), cached %v:\n%s", shortID(again), shortID(first), cachedSteps(out), out)
	}

	// A new mtime alone changes nothing.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "second.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	if id, out := e.mustBuild(dir, Options{}); id != first {
		t.Errorf("a touched file rebuilt:\n%s", out)
	}

	// New content of second.txt rebuilds its COPY and what follows only.
	writeFiles(t, dir, map[string]string{"second.txt": "two\n"})
	edited, out := e.mustBuild(dir, Options{})
	if edited == first || !slices.Equal(cachedSteps(out), []int{2, 3, 4}) {
		t.Fatalf("after editing second.txt: cached %v:\n%s", cachedSteps(out), out)
	}
	if got, _ := e.readFile(edited, "/seen-second"); got != "two\n" {
		t.Errorf("/seen-second = %q", got)
	}
	// A mode change is a change too.
	if err := os.Chmod(filepath.Join(dir, "first.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, out := e.mustBuild(dir, Options{}); !slices.Equal(cachedSteps(out), []int{2}) {
		t.Errorf("after chmod of first.txt: cached %v:\n%s", cachedSteps(out), out)
	}

	// NoCache builds every step.
	fresh, out := e.mustBuild(dir, Options{NoCache: true})
	if strings.Contains(out, "Using cache") || fresh == edited {
		t.Errorf("NoCache build used the cache:\n%s", out)
	}

	// The cache is in the database: it survives closing and reopening
	// every store.
	e.reopen()
	if _, out := e.mustBuild(dir, Options{}); !slices.Equal(cachedSteps(out), []int{2, 3, 4, 5, 6}) {
		t.Errorf("after reopening: cached %v:\n%s", cachedSteps(out), out)
	}

	// Prune drops the cache; what builds returned stays, tagged or not.
	if _, err := e.b.Prune(e.ctx); err != nil {
		t.Fatal(err)
	}
	if img, err := e.svc.Resolve(e.ctx, "cached:latest"); err != nil || img.ID != first {
		t.Errorf("cached:latest after prune: %v (%v)", img.ID, err)
	}
	if _, err := e.svc.Resolve(e.ctx, fresh.String()); err != nil {
		t.Errorf("the untagged build result %s went with prune: %v", shortID(fresh), err)
	}
	if _, out := e.mustBuild(dir, Options{}); len(cachedSteps(out)) != 0 {
		t.Errorf("after prune: cached %v:\n%s", cachedSteps(out), out)
	}

	// Once the user removes a result (keeping its parents, which rmi
	// would delete too), the step images only the cache kept go with
	// Prune, with their layers.
	other := e.writeContext(map[string]string{"Dockerfile": "FROM busybox\nRUN date +%s%N > /stamp\nENV X=1\n"})
	id, _ := e.mustBuild(other, Options{})
	img, err := e.svc.Resolve(e.ctx, id.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Remove(e.ctx, id.String(), image.RemoveOptions{NoPrune: true}); err != nil {
		t.Fatal(err)
	}
	reclaimed, err := e.b.Prune(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reclaimed <= 0 {
		t.Errorf("prune reclaimed %d bytes", reclaimed)
	}
	if _, err := e.svc.Resolve(e.ctx, img.Parent.String()); err == nil {
		t.Errorf("the RUN step's image %s, kept only by the cache, survived prune", shortID(img.Parent))
	}
}

// reopen closes the snapshotter and database and opens them again with
// a new image service and builder, as a daemon restart does.
func (e *env) reopen() {
	t := e.t
	if err := e.sn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.db, err = metadata.Open(filepath.Join(e.root, "metadata.db")); err != nil {
		t.Fatal(err)
	}
	e.openSnapshotter()
	cs, err := content.Open(filepath.Join(e.root, "content"), filepath.Join(e.root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	e.svc = image.New(image.Config{Content: cs, DB: e.db, Snapshotter: e.sn, Overlay: e.kind == "overlay", TmpDir: filepath.Join(e.root, "tmp")})
	e.cfg.Images, e.cfg.Snapshotter, e.cfg.DB = e.svc, e.sn, e.db
	if e.b, err = New(e.cfg); err != nil {
		t.Fatal(err)
	}
}

// TestPruneDuringBuild prunes while a build runs on a step image only the
// cache keeps: the image stays (the build holds it, and InUse says so)
// and goes with a Prune after the build.
func TestPruneDuringBuild(t *testing.T) {
	e := newEnv(t)
	first := e.writeContext(map[string]string{"Dockerfile": "FROM busybox\nENV X=1\nENV Y=2\n"})
	result, _ := e.mustBuild(first, Options{})
	img, err := e.svc.Resolve(e.ctx, result.String())
	if err != nil {
		t.Fatal(err)
	}
	step := img.Parent // ENV X=1: untagged, only in the cache once result goes
	if _, err := e.svc.Remove(e.ctx, result.String(), image.RemoveOptions{NoPrune: true}); err != nil {
		t.Fatal(err)
	}

	second := e.writeContext(map[string]string{"Dockerfile": "FROM busybox\nENV X=1\nRUN sleep 300\n"})
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	w := &watchWriter{want: " ---> Running in ", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.b.Build(ctx, Options{ContextDir: second, Out: w})
		done <- err
	}()
	select {
	case <-w.seen:
	case err := <-done:
		t.Fatalf("build ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the RUN step did not start")
	}
	if !e.b.InUse(step) {
		t.Errorf("InUse(%s) is false during the build", shortID(step))
	}
	if _, err := e.b.Prune(e.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resolve(e.ctx, step.String()); err != nil {
		t.Errorf("the step image the build uses went with prune: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("build error %v", err)
	}
	if e.b.InUse(step) {
		t.Errorf("InUse(%s) is still true after the build", shortID(step))
	}
}
