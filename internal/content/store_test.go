package content

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

// newStore opens a store in a fresh temporary directory, with the ingest
// directory beside the blobs as berthd lays them out.
func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "content"), filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(b), Size: int64(len(b))}
}

// blobFiles lists every file under the store's blobs directory, relative
// to it, so that tests can assert nothing partial was left there.
func blobFiles(t testing.TB, s *Store) []string {
	t.Helper()
	var files []string
	root := filepath.Join(s.root, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// assertEmpty fails t unless the store holds no blob and no ingest.
func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	if files := blobFiles(t, s); len(files) != 0 {
		t.Errorf("files left under blobs/: %v", files)
	}
	ingests, err := s.Ingests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ingests) != 0 {
		t.Errorf("ingests left: %+v", ingests)
	}
	entries, err := os.ReadDir(s.ingest)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("%d entries left under %s", len(entries), s.ingest)
	}
}

func TestWriteBlobRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	data := randomBytes(t, 100_000)
	desc := descOf(data)
	if err := s.WriteBlob(ctx, bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != desc.Digest || info.Size != desc.Size || info.CreatedAt.IsZero() {
		t.Errorf("info = %+v, want digest %s size %d and a time", info, desc.Digest, desc.Size)
	}
	got, err := s.ReadBlob(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("ReadBlob returned other bytes")
	}
	f, err := s.Open(ctx, desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err = io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Open: read %d bytes, err %v; want the blob", len(got), err)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("blob opened by Open is writable")
	}
	fi, err := os.Stat(s.Path(desc.Digest))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("blob mode %v, want read-only 0444", fi.Mode().Perm())
	}
	want := filepath.Join(s.root, "blobs", "sha256", desc.Digest.Encoded())
	if s.Path(desc.Digest) != want {
		t.Errorf("Path = %s, want %s", s.Path(desc.Digest), want)
	}
	// Writing it again is a no-op, even from a reader that would fail.
	if err := s.WriteBlob(ctx, iotestErrReader{}, desc); err != nil {
		t.Errorf("second WriteBlob of a stored blob: %v", err)
	}
	if ingests, _ := s.Ingests(ctx); len(ingests) != 0 {
		t.Errorf("ingests left after WriteBlob: %+v", ingests)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("read error for test") }

func TestWriteBlobVerifies(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(t, 10_000)
	good := descOf(data)
	other := digest.FromString("something else")
	tests := []struct {
		name    string
		r       io.Reader
		desc    ocispec.Descriptor
		mention []string // what the error must name
	}{
		{"wrong digest", bytes.NewReader(data), ocispec.Descriptor{Digest: other, Size: good.Size}, []string{string(other), string(good.Digest)}},
		{"size larger than data", bytes.NewReader(data), ocispec.Descriptor{Digest: good.Digest, Size: good.Size + 1}, []string{"10000", "10001"}},
		{"size smaller than data", bytes.NewReader(data), ocispec.Descriptor{Digest: good.Digest, Size: good.Size - 1}, []string{"10000", "9999"}},
		{"truncated stream", bytes.NewReader(data[:5000]), good, []string{"5000", "10000"}},
		{"wrong digest, no size", bytes.NewReader(data), ocispec.Descriptor{Digest: other}, []string{string(other), string(good.Digest)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newStore(t)
			err := s.WriteBlob(ctx, tc.r, tc.desc)
			if !errdefs.IsDataLoss(err) {
				t.Fatalf("WriteBlob = %v, want an ErrDataLoss error", err)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %s", err, m)
				}
			}
			assertEmpty(t, s)
			if _, err := s.Info(ctx, tc.desc.Digest); !errdefs.IsNotFound(err) {
				t.Errorf("Info after failed write = %v, want ErrNotFound", err)
			}
		})
	}
	t.Run("reader error", func(t *testing.T) {
		s, _ := newStore(t)
		if err := s.WriteBlob(ctx, iotestErrReader{}, good); err == nil || !strings.Contains(err.Error(), "read error for test") {
			t.Errorf("WriteBlob from failing reader = %v, want its error", err)
		}
		assertEmpty(t, s)
	})
	t.Run("cancelled", func(t *testing.T) {
		s, _ := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.WriteBlob(cctx, bytes.NewReader(data), good); !errors.Is(err, context.Canceled) {
			t.Errorf("WriteBlob with cancelled context = %v, want context.Canceled", err)
		}
		assertEmpty(t, s)
	})
}

