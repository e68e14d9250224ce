package metadata

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-project/berth/internal/errdefs"
)

func openDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	return db
}

func testImage(n string) Image {
	idx := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("index " + n), Size: 300}
	return Image{
		ID:          digest.FromString("config " + n),
		Manifest:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("manifest " + n), Size: 500},
		Index:       &idx,
		RepoDigests: []string{"docker.io/library/busybox@" + idx.Digest.String()},
		Parent:      digest.FromString("parent " + n),
		Created:     time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		LastTagTime: time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC),
		Labels:      map[string]string{"n": n},
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if db.Path() != path || db.Bolt() == nil {
		t.Errorf("Path %q Bolt %v", db.Path(), db.Bolt())
	}
}

func TestImageRoundTrip(t *testing.T) {
	db := openDB(t)
	a, b := testImage("a"), testImage("b")
	b.Index, b.Parent, b.Labels, b.RepoDigests = nil, "", nil, nil
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutImage(a); err != nil {
			return err
		}
		return tx.PutImage(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		for _, want := range []Image{a, b} {
			got, err := tx.GetImage(want.ID)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("GetImage = %+v, want %+v", got, want)
			}
		}
		all, err := tx.Images()
		if err != nil {
			return err
		}
		if len(all) != 2 {
			t.Errorf("Images returned %d, want 2", len(all))
		}
		if _, err := tx.GetImage(digest.FromString("absent")); !errdefs.IsNotFound(err) {
			t.Errorf("GetImage of absent image = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A zero Created is filled in.
	c := testImage("c")
	c.Created = time.Time{}
	before := time.Now()
	db.Update(func(tx *Tx) error { return tx.PutImage(c) })
	db.View(func(tx *Tx) error {
		got, err := tx.GetImage(c.ID)
		if err != nil || got.Created.Before(before.Add(-time.Second)) {
			t.Errorf("Created of an image put without one = %v, %v; want about now", got.Created, err)
		}
		return nil
	})
}

func TestImageValidation(t *testing.T) {
	db := openDB(t)
	bad := []func(*Image){
		func(i *Image) { i.ID = "" },
		func(i *Image) { i.ID = "sha256:nothex" },
		func(i *Image) { i.Manifest.Digest = "" },
		func(i *Image) { i.Index = &ocispec.Descriptor{Digest: "md5:00"} },
		func(i *Image) { i.Parent = "bogus" },
	}
	for n, mutate := range bad {
		img := testImage("x")
		mutate(&img)
		err := db.Update(func(tx *Tx) error { return tx.PutImage(img) })
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("case %d: PutImage(%+v) = %v, want ErrInvalidArgument", n, img, err)
		}
	}
	db.View(func(tx *Tx) error {
		if all, _ := tx.Images(); len(all) != 0 {
			t.Errorf("invalid images stored: %+v", all)
		}
		return nil
	})
}

func TestTags(t *testing.T) {
	db := openDB(t)
	a, b := testImage("a"), testImage("b")
	const latest, old = "docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"
	byDigest := "docker.io/library/busybox@" + digest.FromString("m").String()
	err := db.Update(func(tx *Tx) error {
		if err := tx.SetTag(latest, a.ID); !errdefs.IsNotFound(err) {
			t.Errorf("SetTag to a missing image = %v, want ErrNotFound", err)
		}
		if err := tx.PutImage(a); err != nil {
			return err
		}
		if err := tx.PutImage(b); err != nil {
			return err
		}
		for _, name := range []string{latest, old, byDigest} {
			if err := tx.SetTag(name, a.ID); err != nil {
				return err
			}
		}
		return tx.SetTag(latest, b.ID) // moves the tag
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *Tx) error {
		if id, err := tx.Tag(latest); err != nil || id != b.ID {
			t.Errorf("Tag(latest) = %s, %v; want %s", id, err, b.ID)
		}
		if _, err := tx.Tag("docker.io/library/busybox:absent"); !errdefs.IsNotFound(err) {
			t.Errorf("Tag of absent name = %v, want ErrNotFound", err)
		}
		tags, err := tx.Tags()
		if err != nil {
			return err
		}
		want := map[string]digest.Digest{latest: b.ID, old: a.ID, byDigest: a.ID}
		if !reflect.DeepEqual(tags, want) {
			t.Errorf("Tags = %v, want %v", tags, want)
		}
		of, err := tx.TagsOf(a.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(of, []string{old, byDigest}) {
			t.Errorf("TagsOf(a) = %v, want [%s %s]", of, old, byDigest)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "busybox:latest", "docker.io/library/busybox", "docker.io/library/BusyBox:latest", "docker.io/library/busybox:bad tag"} {
		err := db.Update(func(tx *Tx) error { return tx.SetTag(name, a.ID) })
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("SetTag(%q) = %v, want ErrInvalidArgument", name, err)
		}
	}
	err = db.Update(func(tx *Tx) error {
		if err := tx.DeleteTag(old); err != nil {
			return err
		}
		if err := tx.DeleteTag(old); !errdefs.IsNotFound(err) {
			t.Errorf("second DeleteTag = %v, want ErrNotFound", err)
		}
		if _, err := tx.GetImage(a.ID); err != nil {
			t.Errorf("DeleteTag removed the image: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeleteImageRemovesItsTags(t *testing.T) {
	db := openDB(t)
	a, b := testImage("a"), testImage("b")
	err := db.Update(func(tx *Tx) error {
		tx.PutImage(a)
		tx.PutImage(b)
		for _, n := range []string{"x:1", "x:2", "y:1"} {
			if err := tx.SetTag("docker.io/library/"+n, a.ID); err != nil {
				return err
			}
		}
		return tx.SetTag("docker.io/library/b:1", b.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.DeleteImage(a.ID) }); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		tags, _ := tx.Tags()
		if !reflect.DeepEqual(tags, map[string]digest.Digest{"docker.io/library/b:1": b.ID}) {
			t.Errorf("tags after DeleteImage(a) = %v, want only b's", tags)
		}
		if _, err := tx.GetImage(a.ID); !errdefs.IsNotFound(err) {
			t.Errorf("GetImage after delete = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err := db.Update(func(tx *Tx) error { return tx.DeleteImage(a.ID) }); !errdefs.IsNotFound(err) {
		t.Errorf("second DeleteImage = %v, want ErrNotFound", err)
	}
	// A failing transaction leaves nothing half done.
	boom := errors.New("boom")
	err = db.Update(func(tx *Tx) error {
		if err := tx.DeleteImage(b.ID); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	db.View(func(tx *Tx) error {
		if id, err := tx.Tag("docker.io/library/b:1"); err != nil || id != b.ID {
			t.Errorf("rolled back delete lost the tag: %s, %v", id, err)
		}
		return nil
	})
}

func TestViewIsReadOnly(t *testing.T) {
	db := openDB(t)
	err := db.View(func(tx *Tx) error { return tx.PutImage(testImage("a")) })
	if err == nil {
		t.Error("PutImage in a View succeeded")
	}
}

func TestLeases(t *testing.T) {
	db := openDB(t)
	content := Resource{Kind: ResourceContent, ID: digest.FromString("layer").String()}
	snap := Resource{Kind: ResourceSnapshot, ID: "overlay/12"}
	l := Lease{ID: "pull-1", Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Labels: map[string]string{"for": "pull"}}
	err := db.Update(func(tx *Tx) error {
		if err := tx.AddResource("pull-1", content); !errdefs.IsNotFound(err) {
			t.Errorf("AddResource to a missing lease = %v, want ErrNotFound", err)
		}
		if err := tx.PutLease(l); err != nil {
			return err
		}
		for _, r := range []Resource{content, snap, content} {
			if err := tx.AddResource("pull-1", r); err != nil {
				return err
			}
		}
		for _, r := range []Resource{{Kind: "volume", ID: "x"}, {Kind: ResourceIngest}} {
			if err := tx.AddResource("pull-1", r); !errdefs.IsInvalidArgument(err) {
				t.Errorf("AddResource(%+v) = %v, want ErrInvalidArgument", r, err)
			}
		}
		if err := tx.PutLease(Lease{}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("PutLease without id = %v, want ErrInvalidArgument", err)
		}
		return tx.PutLease(Lease{ID: "build-2", Resources: []Resource{{Kind: ResourceIngest, ID: "ref"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		got, err := tx.GetLease("pull-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Created.IsZero() || !got.Expires.Equal(l.Expires) || got.Labels["for"] != "pull" {
			t.Errorf("GetLease = %+v", got)
		}
		if !reflect.DeepEqual(got.Resources, []Resource{content, snap}) {
			t.Errorf("resources %+v, want content and snapshot once each", got.Resources)
		}
		all, _ := tx.Leases()
		if len(all) != 2 || all[0].ID != "build-2" || all[1].ID != "pull-1" {
			t.Errorf("Leases = %+v", all)
		}
		return nil
	})
	err = db.Update(func(tx *Tx) error {
		if err := tx.DeleteResource("pull-1", content); err != nil {
			return err
		}
		if err := tx.DeleteResource("pull-1", content); !errdefs.IsNotFound(err) {
			t.Errorf("second DeleteResource = %v, want ErrNotFound", err)
		}
		if got, _ := tx.GetLease("pull-1"); !reflect.DeepEqual(got.Resources, []Resource{snap}) {
			t.Errorf("resources after DeleteResource: %+v", got.Resources)
		}
		if err := tx.DeleteLease("pull-1"); err != nil {
			return err
		}
		if _, err := tx.GetLease("pull-1"); !errdefs.IsNotFound(err) {
			t.Errorf("GetLease after delete = %v, want ErrNotFound", err)
		}
		if err := tx.DeleteLease("pull-1"); !errdefs.IsNotFound(err) {
			t.Errorf("second DeleteLease = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestJSONRecords(t *testing.T) {
	db := openDB(t)
	type container struct {
		Name  string
		Image string
		Ports []int
	}
	c1 := container{Name: "web", Image: "nginx", Ports: []int{80, 443}}
	err := db.Update(func(tx *Tx) error {
		if err := tx.PutJSON("containers", "c1", c1); err != nil {
			return err
		}
		if err := tx.PutJSON("containers", "c2", container{Name: "db"}); err != nil {
			return err
		}
		if err := tx.PutJSON("volumes", "c1", map[string]string{"driver": "local"}); err != nil {
			return err
		}
		if err := tx.PutJSON("", "k", 1); !errdefs.IsInvalidArgument(err) {
			t.Errorf("PutJSON with empty kind = %v, want ErrInvalidArgument", err)
		}
		if err := tx.PutJSON("containers", "bad", func() {}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("PutJSON of a func = %v, want ErrInvalidArgument", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		var got container
		if err := tx.GetJSON("containers", "c1", &got); err != nil || !reflect.DeepEqual(got, c1) {
			t.Errorf("GetJSON = %+v, %v; want %+v", got, err, c1)
		}
		if err := tx.GetJSON("containers", "c3", &got); !errdefs.IsNotFound(err) {
			t.Errorf("GetJSON of absent key = %v, want ErrNotFound", err)
		}
		if err := tx.GetJSON("networks", "c1", &got); !errdefs.IsNotFound(err) {
			t.Errorf("GetJSON of absent kind = %v, want ErrNotFound", err)
		}
		var n int
		if err := tx.GetJSON("containers", "c1", &n); !errdefs.IsDataLoss(err) {
			t.Errorf("GetJSON into the wrong type = %v, want ErrDataLoss", err)
		}
		var keys []string
		err := tx.ForEachJSON("containers", func(k string, raw []byte) error {
			keys = append(keys, k+"="+string(raw[:8]))
			return nil
		})
		if err != nil || !reflect.DeepEqual(keys, []string{`c1={"Name":`, `c2={"Name":`}) {
			t.Errorf("ForEachJSON visited %q, %v", keys, err)
		}
		calls := 0
		if err := tx.ForEachJSON("networks", func(string, []byte) error { calls++; return nil }); err != nil || calls != 0 {
			t.Errorf("ForEachJSON of an unknown kind: %d calls, %v", calls, err)
		}
		stop := errors.New("stop")
		if err := tx.ForEachJSON("containers", func(string, []byte) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("ForEachJSON = %v, want fn's error", err)
		}
		return nil
	})
	err = db.Update(func(tx *Tx) error {
		if err := tx.DeleteJSON("containers", "c1"); err != nil {
			return err
		}
		if err := tx.DeleteJSON("containers", "c1"); !errdefs.IsNotFound(err) {
			t.Errorf("second DeleteJSON = %v, want ErrNotFound", err)
		}
		var v map[string]string
		if err := tx.GetJSON("volumes", "c1", &v); err != nil || v["driver"] != "local" {
			t.Errorf("deleting a container record touched the volume of the same key: %v %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Bolt().View(func(tx *bolt.Tx) error {
		if v := string(tx.Bucket(bucketMeta).Get(keySchema)); v != "1" {
			t.Errorf("schema version %q, want 1", v)
		}
		return nil
	})
	db.Update(func(tx *Tx) error { return tx.PutImage(testImage("a")) })
	db.Close()

	// Reopening the same version keeps the data.
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if _, err := tx.GetImage(testImage("a").ID); err != nil {
			t.Errorf("image lost across reopen: %v", err)
		}
		return nil
	})
	// A newer berthd wrote version 7.
	db.Bolt().Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("7")) })
	db.Close()
	_, err = Open(path)
	if !errdefs.IsNotImplemented(err) || !strings.Contains(err.Error(), "schema version 7") || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a newer schema = %v, want ErrNotImplemented naming version 7 and the path", err)
	}
	// The refused open released the file: another open (of a fixed file) works.
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("file still locked after a refused Open: %v", err)
	}
	b.Close()
}

func TestOpenNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metadata.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a bolt file\n", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errdefs.IsDataLoss(err) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a garbage file = %v, want ErrDataLoss naming the path", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing-dir", "metadata.db")); err == nil {
		t.Error("Open under a missing directory succeeded")
	}
}
