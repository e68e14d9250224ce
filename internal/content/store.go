// Package content is berthd's content-addressed blob store. Blobs live at
// <root>/blobs/<algorithm>/<hex>, read-only; a blob appears there only once
// its bytes have been verified against their digest and synced, by an atomic
// rename from an ingest directory under <tmpDir>/ingest/. An ingest is keyed
// by a caller's ref, survives an interrupted download so that a later Writer
// for the same ref resumes it, and is locked with flock(2) while a Writer
// holds it, across processes too.
//
// The store knows nothing of what refers to a blob: garbage collection lives
// with the image records, which use Walk, Delete and Ingests.
package content

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "crypto/sha512" // registers sha512 with go-digest
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
)

// Store is a content-addressed blob store rooted at one directory. Its
// methods are safe for concurrent use by several goroutines and processes.
type Store struct {
	root   string // blobs live under root/blobs
	ingest string // tmpDir/ingest: one directory per ref being written
}

// Info describes a blob in the store. CreatedAt is when it was committed
// (the blob file's modification time).
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// Open opens the store at root, keeping in-progress writes under tmpDir,
// creating both directories if needed. tmpDir must be on the same file
// system as root so that committing a blob is a rename.
func Open(root, tmpDir string) (*Store, error) {
	if root == "" || tmpDir == "" {
		return nil, fmt.Errorf("open content store: empty root or temporary directory: %w", errdefs.ErrInvalidArgument)
	}
	s := &Store{root: root, ingest: filepath.Join(tmpDir, "ingest")}
	for _, dir := range []string{filepath.Join(root, "blobs", string(digest.SHA256)), s.ingest} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open content store: %w", err)
		}
	}
	var rst, ist unix.Stat_t
	if err := unix.Stat(root, &rst); err != nil {
		return nil, fmt.Errorf("open content store: stat %s: %w", root, err)
	}
	if err := unix.Stat(s.ingest, &ist); err != nil {
		return nil, fmt.Errorf("open content store: stat %s: %w", s.ingest, err)
	}
	if rst.Dev != ist.Dev {
		return nil, fmt.Errorf("open content store: %s and %s are on different file systems, blobs could not be renamed into place: %w", root, tmpDir, errdefs.ErrInvalidArgument)
	}
	return s, nil
}

// supported are the digest algorithms the store accepts.
var supported = map[digest.Algorithm]bool{digest.SHA256: true, digest.SHA512: true}

// validate checks that d is well formed and of an algorithm the store
// accepts, returning an ErrInvalidArgument error otherwise.
func validate(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %v: %w", string(d), err, errdefs.ErrInvalidArgument)
	}
	if !supported[d.Algorithm()] {
		return fmt.Errorf("invalid digest %q: unsupported algorithm %s: %w", string(d), d.Algorithm(), errdefs.ErrInvalidArgument)
	}
	return nil
}

// Path returns where the blob d is (or would be) stored. It does not check
// that the blob exists; d must be valid (see Info), or the path is empty.
func (s *Store) Path(d digest.Digest) string {
	if validate(d) != nil {
		return ""
	}
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), d.Encoded())
}

