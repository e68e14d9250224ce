package content

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
)

// helperEnv, when set in the environment, makes the test binary act as a
// helper process instead of running tests (see TestMain).
const helperEnv = "BERTH_CONTENT_TEST_HELPER"

func TestMain(m *testing.M) {
	if arg := os.Getenv(helperEnv); arg != "" {
		if err := lockHelper(arg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lockHelper runs in a child process: it opens the store named by arg
// ("root|tmpDir|ref"), takes a Writer for ref, writes a few bytes, says
// "locked" on stdout and holds the ref until its stdin is closed.
func lockHelper(arg string) error {
	parts := strings.Split(arg, "|")
	if len(parts) != 3 {
		return fmt.Errorf("bad helper argument %q", arg)
	}
	s, err := Open(parts[0], parts[1])
	if err != nil {
		return err
	}
	w, err := s.Writer(context.Background(), parts[2])
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("written by the child, ")); err != nil {
		return err
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	return w.Close()
}

func TestWriterRefLocked(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	const ref = "pull-sha256:locked"
	// Many goroutines race for one ref: exactly one wins.
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []*Writer
		losers  []error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Writer(ctx, ref)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				losers = append(losers, err)
			} else {
				winners = append(winners, w)
			}
		}()
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d writers got ref %s at once, want 1 (errors: %v)", len(winners), ref, losers)
	}
	for _, err := range losers {
		if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "is locked") || !strings.Contains(err.Error(), ref) {
			t.Errorf("second writer error %q: want an ErrUnavailable \"ref %s is locked\"", err, ref)
		}
	}
	w := winners[0]
	if err := s.Abort(ctx, ref); !errdefs.IsUnavailable(err) {
		t.Errorf("Abort of a held ref = %v, want ErrUnavailable", err)
	}
	if err := s.PruneIngests(ctx, -time.Hour); err != nil {
		t.Fatal(err)
	}
	if ingests, _ := s.Ingests(ctx); len(ingests) != 1 || ingests[0].Ref != ref {
		t.Errorf("PruneIngests removed a held ingest: %+v", ingests)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := s.Writer(ctx, ref)
	if err != nil {
		t.Fatalf("Writer after the holder closed: %v", err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := s.Abort(ctx, ref); !errdefs.IsNotFound(err) {
		t.Errorf("Abort of an absent ingest = %v, want ErrNotFound", err)
	}
	assertEmpty(t, s)
}

func TestWriterRefLockedAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root, tmp := filepath.Join(dir, "content"), filepath.Join(dir, "tmp")
	s, err := Open(root, tmp)
	if err != nil {
		t.Fatal(err)
	}
	const ref = "pull-sha256:across"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+root+"|"+tmp+"|"+ref)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v; want \"locked\"", line, err)
	}

	_, err = s.Writer(ctx, ref)
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "is locked") {
		t.Errorf("Writer while another process holds the ref = %v, want ErrUnavailable \"is locked\"", err)
	}
	if err := s.Abort(ctx, ref); !errdefs.IsUnavailable(err) {
		t.Errorf("Abort while another process holds the ref = %v, want ErrUnavailable", err)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	exited = true
	// The child's bytes are resumed by this process.
	w, err := s.Writer(ctx, ref)
	if err != nil {
		t.Fatalf("Writer after the other process released the ref: %v", err)
	}
	defer w.Close()
	prefix := []byte("written by the child, ")
	if w.Offset() != int64(len(prefix)) || w.Digest() != digest.FromBytes(prefix) {
		t.Errorf("resumed offset %d digest %s, want %d %s", w.Offset(), w.Digest(), len(prefix), digest.FromBytes(prefix))
	}
	whole := append(prefix, "finished by the parent"...)
	w.Write(whole[len(prefix):])
	if err := w.Commit(ctx, int64(len(whole)), digest.FromBytes(whole)); err != nil {
		t.Fatal(err)
	}
}

