// Package metadata is berthd's record store on disk, <data-root>/metadata.db,
// a bbolt database and the single source of truth for images, tags, leases
// and the JSON records of later services (containers, volumes, build cache).
//
// Every change happens in an Update transaction: one writer at a time,
// committed with fsync, so a crash leaves either the whole transaction or
// none of it. The file is locked while open; a second berthd on the same data
// root fails fast instead of waiting.
//
// Top-level buckets used here: "meta" (schema version), "images", "tags",
// "leases" and "records". Packages that own their own top-level bucket (the
// snapshotters keep "snapshots") reach it through Bolt or Tx.Bolt.
package metadata

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/berth-project/berth/internal/errdefs"
)

// SchemaVersion is the version of the layout this package reads and writes.
// A database with a higher version was written by a newer berthd and is
// refused.
const SchemaVersion = 1

// lockTimeout bounds how long Open waits for another process to release the
// database file.
const lockTimeout = time.Second

// Bucket and key names.
var (
	bucketMeta    = []byte("meta")
	bucketImages  = []byte("images")
	bucketTags    = []byte("tags")
	bucketLeases  = []byte("leases")
	bucketRecords = []byte("records")
	keySchema     = []byte("schema")
)

// DB is an open metadata database. It is safe for concurrent use.
type DB struct {
	path  string
	b     *bolt.DB
	group group // see Group
}

// Tx is a transaction, valid only inside the function given to View or
// Update. Byte slices and records read from it are copies the caller may
// keep, except the raw values ForEachJSON passes to its function.
type Tx struct {
	b *bolt.Tx
}

// Open opens the database at path, creating it with mode 0600 if needed.
// If another process holds it, Open fails within about a second with an
// ErrUnavailable error naming path; a database written by a newer schema is
// refused with an ErrNotImplemented error, and a file that is not a bbolt
// database or is corrupt with an ErrDataLoss error.
func Open(path string) (*DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("open metadata %s: locked by another process (is another berthd using this data root?): %w", path, errdefs.ErrUnavailable)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
			return nil, fmt.Errorf("open metadata %s: %w: %w", path, errdefs.ErrDataLoss, err)
		}
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	db := &DB{path: path, b: b}
	if err := b.Update(db.initSchema); err != nil {
		b.Close()
		return nil, fmt.Errorf("open metadata %s: %w", path, err)
	}
	return db, nil
}

// initSchema creates the buckets of a new database and checks the schema
// version of an existing one.
func (db *DB) initSchema(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if v := meta.Get(keySchema); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("schema version %q is not a number: %w", v, errdefs.ErrDataLoss)
		}
		if n > SchemaVersion {
			return fmt.Errorf("schema version %d is newer than version %d that this berthd supports; run a newer berthd: %w", n, SchemaVersion, errdefs.ErrNotImplemented)
		}
		// Older versions would be migrated here; version 1 is the first.
	} else if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketImages, bucketTags, bucketLeases, bucketRecords} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// Path returns the file the database lives in.
func (db *DB) Path() string { return db.path }

// Close closes the database, releasing its file lock.
func (db *DB) Close() error {
	if err := db.b.Close(); err != nil {
		return fmt.Errorf("close metadata %s: %w", db.path, err)
	}
	return nil
}

// Bolt returns the underlying bbolt database, for packages that keep their
// own top-level bucket.
func (db *DB) Bolt() *bolt.DB { return db.b }

// View runs fn in a read-only transaction; many may run at once.
func (db *DB) View(fn func(*Tx) error) error {
	return db.b.View(func(b *bolt.Tx) error { return fn(&Tx{b: b}) })
}

// Update runs fn in a read-write transaction, committed if fn returns nil
// and rolled back otherwise. Updates run one at a time.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.b.Update(func(b *bolt.Tx) error { return fn(&Tx{b: b}) })
}

// Check verifies the database: bbolt's own page and freelist consistency
// and berth's invariants (every tag names a stored image). Problems are
// reported together as an ErrDataLoss error.
func (db *DB) Check() error {
	var errs []error
	err := db.View(func(tx *Tx) error {
		for err := range tx.b.Check() {
			errs = append(errs, err)
		}
		return tx.b.Bucket(bucketTags).ForEach(func(name, id []byte) error {
			if tx.b.Bucket(bucketImages).Get(id) == nil {
				errs = append(errs, fmt.Errorf("tag %s names missing image %s", name, id))
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("check metadata %s: %w", db.path, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("check metadata %s: %w: %w", db.path, errdefs.ErrDataLoss, errors.Join(errs...))
	}
	return nil
}

// Bolt returns the underlying bbolt transaction, for packages that keep
// their own top-level bucket and want to change it atomically with records
// of this package.
func (tx *Tx) Bolt() *bolt.Tx { return tx.b }

// bucket returns one of the top-level buckets Open created.
func (tx *Tx) bucket(name []byte) *bolt.Bucket { return tx.b.Bucket(name) }
