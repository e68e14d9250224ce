package native

import (
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/snapshot/snapshottest"
)

func newSnapshotter(t *testing.T, root string, db *bolt.DB) snapshot.Snapshotter {
	t.Helper()
	s, err := New(root, db)
	if err != nil {
		t.Fatalf("new native snapshotter: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	snapshottest.Run(t, newSnapshotter)
}
