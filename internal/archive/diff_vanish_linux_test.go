package archive

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiffEntryVanished: the diff of a running container lists a
// directory, then compares its entries; one the container removed in
// between is a deletion (when the lower tree has it) or nothing (when
// only the upper had it), not an error.
func TestDiffEntryVanished(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(lower, "both"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func(dir string) int {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	lfd, ufd := open(lower), open(upper)
	var got []Change
	d := &differ{ctx: context.Background(), emit: func(kind ChangeKind, _ int, _, rel string, _ *unix.Stat_t) error {
		got = append(got, Change{Kind: kind, Path: "/" + rel})
		return nil
	}}
	// "both" was listed in both trees, then removed from the upper one.
	if err := d.both(lfd, ufd, "both", "both"); err != nil {
		t.Fatalf("both: %v", err)
	}
	// "new" was listed in the upper tree only, then removed.
	if err := d.added(ufd, "new", "new"); err != nil {
		t.Fatalf("added: %v", err)
	}
	if len(got) != 1 || got[0] != (Change{Kind: Delete, Path: "/both"}) {
		t.Errorf("changes = %+v, want only the deletion of /both", got)
	}
}