func TestWriterResume(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	data := randomBytes(t, 300_000)
	desc := descOf(data)
	const ref = "pull-" + "resume"

	w, err := s.Writer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 0 {
		t.Fatalf("fresh writer offset %d, want 0", w.Offset())
	}
	if _, err := w.Write(data[:123_456]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errdefs.IsConflict(err) {
		t.Errorf("Write after Close = %v, want ErrConflict", err)
	}

	ingests, err := s.Ingests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ingests) != 1 || ingests[0].Ref != ref || ingests[0].Offset != 123_456 || ingests[0].StartedAt.IsZero() || ingests[0].UpdatedAt.IsZero() {
		t.Errorf("Ingests = %+v, want ref %s at offset 123456 with times", ingests, ref)
	}
	if _, err := s.Info(ctx, desc.Digest); !errdefs.IsNotFound(err) {
		t.Errorf("partial blob visible: Info = %v", err)
	}

	w, err = s.Writer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 123_456 {
		t.Errorf("resumed offset %d, want 123456", w.Offset())
	}
	if want := digest.FromBytes(data[:123_456]); w.Digest() != want {
		t.Errorf("resumed digest %s, want %s", w.Digest(), want)
	}
	if _, err := io.Copy(w, bytes.NewReader(data[w.Offset():])); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx, desc.Size, desc.Digest); !errdefs.IsConflict(err) {
		t.Errorf("second Commit = %v, want ErrConflict", err)
	}
	if got, err := s.ReadBlob(ctx, desc.Digest); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob after resumed write: %v", err)
	}
	if ingests, _ := s.Ingests(ctx); len(ingests) != 0 {
		t.Errorf("ingests left after Commit: %+v", ingests)
	}
	// Committing the same blob again under a new ref is not an error.
	w, err = s.Writer(ctx, "again")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Errorf("Commit of a present blob without checks: %v", err)
	}
	if files := blobFiles(t, s); len(files) != 1 {
		t.Errorf("files under blobs/: %v, want one", files)
	}
}

func TestWriterTruncate(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	w, err := s.Writer(ctx, "truncate")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("garbage from a server that ignored Range"))
	if err := w.Truncate(100); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Truncate past the end = %v, want ErrInvalidArgument", err)
	}
	if err := w.Truncate(-1); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Truncate(-1) = %v, want ErrInvalidArgument", err)
	}
	if err := w.Truncate(7); err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 7 || w.Digest() != digest.FromString("garbage") {
		t.Errorf("after Truncate(7): offset %d digest %s, want 7 and the digest of \"garbage\"", w.Offset(), w.Digest())
	}
	if err := w.Truncate(0); err != nil {
		t.Fatal(err)
	}
	data := []byte("the real content")
	w.Write(data)
	if err := w.Commit(ctx, int64(len(data)), digest.FromBytes(data)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadBlob(ctx, digest.FromBytes(data)); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob after truncate: %q, %v", got, err)
	}
}

func TestWriterCommitMismatch(t *testing.T) {
	ctx := context.Background()
	data := []byte("some layer bytes")
	for _, tc := range []struct {
		name     string
		size     int64
		expected digest.Digest
	}{
		{"digest", int64(len(data)), digest.FromString("other")},
		{"size", int64(len(data)) + 5, digest.FromBytes(data)},
		{"truncated", int64(len(data)) * 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			w, err := s.Writer(ctx, "mismatch")
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			err = w.Commit(ctx, tc.size, tc.expected)
			if !errdefs.IsDataLoss(err) {
				t.Fatalf("Commit = %v, want ErrDataLoss", err)
			}
			if tc.expected != "" && tc.size == int64(len(data)) &&
				(!strings.Contains(err.Error(), string(tc.expected)) || !strings.Contains(err.Error(), string(digest.FromBytes(data)))) {
				t.Errorf("error %q does not name both digests", err)
			}
			if tc.size != int64(len(data)) && !strings.Contains(err.Error(), fmt.Sprint(tc.size)) {
				t.Errorf("error %q does not name the expected size", err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("Close after failed Commit: %v", err)
			}
			assertEmpty(t, s)
		})
	}
}

func TestPruneIngests(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	old := time.Now().Add(-2 * time.Hour)
	makeIngest := func(ref string, age time.Time) *Writer {
		w, err := s.Writer(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(ref))
		dir := s.ingestDir(ref)
		for _, p := range []string{filepath.Join(dir, dataFile), filepath.Join(dir, recordFile), dir} {
			if err := os.Chtimes(p, age, age); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}
	makeIngest("stale", old).Close()
	makeIngest("fresh", time.Now()).Close()
	held := makeIngest("stale-but-held", old)
	defer held.Close()
	// A directory without record nor data, as a crash right after mkdir leaves.
	empty := filepath.Join(s.ingest, "0000")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(empty, old, old); err != nil {
		t.Fatal(err)
	}

	if err := s.PruneIngests(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	ingests, err := s.Ingests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, i := range ingests {
		refs = append(refs, i.Ref)
	}
	if len(refs) != 2 || !contains(refs, "fresh") || !contains(refs, "stale-but-held") {
		t.Errorf("after PruneIngests(1h): ingests %q, want fresh and stale-but-held", refs)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
