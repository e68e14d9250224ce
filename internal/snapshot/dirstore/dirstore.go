// Package dirstore is the bookkeeping shared by berth's snapshotters: each
// snapshot lives in its own directory <root>/<id> (id a short decimal
// number) and is recorded in a bbolt bucket of its own; a Driver says what
// goes in the directory and how it is mounted.
//
// Directory work happens outside bbolt transactions but stays consistent
// with the records: a new snapshot's directory is built under a temporary
// name and renamed to <root>/<id> inside the transaction that records it,
// and a removed one is renamed aside inside the transaction that deletes
// its record. Open deletes every entry of root without a record, so a crash
// at any moment leaves nothing behind once the store is opened again.
//
// Bucket layout, under the top-level bucket named by Open:
//
//	keys/<key>                 JSON record (id, parent, kind, labels, times, usage)
//	children/<parent>\x00<key> empty: an index of each snapshot's children
//
// The top-level bucket's sequence allocates ids.
package dirstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/snapshot"
)

// Driver fills and mounts a snapshot's directory. Paths given to it are
// absolute; parents are the fs directories of the parent chain, top first.
type Driver interface {
	// Create fills dir, the new snapshot's directory under a temporary
	// name, for a snapshot of kind (active or view) over parents. It
	// must create dir/fs.
	Create(ctx context.Context, dir string, kind snapshot.Kind, parents []string) error
	// Mounts returns the mounts of the snapshot of kind in dir.
	Mounts(dir string, kind snapshot.Kind, parents []string) ([]snapshot.Mount, error)
	// Committed is called after the active snapshot in dir was committed,
	// to drop what only an active snapshot needs.
	Committed(ctx context.Context, dir string) error
}

const (
	tmpPrefix     = ".tmp-"
	removedPrefix = ".rm-"
)

var (
	keysBucket     = []byte("keys")
	childrenBucket = []byte("children")
)

// record is what the store keeps about a snapshot.
type record struct {
	ID      uint64            `json:"id"`
	Parent  string            `json:"parent,omitempty"`
	Kind    snapshot.Kind     `json:"kind"`
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
	Size    int64             `json:"size,omitempty"`
	Inodes  int64             `json:"inodes,omitempty"`
}

func (r *record) info(key string) snapshot.Info {
	return snapshot.Info{Name: key, Parent: r.Parent, Kind: r.Kind, Labels: maps.Clone(r.Labels), Created: r.Created, Updated: r.Updated}
}

// Store implements snapshot.Snapshotter on top of a Driver.
type Store struct {
	root   string
	db     *bolt.DB
	bucket []byte
	driver Driver
	closed atomic.Bool
}

var _ snapshot.Snapshotter = (*Store)(nil)

// Open returns the store kept in root and in db's top-level bucket, which
// it creates if needed, and deletes the entries of root that have no
// record (leftovers of a crash). root must be an absolute path without
// ',' or ':' (they separate overlay mount options).
func Open(ctx context.Context, root string, db *bolt.DB, bucket string, d Driver) (*Store, error) {
	if !filepath.IsAbs(root) || strings.ContainsAny(root, ",:") {
		return nil, fmt.Errorf("open snapshots at %q: root must be an absolute path without ',' or ':': %w", root, errdefs.ErrInvalidArgument)
	}
	if db == nil {
		return nil, fmt.Errorf("open snapshots at %s: no database: %w", root, errdefs.ErrInvalidArgument)
	}
	root = filepath.Clean(root)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	s := &Store{root: root, db: db, bucket: []byte(bucket), driver: d}
	ids := map[string]bool{}
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(s.bucket)
		if err != nil {
			return err
		}
		if _, err := b.CreateBucketIfNotExists(childrenBucket); err != nil {
			return err
		}
		keys, err := b.CreateBucketIfNotExists(keysBucket)
		if err != nil {
			return err
		}
		return keys.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record of %q: %w: %w", k, err, errdefs.ErrDataLoss)
			}
			ids[strconv.FormatUint(r.ID, 10)] = true
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("open snapshots bucket %s: %w", bucket, err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	for _, e := range entries {
		if ids[e.Name()] {
			delete(ids, e.Name())
			continue
		}
		log.G(ctx).Info("removing snapshot directory without a record", "dir", filepath.Join(root, e.Name()))
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return nil, fmt.Errorf("open snapshots: remove leftover: %w", err)
		}
	}
	for id := range ids {
		log.G(ctx).Warn("snapshot record without a directory", "root", root, "id", id)
	}
	return s, nil
}

