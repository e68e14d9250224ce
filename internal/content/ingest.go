package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
)

// Files of an ingest directory.
const (
	dataFile   = "data"     // the bytes written so far; its size is the offset
	recordFile = "ref.json" // the ingestRecord, written once when the ingest starts
)

// ingestRecord names the ref an ingest directory belongs to (the directory's
// own name is a hash of it) and when the ingest started.
type ingestRecord struct {
	Ref       string    `json:"ref"`
	StartedAt time.Time `json:"startedAt"`
}

// IngestStatus describes a write in progress or interrupted: its ref, how
// many bytes it holds, when it started and when it was last written to.
// Ref is empty for an ingest whose record was lost in a crash.
type IngestStatus struct {
	Ref       string
	Offset    int64
	StartedAt time.Time
	UpdatedAt time.Time
}

// Writer writes one blob into an ingest, hashing as it goes, and commits it
// into the store once verified. It holds the ingest's lock until Commit or
// Close. A Writer is not safe for concurrent use.
type Writer struct {
	s      *Store
	ref    string
	dir    string
	lock   *os.File // the ingest directory, flock'ed
	f      *os.File // dataFile, positioned at offset
	alg    digest.Algorithm
	dgst   digest.Digester
	offset int64
	done   bool // committed, aborted or closed
}

// Writer starts or resumes the ingest named by ref (the caller's key, such
// as "pull-sha256:..."). When an earlier Writer of the same ref was closed
// without committing, the new one continues where it stopped: Offset tells
// how many bytes are there and the digest covers them. If another Writer, in
// this or another process, holds ref, Writer fails with an ErrUnavailable
// error.
func (s *Store) Writer(ctx context.Context, ref string) (*Writer, error) {
	return s.newWriter(ctx, ref, digest.SHA256)
}

// newWriter is Writer hashing with alg while writing.
func (s *Store) newWriter(ctx context.Context, ref string, alg digest.Algorithm) (*Writer, error) {
	if ref == "" {
		return nil, fmt.Errorf("content writer: empty ref: %w", errdefs.ErrInvalidArgument)
	}
	dir := s.ingestDir(ref)
	lock, err := lockIngest(dir, ref, true)
	if err != nil {
		return nil, err
	}
	w := &Writer{s: s, ref: ref, dir: dir, lock: lock, alg: alg}
	if err := w.open(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("content writer for ref %q: %w", ref, err)
	}
	return w, nil
}

// open writes the ingest record if missing, opens the data file and hashes
// what an earlier writer left in it.
func (w *Writer) open() error {
	rec := filepath.Join(w.dir, recordFile)
	if _, err := os.Stat(rec); errors.Is(err, fs.ErrNotExist) {
		b, err := json.Marshal(ingestRecord{Ref: w.ref, StartedAt: time.Now().UTC()})
		if err != nil {
			return err
		}
		if err := os.WriteFile(rec+".tmp", b, 0o600); err != nil {
			return err
		}
		if err := os.Rename(rec+".tmp", rec); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(w.dir, dataFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	w.f = f
	w.dgst = w.alg.Digester()
	n, err := io.Copy(w.dgst.Hash(), f)
	if err != nil {
		f.Close()
		return fmt.Errorf("hash partial data: %w", err)
	}
	w.offset = n
	return nil
}

// Ref returns the ref the Writer holds.
func (w *Writer) Ref() string { return w.ref }

// Offset returns how many bytes the ingest holds: those an earlier,
// interrupted Writer of the same ref left plus those written since.
func (w *Writer) Offset() int64 { return w.offset }

// Digest returns the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return w.dgst.Digest() }

// Write appends p to the ingest.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, w.doneErr()
	}
	n, err := w.f.Write(p)
	w.dgst.Hash().Write(p[:n])
	w.offset += int64(n)
	if err != nil {
		return n, fmt.Errorf("write ingest %q: %w", w.ref, err)
	}
	return n, nil
}

// Truncate cuts the ingest to its first size bytes, for instance 0 to start
// over when a server ignored a Range request, and rehashes what is kept.
func (w *Writer) Truncate(size int64) error {
	if w.done {
		return w.doneErr()
	}
	if size < 0 || size > w.offset {
		return fmt.Errorf("truncate ingest %q to %d: outside 0..%d: %w", w.ref, size, w.offset, errdefs.ErrInvalidArgument)
	}
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("truncate ingest %q: %w", w.ref, err)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("truncate ingest %q: %w", w.ref, err)
	}
	w.dgst = w.alg.Digester()
	if _, err := io.CopyN(w.dgst.Hash(), w.f, size); err != nil {
		return fmt.Errorf("truncate ingest %q: rehash: %w", w.ref, err)
	}
	w.offset = size
	return nil
}

// Commit verifies the ingest and moves it into the store. A size <= 0 or an
// empty expected digest is not checked; the blob is then stored under the
// digest of what was written. A mismatch is an ErrDataLoss error naming both
// values, and the ingest is removed. A blob already present is not an error.
// The Writer is finished after Commit, whatever its outcome.
func (w *Writer) Commit(ctx context.Context, size int64, expected digest.Digest) error {
	if w.done {
		return w.doneErr()
	}
	if expected != "" {
		if err := validate(expected); err != nil {
			return fmt.Errorf("commit ingest %q: %w", w.ref, err)
		}
	}
	err := w.commit(expected, size)
	w.finish(true)
	if err != nil {
		return fmt.Errorf("commit ingest %q: %w", w.ref, err)
	}
	return nil
}

