package metadata

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
)

// Lease keeps resources from garbage collection while an operation (a pull,
// a build, an import) that has not yet recorded them is in progress. A zero
// Expires means it never expires; acting on expiry is the collector's job.
type Lease struct {
	ID        string            `json:"id"`
	Created   time.Time         `json:"created"`
	Expires   time.Time         `json:"expires,omitzero"`
	Labels    map[string]string `json:"labels,omitempty"`
	Resources []Resource        `json:"resources,omitempty"`
}

// Resource is one thing a lease holds.
type Resource struct {
	Kind string `json:"kind"` // ResourceContent, ResourceSnapshot or ResourceIngest
	ID   string `json:"id"`   // a digest, a snapshot key or an ingest ref
}

// The kinds of resource a lease can hold.
const (
	ResourceContent  = "content"
	ResourceSnapshot = "snapshot"
	ResourceIngest   = "ingest"
)

// PutLease stores l, replacing any lease with the same ID. A zero Created
// is set to now.
func (tx *Tx) PutLease(l Lease) error {
	if l.ID == "" {
		return fmt.Errorf("put lease: empty id: %w", errdefs.ErrInvalidArgument)
	}
	for _, r := range l.Resources {
		if err := checkResource(r); err != nil {
			return fmt.Errorf("put lease %s: %w", l.ID, err)
		}
	}
	if l.Created.IsZero() {
		l.Created = time.Now().UTC()
	}
	return tx.putLease(l)
}

func (tx *Tx) putLease(l Lease) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("put lease %s: %w", l.ID, err)
	}
	if err := tx.bucket(bucketLeases).Put([]byte(l.ID), b); err != nil {
		return fmt.Errorf("put lease %s: %w", l.ID, err)
	}
	return nil
}

func checkResource(r Resource) error {
	switch r.Kind {
	case ResourceContent, ResourceSnapshot, ResourceIngest:
	default:
		return fmt.Errorf("resource kind %q: want %s, %s or %s: %w", r.Kind, ResourceContent, ResourceSnapshot, ResourceIngest, errdefs.ErrInvalidArgument)
	}
	if r.ID == "" {
		return fmt.Errorf("%s resource: empty id: %w", r.Kind, errdefs.ErrInvalidArgument)
	}
	return nil
}

// GetLease returns the lease with the given ID, or an ErrNotFound error.
func (tx *Tx) GetLease(id string) (Lease, error) {
	b := tx.bucket(bucketLeases).Get([]byte(id))
	if b == nil {
		return Lease{}, fmt.Errorf("lease %s: %w", id, errdefs.ErrNotFound)
	}
	var l Lease
	if err := json.Unmarshal(b, &l); err != nil {
		return Lease{}, fmt.Errorf("lease %s: decode record: %w: %w", id, errdefs.ErrDataLoss, err)
	}
	return l, nil
}

// AddResource adds r to lease leaseID (ErrNotFound if there is none); adding
// a resource the lease already holds does nothing.
func (tx *Tx) AddResource(leaseID string, r Resource) error {
	if err := checkResource(r); err != nil {
		return fmt.Errorf("add resource to lease %s: %w", leaseID, err)
	}
	l, err := tx.GetLease(leaseID)
	if err != nil {
		return fmt.Errorf("add resource: %w", err)
	}
	if slices.Contains(l.Resources, r) {
		return nil
	}
	l.Resources = append(l.Resources, r)
	return tx.putLease(l)
}

// DeleteResource removes r from lease leaseID; ErrNotFound if there is no
// such lease or it does not hold r.
func (tx *Tx) DeleteResource(leaseID string, r Resource) error {
	l, err := tx.GetLease(leaseID)
	if err != nil {
		return fmt.Errorf("delete resource: %w", err)
	}
	i := slices.Index(l.Resources, r)
	if i < 0 {
		return fmt.Errorf("lease %s: %s resource %s: %w", leaseID, r.Kind, r.ID, errdefs.ErrNotFound)
	}
	l.Resources = slices.Delete(l.Resources, i, i+1)
	return tx.putLease(l)
}

// DeleteLease removes the lease with the given ID, or returns an
// ErrNotFound error. The resources it held become collectable.
func (tx *Tx) DeleteLease(id string) error {
	leases := tx.bucket(bucketLeases)
	if leases.Get([]byte(id)) == nil {
		return fmt.Errorf("delete lease %s: %w", id, errdefs.ErrNotFound)
	}
	if err := leases.Delete([]byte(id)); err != nil {
		return fmt.Errorf("delete lease %s: %w", id, err)
	}
	return nil
}

// Leases returns every lease, ordered by ID.
func (tx *Tx) Leases() ([]Lease, error) {
	var out []Lease
	err := tx.bucket(bucketLeases).ForEach(func(k, v []byte) error {
		var l Lease
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("lease %s: decode record: %w: %w", k, errdefs.ErrDataLoss, err)
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}