// Root returns the directory the store keeps snapshots in.
func (s *Store) Root() string { return s.root }

func (s *Store) dir(id uint64) string { return filepath.Join(s.root, strconv.FormatUint(id, 10)) }

// fsDir returns the directory holding the tree of the snapshot with id.
func (s *Store) fsDir(id uint64) string { return filepath.Join(s.dir(id), "fs") }

func (s *Store) check(op, key string) error {
	if s.closed.Load() {
		return fmt.Errorf("%s %q: snapshotter is closed: %w", op, key, errdefs.ErrUnavailable)
	}
	return snapshot.ValidateKey(key)
}

func get(tx *bolt.Tx, bucket []byte, key string) (*record, error) {
	v := tx.Bucket(bucket).Bucket(keysBucket).Get([]byte(key))
	if v == nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("record of snapshot %q: %w: %w", key, err, errdefs.ErrDataLoss)
	}
	return &r, nil
}

func put(tx *bolt.Tx, bucket []byte, key string, r *record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Bucket(keysBucket).Put([]byte(key), v)
}

func childKey(parent, key string) []byte { return []byte(parent + "\x00" + key) }

// firstChild returns a child of key, or "" if it has none.
func firstChild(tx *bolt.Tx, bucket []byte, key string) string {
	prefix := childKey(key, "")
	k, _ := tx.Bucket(bucket).Bucket(childrenBucket).Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return ""
	}
	return string(k[len(prefix):])
}

// chain returns the ids of parent and its ancestors, parent first; parent
// must be committed.
func chain(tx *bolt.Tx, bucket []byte, parent string) ([]uint64, error) {
	var ids []uint64
	for p := parent; p != ""; {
		r, err := get(tx, bucket, p)
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		if r.Kind != snapshot.KindCommitted {
			return nil, fmt.Errorf("parent %q is %s, not committed: %w", p, r.Kind, errdefs.ErrConflict)
		}
		ids = append(ids, r.ID)
		p = r.Parent
	}
	return ids, nil
}

func (s *Store) fsDirs(ids []uint64) []string {
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = s.fsDir(id)
	}
	return dirs
}

// Stat implements snapshot.Snapshotter.
func (s *Store) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	if err := s.check("stat", key); err != nil {
		return snapshot.Info{}, err
	}
	var info snapshot.Info
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := get(tx, s.bucket, key)
		if err != nil {
			return err
		}
		info = r.info(key)
		return nil
	})
	return info, err
}

// Update implements snapshot.Snapshotter.
func (s *Store) Update(ctx context.Context, info snapshot.Info, fieldpaths ...string) (snapshot.Info, error) {
	if err := s.check("update", info.Name); err != nil {
		return snapshot.Info{}, err
	}
	for _, f := range fieldpaths {
		if name, ok := strings.CutPrefix(f, "labels."); (!ok || name == "") && f != "labels" {
			return snapshot.Info{}, fmt.Errorf("update snapshot %q: field %q cannot be updated (only labels and labels.<name>): %w", info.Name, f, errdefs.ErrInvalidArgument)
		}
	}
	var out snapshot.Info
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := get(tx, s.bucket, info.Name)
		if err != nil {
			return err
		}
		if len(fieldpaths) == 0 {
			fieldpaths = []string{"labels"}
		}
		for _, f := range fieldpaths {
			if f == "labels" {
				r.Labels = maps.Clone(info.Labels)
				continue
			}
			name := strings.TrimPrefix(f, "labels.")
			if v, ok := info.Labels[name]; ok {
				if r.Labels == nil {
					r.Labels = map[string]string{}
				}
				r.Labels[name] = v
			} else {
				delete(r.Labels, name)
			}
		}
		if len(r.Labels) == 0 {
			r.Labels = nil
		}
		r.Updated = time.Now().UTC()
		out = r.info(info.Name)
		return put(tx, s.bucket, info.Name, r)
	})
	if err != nil {
		return snapshot.Info{}, fmt.Errorf("update: %w", err)
	}
	return out, nil
}