func TestInvalidDigests(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	bad := []digest.Digest{
		"",
		"sha256",
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha256:xyz",
		"sha256:" + digest.Digest(strings.ToUpper(digest.FromString("a").Encoded())),
		"sha256:../../../../etc/passwd",
		"sha384:" + digest.Digest(strings.Repeat("a", 96)), // valid, but not accepted here
	}
	for _, d := range bad {
		if _, err := s.Info(ctx, d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Info(%q) = %v, want ErrInvalidArgument", d, err)
		}
		if _, err := s.Open(ctx, d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Open(%q) = %v, want ErrInvalidArgument", d, err)
		}
		if _, err := s.ReadBlob(ctx, d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ReadBlob(%q) = %v, want ErrInvalidArgument", d, err)
		}
		if err := s.Delete(ctx, d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidArgument", d, err)
		}
		if err := s.WriteBlob(ctx, strings.NewReader("x"), ocispec.Descriptor{Digest: d, Size: 1}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("WriteBlob(%q) = %v, want ErrInvalidArgument", d, err)
		}
		if p := s.Path(d); p != "" {
			t.Errorf("Path(%q) = %q, want empty", d, p)
		}
		if d == "" {
			continue // an empty expected digest means "don't check" to Commit
		}
		w, err := s.Writer(ctx, "invalid-"+string(d))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("x"))
		if err := w.Commit(ctx, 0, d); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Commit(%q) = %v, want ErrInvalidArgument", d, err)
		}
		w.Close()
		if err := s.Abort(ctx, "invalid-"+string(d)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Writer(ctx, ""); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Writer with empty ref = %v, want ErrInvalidArgument", err)
	}
	assertEmpty(t, s)
}

