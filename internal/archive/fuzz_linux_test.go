package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzApply applies arbitrary bytes as a layer into a root inside a parent
// directory and fails if anything outside the root changed.
func FuzzApply(f *testing.F) {
	tmp := f.TempDir()
	richTree(f, tmp)
	// Small seeds keep the fuzzer's minimisation fast.
	if err := os.Truncate(filepath.Join(tmp, "etc/sub/big"), 100); err != nil {
		f.Fatal(err)
	}
	var full bytes.Buffer
	if err := WriteTree(context.Background(), &full, tmp); err != nil {
		f.Fatal(err)
	}
	f.Add(full.Bytes())
	f.Add(baseLayer(f))
	f.Add(topLayer(f))
	old := time.Unix(1000, 0)
	lnk := symlink("l", "/outside")
	lnk.hdr.Uid, lnk.hdr.ModTime = 4242, old
	for _, seed := range [][]entry{
		{file("../x", "evil")},
		{file("/abs", "x"), file("a/../../x", "x")},
		{symlink("evil", "../sentinel"), file("evil", "replaced")},
		{symlink("a", ".."), file("a/sentinel", "evil")},
		{symlink("a", "../outdir"), file("a/keep", "evil"), dir("a/")},
		{symlink("c", "d"), symlink("d", "../../.."), file("c/outdir/keep", "evil")},
		{hardlink("h", "../sentinel")},
		{symlink("s", "../sentinel"), hardlink("h", "s"), file("h", "evil")},
		{whiteout("../.wh.sentinel"), whiteout("sub/.wh..."), whiteout(".wh..")},
		{symlink("u", "../outdir"), whiteout("u/.wh.keep"), whiteout("u/.wh..wh..opq")},
		{lnk, symlink("d", "../outdir"), dir("d/")},
		{hardlink("k", "keep"), file("keep2", "x"), whiteout(".wh..wh..opq")},
	} {
		f.Add(makeTar(f, seed...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Content is bounded by the input except for sparse files, which
		// expand: keep those small.
		var total int64
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if total += h.Size; total > 1<<20 {
				return // inputs that declare more than 1 MiB are not worth the disk
			}
		}
		j := newJail(t)
		opts := ApplyOptions{}
		if len(data)%2 == 1 {
			opts = ApplyOptions{Whiteouts: WhiteoutOverlay, Lowers: []string{j.outdir}}
		}
		Apply(context.Background(), j.root, bytes.NewReader(data), opts) //nolint:errcheck // only the outside matters
		j.check(t)
	})
}