// Usage implements snapshot.Snapshotter.
func (s *Store) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	if err := s.check("usage", key); err != nil {
		return snapshot.Usage{}, err
	}
	var r *record
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		r, err = get(tx, s.bucket, key)
		return err
	})
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("usage: %w", err)
	}
	if r.Kind == snapshot.KindCommitted {
		return snapshot.Usage{Size: r.Size, Inodes: r.Inodes}, nil
	}
	u, err := DiskUsage(s.fsDir(r.ID))
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("usage of snapshot %q: %w", key, err)
	}
	return u, nil
}

// Mounts implements snapshot.Snapshotter.
func (s *Store) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	if err := s.check("mounts", key); err != nil {
		return nil, err
	}
	var (
		r   *record
		ids []uint64
	)
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		if r, err = get(tx, s.bucket, key); err != nil {
			return err
		}
		ids, err = chain(tx, s.bucket, r.Parent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	if r.Kind == snapshot.KindCommitted {
		// A committed snapshot is shown like a view of itself.
		return s.driver.Mounts(s.dir(r.ID), snapshot.KindView, s.fsDirs(append([]uint64{r.ID}, ids...)))
	}
	return s.driver.Mounts(s.dir(r.ID), r.Kind, s.fsDirs(ids))
}

// Prepare implements snapshot.Snapshotter.
func (s *Store) Prepare(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]snapshot.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent, opts)
}

// View implements snapshot.Snapshotter.
func (s *Store) View(ctx context.Context, key, parent string, opts ...snapshot.Opt) ([]snapshot.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent, opts)
}

func (s *Store) create(ctx context.Context, kind snapshot.Kind, key, parent string, opts []snapshot.Opt) (_ []snapshot.Mount, err error) {
	op := "prepare"
	if kind == snapshot.KindView {
		op = "view"
	}
	if err := s.check(op, key); err != nil {
		return nil, err
	}
	if parent != "" {
		if err := snapshot.ValidateKey(parent); err != nil {
			return nil, fmt.Errorf("%s %q: parent: %w", op, key, err)
		}
	}
	var ids []uint64
	err = s.db.View(func(tx *bolt.Tx) (err error) {
		if _, err := get(tx, s.bucket, key); err == nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		ids, err = chain(tx, s.bucket, parent)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, key, err)
	}

	tmp, err := os.MkdirTemp(s.root, tmpPrefix)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, key, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := s.driver.Create(ctx, tmp, kind, s.fsDirs(ids)); err != nil {
		return nil, fmt.Errorf("%s %q: %w", op, key, err)
	}

	info := snapshot.Info{}
	for _, o := range opts {
		o(&info)
	}
	now := time.Now().UTC()
	var id uint64
	renamed := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		if _, err := get(tx, s.bucket, key); err == nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		again, err := chain(tx, s.bucket, parent)
		if err != nil {
			return err
		}
		if !slices.Equal(again, ids) {
			return fmt.Errorf("parent %q changed meanwhile: %w", parent, errdefs.ErrConflict)
		}
		if id, err = tx.Bucket(s.bucket).NextSequence(); err != nil {
			return err
		}
		r := &record{ID: id, Parent: parent, Kind: kind, Labels: info.Labels, Created: now, Updated: now}
		if err := put(tx, s.bucket, key, r); err != nil {
			return err
		}
		if parent != "" {
			if err := tx.Bucket(s.bucket).Bucket(childrenBucket).Put(childKey(parent, key), nil); err != nil {
				return err
			}
		}
		if err := os.Rename(tmp, s.dir(id)); err != nil {
			return err
		}
		renamed = true
		return nil
	})
	if err != nil {
		if renamed {
			_ = os.Rename(s.dir(id), tmp) // removed by the deferred cleanup
		}
		return nil, fmt.Errorf("%s %q: %w", op, key, err)
	}
	return s.driver.Mounts(s.dir(id), kind, s.fsDirs(ids))
}

