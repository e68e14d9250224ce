//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/berth-project/berth/internal/testutil"
)

// fixtureTime is the modification time of every generated file, so that a
// seed always gives the same layer bytes.
var fixtureTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// layer is one generated layer: its uncompressed tar and gzip blob.
type layer struct {
	tar, gz []byte
	files   int
}

// genLayer makes a deterministic layer of about size unpacked bytes under
// top/: files in directories of up to 50, with log-normal sizes (median
// about 16 KiB, mean about 50 KiB, at most 4 MiB) and mixed
// compressibility by volume: about 30% random bytes (incompressible), 20%
// bytes from a 16-symbol alphabet (about 2:1) and 50% text-like lines of
// words (about 4:1). The gzip blob is made at the default level, as docker
// push and BuildKit do.
func genLayer(seed uint64, top string, size int64) (layer, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	words := make([]string, 600)
	for i := range words {
		w := make([]byte, 2+rng.IntN(9))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = string(w)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header) error {
		h.ModTime = fixtureTime
		h.Format = tar.FormatPAX
		return tw.WriteHeader(h)
	}
	if err := hdr(&tar.Header{Name: top + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return layer{}, err
	}
	var total int64
	files, dir := 0, ""
	data := make([]byte, 0, 4<<20)
	for total < size {
		if files%50 == 0 {
			dir = fmt.Sprintf("%s/d%03d", top, files/50)
			if err := hdr(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return layer{}, err
			}
		}
		n := int64(math.Exp(rng.NormFloat64()*1.5 + 9.69))
		n = min(max(n, 1), 4<<20, size-total)
		data = data[:0]
		switch k := rng.IntN(10); {
		case k < 3:
			for int64(len(data)) < n {
				data = append(data, byte(rng.Uint32()))
			}
		case k < 5:
			for int64(len(data)) < n {
				data = append(data, "0123456789abcdef"[rng.IntN(16)])
			}
		default:
			for int64(len(data)) < n {
				data = append(data, words[rng.IntN(len(words))]...)
				if rng.IntN(12) == 0 {
					data = append(data, '\n')
				} else {
					data = append(data, ' ')
				}
			}
		}
		data = data[:n]
		name := fmt.Sprintf("%s/f%05d", dir, files)
		if err := hdr(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: n}); err != nil {
			return layer{}, err
		}
		if _, err := tw.Write(data); err != nil {
			return layer{}, err
		}
		total += n
		files++
	}
	if err := tw.Close(); err != nil {
		return layer{}, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return layer{}, err
	}
	if err := zw.Close(); err != nil {
		return layer{}, err
	}
	return layer{tar: buf.Bytes(), gz: gz.Bytes(), files: files}, nil
}

// fixture is an image pushed to the bench registry.
type fixture struct {
	ref      string // "127.0.0.1:PORT/bench/name:tag"
	layers   []layer
	unpacked int64 // sum of the layers' tar sizes
	packed   int64 // sum of the gzip blob sizes
	files    int
	blobURLs []string // the layers' blob URLs, in order
}

// pushFixture generates count layers of size bytes each (seeds from seed
// on) and pushes them as one image ref to reg.
func pushFixture(reg *benchRegistry, repo string, seed uint64, count int, size int64) (*fixture, error) {
	f := &fixture{ref: reg.host + "/" + repo + ":bench"}
	var gzs [][]byte
	for i := 0; i < count; i++ {
		l, err := genLayer(seed+uint64(i), fmt.Sprintf("layer%02d", i), size)
		if err != nil {
			return nil, fmt.Errorf("generate layer %d: %w", i, err)
		}
		f.layers = append(f.layers, l)
		f.unpacked += int64(len(l.tar))
		f.packed += int64(len(l.gz))
		f.files += l.files
		gzs = append(gzs, l.gz)
	}
	img, err := testutil.ImageFromLayers(gzs, []string{"/bin/sh"}, map[string]string{"org.berth.bench": repo})
	if err != nil {
		return nil, fmt.Errorf("build image %s: %w", f.ref, err)
	}
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		f.blobURLs = append(f.blobURLs, fmt.Sprintf("http://%s/v2/%s/blobs/%s", reg.host, repo, d))
	}
	if err := testutil.PushImage(f.ref, img, testutil.PushOptions{}); err != nil {
		return nil, err
	}
	return f, nil
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