func (w *Writer) commit(expected digest.Digest, size int64) error {
	if size > 0 && w.offset != size {
		return fmt.Errorf("size mismatch: wrote %d bytes, expected %d: %w", w.offset, size, errdefs.ErrDataLoss)
	}
	actual := w.dgst.Digest()
	if expected != "" && expected.Algorithm() != w.alg {
		// Hashed with another algorithm while writing: hash the file again.
		if _, err := w.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		d, err := expected.Algorithm().FromReader(w.f)
		if err != nil {
			return fmt.Errorf("hash with %s: %w", expected.Algorithm(), err)
		}
		actual = d
	}
	if expected != "" && actual != expected {
		return fmt.Errorf("digest mismatch: wrote %s (%d bytes), expected %s: %w", actual, w.offset, expected, errdefs.ErrDataLoss)
	}
	target := w.s.Path(actual)
	if _, err := os.Stat(target); err == nil {
		return nil // already stored: the ingest is dropped by finish
	}
	if err := w.f.Chmod(0o444); err != nil {
		return err
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("sync data: %w", err)
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(w.dir, dataFile), target); err != nil {
		return err
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("sync %s: %w", parent, err)
	}
	return nil
}

// Close ends the Writer without committing, keeping the bytes written so
// that a later Writer of the same ref resumes, and releases the ref. Closing
// a committed Writer does nothing.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	return w.finish(false)
}

// finish closes the files and releases the lock, first removing the ingest
// directory if remove is set.
func (w *Writer) finish(remove bool) error {
	w.done = true
	err := w.f.Close()
	if remove {
		if rerr := os.RemoveAll(w.dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if lerr := w.lock.Close(); lerr != nil {
		err = errors.Join(err, lerr)
	}
	if err != nil {
		return fmt.Errorf("close ingest %q: %w", w.ref, err)
	}
	return nil
}

func (w *Writer) doneErr() error {
	return fmt.Errorf("ingest %q: writer already committed or closed: %w", w.ref, errdefs.ErrConflict)
}

// Abort removes the ingest of ref and its data. It fails with ErrNotFound if
// there is none and ErrUnavailable if a Writer holds it.
func (s *Store) Abort(ctx context.Context, ref string) error {
	dir := s.ingestDir(ref)
	lock, err := lockIngest(dir, ref, false)
	if err != nil {
		return fmt.Errorf("abort: %w", err)
	}
	defer lock.Close()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("abort ingest %q: %w", ref, err)
	}
	return nil
}

// Ingests lists the writes in progress or interrupted.
func (s *Store) Ingests(ctx context.Context) ([]IngestStatus, error) {
	entries, err := os.ReadDir(s.ingest)
	if err != nil {
		return nil, fmt.Errorf("list ingests: %w", err)
	}
	var out []IngestStatus
	for _, e := range entries {
		st, err := ingestStatus(filepath.Join(s.ingest, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // committed or removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list ingests: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// ingestStatus reads the state of one ingest directory. A directory without
// a record or data file (a crash right after creating it) has an empty Ref
// and the directory's own times.
func ingestStatus(dir string) (IngestStatus, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return IngestStatus{}, err
	}
	st := IngestStatus{StartedAt: fi.ModTime(), UpdatedAt: fi.ModTime()}
	if b, err := os.ReadFile(filepath.Join(dir, recordFile)); err == nil {
		var rec ingestRecord
		if json.Unmarshal(b, &rec) == nil {
			st.Ref, st.StartedAt = rec.Ref, rec.StartedAt
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, dataFile)); err == nil {
		st.Offset = fi.Size()
		if fi.ModTime().After(st.UpdatedAt) {
			st.UpdatedAt = fi.ModTime()
		}
	}
	return st, nil
}

// PruneIngests removes the ingests not written to for longer than olderThan
// and not held by a Writer.
func (s *Store) PruneIngests(ctx context.Context, olderThan time.Duration) error {
	entries, err := os.ReadDir(s.ingest)
	if err != nil {
		return fmt.Errorf("prune ingests: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(s.ingest, e.Name())
		st, err := ingestStatus(dir)
		if err != nil || !st.UpdatedAt.Before(cutoff) {
			continue
		}
		lock, err := lockIngest(dir, st.Ref, false)
		if err != nil {
			continue // in use, or gone meanwhile
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		} else {
			log.G(ctx).Debug("pruned stale ingest", "ref", st.Ref, "offset", st.Offset, "updated", st.UpdatedAt)
		}
		lock.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prune ingests: %w", err)
	}
	return nil
}

// lockIngest opens and flock(2)s the ingest directory dir of ref, creating
// it if create is set. The lock is held until the returned file is closed;
// being an open file description lock, it excludes other Writers in this
// process as well as in others. A directory removed by the previous holder
// between our open and our lock is detected and retried.
func lockIngest(dir, ref string, create bool) (*os.File, error) {
	for range 3 {
		if create {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("ingest %q: %w", ref, err)
			}
		}
		f, err := os.Open(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if !create {
				return nil, fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ingest %q: %w", ref, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("ref %q is locked by another writer: %w", ref, errdefs.ErrUnavailable)
			}
			return nil, fmt.Errorf("lock ingest %q: %w", ref, err)
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(dir, &now) == nil &&
			held.Dev == now.Dev && held.Ino == now.Ino {
			return f, nil
		}
		f.Close()
		if !create {
			return nil, fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
		}
	}
	return nil, fmt.Errorf("ingest %q: directory removed while locking it, repeatedly: %w", ref, errdefs.ErrUnavailable)
}