func TestMissingBlob(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	d := digest.FromString("absent")
	if _, err := s.Info(ctx, d); !errdefs.IsNotFound(err) {
		t.Errorf("Info = %v, want ErrNotFound", err)
	}
	if _, err := s.Open(ctx, d); !errdefs.IsNotFound(err) {
		t.Errorf("Open = %v, want ErrNotFound", err)
	}
	if _, err := s.ReadBlob(ctx, d); !errdefs.IsNotFound(err) {
		t.Errorf("ReadBlob = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, d); !errdefs.IsNotFound(err) {
		t.Errorf("Delete = %v, want ErrNotFound", err)
	}
}

func TestReadBlobDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	data := []byte(`{"schemaVersion":2}`)
	desc := descOf(data)
	if err := s.WriteBlob(ctx, bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	p := s.Path(desc.Digest)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"schemaVersion":3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(ctx, desc.Digest); !errdefs.IsDataLoss(err) {
		t.Errorf("ReadBlob of a changed blob = %v, want ErrDataLoss", err)
	}
}

func TestSHA512(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	data := randomBytes(t, 4096)
	d := digest.SHA512.FromBytes(data)
	if err := s.WriteBlob(ctx, bytes.NewReader(data), ocispec.Descriptor{Digest: d, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(s.root, "blobs", "sha512", d.Encoded()); s.Path(d) != want {
		t.Errorf("Path = %s, want %s", s.Path(d), want)
	}
	if got, err := s.ReadBlob(ctx, d); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob sha512: %v", err)
	}
	// Through a Writer, which hashes sha256 while writing.
	data2 := randomBytes(t, 4096)
	d2 := digest.SHA512.FromBytes(data2)
	w, err := s.Writer(ctx, "sha512-ref")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data2)
	if err := w.Commit(ctx, int64(len(data2)), digest.SHA512.FromBytes(data)); !errdefs.IsDataLoss(err) {
		t.Errorf("Commit with the wrong sha512 = %v, want ErrDataLoss", err)
	}
	w, err = s.Writer(ctx, "sha512-ref")
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 0 {
		t.Errorf("offset after failed commit = %d, want 0 (ingest removed)", w.Offset())
	}
	w.Write(data2)
	if err := w.Commit(ctx, int64(len(data2)), d2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, d2); err != nil {
		t.Error(err)
	}
}

func TestConcurrentWritersOfOneBlob(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	data := randomBytes(t, 1<<20)
	desc := descOf(data)
	const n = 8
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- s.WriteBlob(ctx, bytes.NewReader(data), desc)
		}()
		go func() {
			defer wg.Done()
			w, err := s.Writer(ctx, "pull-"+string(rune('a'+i)))
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			// Small writes so that the writers interleave.
			for off := 0; off < len(data); off += 64 << 10 {
				if _, err := w.Write(data[off:min(off+64<<10, len(data))]); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Commit(ctx, desc.Size, desc.Digest)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var seen []Info
	if err := s.Walk(ctx, func(i Info) error { seen = append(seen, i); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].Digest != desc.Digest || seen[0].Size != desc.Size {
		t.Errorf("Walk = %+v, want the one blob", seen)
	}
	if files := blobFiles(t, s); len(files) != 1 {
		t.Errorf("files under blobs/: %v, want one", files)
	}
	if ingests, _ := s.Ingests(ctx); len(ingests) != 0 {
		t.Errorf("ingests left: %+v", ingests)
	}
	if got, err := s.ReadBlob(ctx, desc.Digest); err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadBlob: %v", err)
	}
}

func TestWalkDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	want := map[digest.Digest]int64{}
	for i := range 3 {
		b := randomBytes(t, 100*(i+1))
		desc := descOf(b)
		if i == 2 {
			desc.Digest = digest.SHA512.FromBytes(b)
		}
		if err := s.WriteBlob(ctx, bytes.NewReader(b), desc); err != nil {
			t.Fatal(err)
		}
		want[desc.Digest] = desc.Size
	}
	// A stray file is skipped, not reported as a blob.
	if err := os.WriteFile(filepath.Join(s.root, "blobs", "sha256", "not-a-digest"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	walk := func() map[digest.Digest]int64 {
		got := map[digest.Digest]int64{}
		if err := s.Walk(ctx, func(i Info) error { got[i.Digest] = i.Size; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := walk(); !sameSizes(got, want) {
		t.Errorf("Walk = %v, want %v", got, want)
	}
	var victim digest.Digest
	for d := range want {
		victim = d
		break
	}
	if err := s.Delete(ctx, victim); err != nil {
		t.Fatal(err)
	}
	delete(want, victim)
	if got := walk(); !sameSizes(got, want) {
		t.Errorf("Walk after Delete = %v, want %v", got, want)
	}
	if err := s.Delete(ctx, victim); !errdefs.IsNotFound(err) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if _, err := s.Info(ctx, victim); !errdefs.IsNotFound(err) {
		t.Errorf("Info after Delete = %v, want ErrNotFound", err)
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(ctx, func(Info) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Walk returning an error: got %v after %d calls, want stop after 1", err, calls)
	}
}

func sameSizes(a, b map[digest.Digest]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	data := randomBytes(b, 64<<20)
	desc := descOf(data)
	s, _ := newStore(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := s.WriteBlob(ctx, bytes.NewReader(data), desc); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, desc.Digest); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func TestReadBlobRefusesLargeBlobs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	// A sparse file stands in for a large layer: the size is refused
	// before anything is read.
	d := digest.FromString("a large layer")
	if err := os.WriteFile(s.Path(d), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.Path(d), MaxReadBlob+1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(ctx, d); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ReadBlob of a %d-byte blob = %v, want ErrInvalidArgument", MaxReadBlob+1, err)
	}
	if info, err := s.Info(ctx, d); err != nil || info.Size != MaxReadBlob+1 {
		t.Errorf("Info = %+v, %v", info, err)
	}
}

func TestOpenRefusesIngestOnOtherFileSystem(t *testing.T) {
	root := t.TempDir()
	other, err := os.MkdirTemp("/dev/shm", "berth-content-test-")
	if err != nil {
		t.Skipf("needs /dev/shm (a tmpfs) as a second file system: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(other) })
	var a, b uint64
	if statDev(root, &a) != nil || statDev(other, &b) != nil || a == b {
		t.Skipf("needs /dev/shm on a file system other than %s's", root)
	}
	_, err = Open(filepath.Join(root, "content"), other)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "different file systems") {
		t.Errorf("Open with tmpDir on another file system = %v, want ErrInvalidArgument", err)
	}
}

// statDev stores the device number of the file system holding path.
func statDev(path string, dev *uint64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	*dev = uint64(fi.Sys().(*syscall.Stat_t).Dev)
	return nil
}
