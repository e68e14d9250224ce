package daemon

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
)

// contextTarOf is a build context holding only a Dockerfile.
func contextTarOf(t *testing.T, dockerfile string) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, dockerfile); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// TestBuildHoldsItsImage: while a build runs a step on an image, that
// image cannot be removed, even forced (as with a running container).
func TestBuildHoldsItsImage(t *testing.T) {
	td := newTestDaemon(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	base, err := td.imgs.Resolve(ctx, "busybox")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := td.Build(ctx, BuildOptions{Context: contextTarOf(t, "FROM busybox\nRUN echo step-running; sleep 60\n"), Out: pw})
		pw.Close()
		done <- err
	}()
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "step-running") {
				close(started)
				signalled = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("build ended before its RUN step ran: %v", err)
	}
	_, err = td.RemoveImage(ctx, base.ID.String(), image.RemoveOptions{Force: true})
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "running container build") {
		t.Errorf("remove the image a build runs on = %v, want a conflict naming the build", err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled build succeeded")
	}
	if _, err := td.imgs.Resolve(context.Background(), base.ID.String()); err != nil {
		t.Errorf("the base image went: %v", err)
	}
}