// Commit implements snapshot.Snapshotter.
func (s *Store) Commit(ctx context.Context, name, key string, opts ...snapshot.Opt) error {
	if err := s.check("commit", key); err != nil {
		return err
	}
	if err := snapshot.ValidateKey(name); err != nil {
		return fmt.Errorf("commit %q: name: %w", key, err)
	}
	active := func(tx *bolt.Tx) (*record, error) {
		r, err := get(tx, s.bucket, key)
		if err != nil {
			return nil, err
		}
		if r.Kind != snapshot.KindActive {
			return nil, fmt.Errorf("snapshot %q is %s, not active: %w", key, r.Kind, errdefs.ErrConflict)
		}
		if _, err := get(tx, s.bucket, name); err == nil {
			return nil, fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
		}
		return r, nil
	}
	var r *record
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		r, err = active(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("commit %q as %q: %w", key, name, err)
	}
	usage, err := DiskUsage(s.fsDir(r.ID))
	if err != nil {
		return fmt.Errorf("commit %q as %q: %w", key, name, err)
	}
	info := snapshot.Info{}
	for _, o := range opts {
		o(&info)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		again, err := active(tx)
		if err != nil {
			return err
		}
		if again.ID != r.ID {
			return fmt.Errorf("snapshot %q replaced meanwhile: %w", key, errdefs.ErrConflict)
		}
		now := time.Now().UTC()
		c := &record{ID: r.ID, Parent: r.Parent, Kind: snapshot.KindCommitted, Labels: info.Labels,
			Created: now, Updated: now, Size: usage.Size, Inodes: usage.Inodes}
		if err := tx.Bucket(s.bucket).Bucket(keysBucket).Delete([]byte(key)); err != nil {
			return err
		}
		if err := put(tx, s.bucket, name, c); err != nil {
			return err
		}
		if r.Parent != "" {
			children := tx.Bucket(s.bucket).Bucket(childrenBucket)
			if err := children.Delete(childKey(r.Parent, key)); err != nil {
				return err
			}
			return children.Put(childKey(r.Parent, name), nil)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %q as %q: %w", key, name, err)
	}
	if err := s.driver.Committed(ctx, s.dir(r.ID)); err != nil {
		log.G(ctx).Warn("cleaning up committed snapshot", "name", name, "error", err)
	}
	return nil
}

// Remove implements snapshot.Snapshotter.
func (s *Store) Remove(ctx context.Context, key string) error {
	if err := s.check("remove", key); err != nil {
		return err
	}
	var id uint64
	aside := ""
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := get(tx, s.bucket, key)
		if err != nil {
			return err
		}
		if c := firstChild(tx, s.bucket, key); c != "" {
			return fmt.Errorf("snapshot %q is the parent of %q: %w", key, c, errdefs.ErrConflict)
		}
		id = r.ID
		if err := tx.Bucket(s.bucket).Bucket(keysBucket).Delete([]byte(key)); err != nil {
			return err
		}
		if r.Parent != "" {
			if err := tx.Bucket(s.bucket).Bucket(childrenBucket).Delete(childKey(r.Parent, key)); err != nil {
				return err
			}
		}
		dest := filepath.Join(s.root, removedPrefix+strconv.FormatUint(id, 10))
		switch err := os.Rename(s.dir(id), dest); {
		case err == nil:
			aside = dest
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		return nil
	})
	if err != nil {
		if aside != "" {
			_ = os.Rename(aside, s.dir(id))
		}
		return fmt.Errorf("remove %q: %w", key, err)
	}
	if aside != "" {
		if err := os.RemoveAll(aside); err != nil {
			return fmt.Errorf("remove %q: record removed, data left for the next open: %w", key, err)
		}
	}
	return nil
}

// Walk implements snapshot.Snapshotter. fn runs outside any transaction.
func (s *Store) Walk(ctx context.Context, fn func(context.Context, snapshot.Info) error) error {
	if s.closed.Load() {
		return fmt.Errorf("walk: snapshotter is closed: %w", errdefs.ErrUnavailable)
	}
	var infos []snapshot.Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(s.bucket).Bucket(keysBucket).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record of snapshot %q: %w: %w", k, err, errdefs.ErrDataLoss)
			}
			infos = append(infos, r.info(string(k)))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("walk: %w", err)
	}
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(ctx, info); err != nil {
			return err
		}
	}
	return nil
}

// Close implements snapshot.Snapshotter; it leaves the database open.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
