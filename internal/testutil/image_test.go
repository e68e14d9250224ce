package testutil

import (
	"runtime"
	"testing"
)

// TestImagesAreDeterministic checks that the fixture images have the
// layers they promise and the same digests every time they are built, so
// that tests can compare digests across runs.
func TestImagesAreDeterministic(t *testing.T) {
	requireRoot(t)
	a, err := MultiLayerImage()
	if err != nil {
		t.Fatal(err)
	}
	b, err := MultiLayerImage()
	if err != nil {
		t.Fatal(err)
	}
	da, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if da != db {
		t.Fatalf("two builds of MultiLayerImage differ: %s and %s", da, db)
	}
	layers, err := a.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("MultiLayerImage has %d layers, want 3", len(layers))
	}
	cf, err := a.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != runtime.GOARCH || cf.OS != "linux" || len(cf.RootFS.DiffIDs) != 3 || len(cf.History) != 3 {
		t.Fatalf("config: platform %s/%s, %d diff ids, %d history entries", cf.OS, cf.Architecture, len(cf.RootFS.DiffIDs), len(cf.History))
	}
	idx, err := IndexOf(a)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != da.String() || im.Manifests[0].Platform.Architecture != runtime.GOARCH {
		t.Fatalf("index: %+v", im.Manifests)
	}
}