// Info returns the size and commit time of blob d, or an ErrNotFound error.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	if err := validate(d); err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		return Info{}, fmt.Errorf("content %s: %w", d, classify(err))
	}
	return Info{Digest: d, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// Open opens blob d read-only, or returns an ErrNotFound error.
func (s *Store) Open(ctx context.Context, d digest.Digest) (*os.File, error) {
	if err := validate(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if err != nil {
		return nil, fmt.Errorf("open content %s: %w", d, classify(err))
	}
	return f, nil
}

// MaxReadBlob is the largest blob ReadBlob reads into memory; larger ones
// (layers) are read through Open.
const MaxReadBlob = 64 << 20

// ReadBlob reads the whole of blob d, for small blobs such as manifests and
// configs, and verifies it against d: a blob changed on disk is an
// ErrDataLoss error. A blob larger than MaxReadBlob is refused with an
// ErrInvalidArgument error.
func (s *Store) ReadBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	if err := validate(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if err != nil {
		return nil, fmt.Errorf("read content %s: %w", d, classify(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read content %s: %w", d, err)
	}
	if fi.Size() > MaxReadBlob {
		return nil, fmt.Errorf("read content %s: %d bytes, more than the %d ReadBlob reads into memory: %w", d, fi.Size(), MaxReadBlob, errdefs.ErrInvalidArgument)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxReadBlob+1))
	if err != nil {
		return nil, fmt.Errorf("read content %s: %w", d, err)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("read content %s: stored bytes have digest %s: %w", d, got, errdefs.ErrDataLoss)
	}
	return b, nil
}

// WriteBlob writes the blob described by expected from r in one go and
// commits it after checking its size and digest. A blob already in the store
// is not read again. A failed write leaves nothing behind.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, expected ocispec.Descriptor) error {
	if err := validate(expected.Digest); err != nil {
		return fmt.Errorf("write blob: %w", err)
	}
	if _, err := s.Info(ctx, expected.Digest); err == nil {
		return nil
	}
	// A ref of its own per call: concurrent one-shot writes of the same blob
	// must not find each other's lock, and none of them is ever resumed.
	var nonce [8]byte
	if _, err := io.ReadFull(rand.Reader, nonce[:]); err != nil {
		return fmt.Errorf("write blob %s: %w", expected.Digest, err)
	}
	ref := "writeblob-" + string(expected.Digest) + "-" + hex.EncodeToString(nonce[:])
	w, err := s.newWriter(ctx, ref, expected.Digest.Algorithm())
	if err != nil {
		return fmt.Errorf("write blob %s: %w", expected.Digest, err)
	}
	defer func() {
		w.Close()
		if err := s.Abort(ctx, ref); err != nil && !errdefs.IsNotFound(err) {
			log.G(ctx).Warn("remove one-shot ingest", "ref", ref, "error", err)
		}
	}()
	src := r
	if expected.Size > 0 {
		// One byte more than expected is enough to tell a too-long stream.
		src = io.LimitReader(r, expected.Size+1)
	}
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: src}); err != nil {
		return fmt.Errorf("write blob %s: %w", expected.Digest, err)
	}
	return w.Commit(ctx, expected.Size, expected.Digest)
}

// Delete removes blob d, or returns an ErrNotFound error. Readers that
// already opened it keep reading it.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	if err := validate(d); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil {
		return fmt.Errorf("delete content %s: %w", d, classify(err))
	}
	return nil
}

// Walk calls fn for every blob in the store, stopping at the first error fn
// returns (which Walk returns). Files under blobs/ that are not named by a
// valid digest are skipped with a warning.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	blobs := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return fmt.Errorf("walk content: %w", err)
	}
	for _, a := range algs {
		if !a.IsDir() || !supported[digest.Algorithm(a.Name())] {
			continue
		}
		dir := filepath.Join(blobs, a.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("walk content: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("walk content: %w", err)
			}
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			if validate(d) != nil || !e.Type().IsRegular() {
				log.G(ctx).Warn("content store: skipping unexpected file", "path", filepath.Join(dir, e.Name()))
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while walking
			}
			if err != nil {
				return fmt.Errorf("walk content: %w", err)
			}
			if err := fn(Info{Digest: d, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// classify maps a file system error to an errdefs class, keeping the
// original error in the chain.
func classify(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", errdefs.ErrNotFound, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", errdefs.ErrPermission, err)
	}
	return err
}

// ingestDir returns the ingest directory of ref: a hash, so that any string
// is a safe ref and none can name a path outside the ingest root.
func (s *Store) ingestDir(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(s.ingest, hex.EncodeToString(sum[:]))
}

// syncDir fsyncs directory dir so that a rename or removal in it is durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
