package metadata

import (
	"encoding/json"
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// Generic JSON records, for services whose records this package need not
// understand (containers, volumes, build cache): one sub-bucket of
// "records" per kind, one key per record.

func checkKindKey(kind, key string) error {
	if kind == "" || key == "" {
		return fmt.Errorf("record %q/%q: empty kind or key: %w", kind, key, errdefs.ErrInvalidArgument)
	}
	return nil
}

// PutJSON stores v, encoded as JSON, as record key of kind, replacing any.
func (tx *Tx) PutJSON(kind, key string, v any) error {
	if err := checkKindKey(kind, key); err != nil {
		return fmt.Errorf("put %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("put %s %s: encode: %w: %w", kind, key, errdefs.ErrInvalidArgument, err)
	}
	bk, err := tx.bucket(bucketRecords).CreateBucketIfNotExists([]byte(kind))
	if err != nil {
		return fmt.Errorf("put %s %s: %w", kind, key, err)
	}
	if err := bk.Put([]byte(key), b); err != nil {
		return fmt.Errorf("put %s %s: %w", kind, key, err)
	}
	return nil
}

// GetJSON decodes record key of kind into v, or returns an ErrNotFound
// error.
func (tx *Tx) GetJSON(kind, key string, v any) error {
	var raw []byte
	if bk := tx.bucket(bucketRecords).Bucket([]byte(kind)); bk != nil {
		raw = bk.Get([]byte(key))
	}
	if raw == nil {
		return fmt.Errorf("%s %s: %w", kind, key, errdefs.ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s %s: decode record: %w: %w", kind, key, errdefs.ErrDataLoss, err)
	}
	return nil
}

// DeleteJSON removes record key of kind, or returns an ErrNotFound error.
func (tx *Tx) DeleteJSON(kind, key string) error {
	bk := tx.bucket(bucketRecords).Bucket([]byte(kind))
	if bk == nil || bk.Get([]byte(key)) == nil {
		return fmt.Errorf("delete %s %s: %w", kind, key, errdefs.ErrNotFound)
	}
	if err := bk.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete %s %s: %w", kind, key, err)
	}
	return nil
}

// ForEachJSON calls fn with every record of kind, in key order, stopping at
// the first error fn returns (which ForEachJSON returns). raw is valid only
// until fn returns; fn must not change records of kind. A kind never written
// has no records.
func (tx *Tx) ForEachJSON(kind string, fn func(key string, raw []byte) error) error {
	bk := tx.bucket(bucketRecords).Bucket([]byte(kind))
	if bk == nil {
		return nil
	}
	return bk.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil // a nested bucket, not a record
		}
		return fn(string(k), v)
	})
}
