package archive

import (
	"bytes"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	richTree(t, src)
	data := writeTree(t, src)
	if !bytes.Equal(data, writeTree(t, src)) {
		t.Fatal("writing the same tree twice gave different bytes")
	}
	apply(t, dst, data, ApplyOptions{})
	want, wantLinks := snapshot(t, src)
	got, gotLinks := snapshot(t, dst)
	// The fixture really has what must survive.
	if !strings.Contains(want["ping"].Xattrs, "security.capability") || want["suid"].Mode&0o7777 != 0o4755 ||
		want["srv"].Uid != 12345 || want["null"].Rdev == 0 || want["abs-link"].Uid != 7 {
		t.Fatalf("fixture lacks what it should test: %+v", want)
	}
	compareTrees(t, want, got)
	if len(wantLinks) != 1 || len(wantLinks[0]) != 3 {
		t.Fatalf("source hard link groups %v", wantLinks)
	}
	if len(gotLinks) != 1 || len(gotLinks[0]) != 3 || gotLinks[0][0] != wantLinks[0][0] {
		t.Errorf("hard links: want %v, got %v", wantLinks, gotLinks)
	}
	if !bytes.Equal(data, writeTree(t, dst)) {
		t.Error("the applied tree does not write the same tar as its source")
	}
}
