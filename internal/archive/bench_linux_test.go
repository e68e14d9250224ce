package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// benchLayer is a ~100 MB layer: 200 directories, 3900 small files and
// 100 large ones, like a language runtime image layer.
func benchLayer(b *testing.B) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	content := make([]byte, 1<<20)
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	write := func(h *tar.Header, body []byte) {
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			b.Fatal(err)
		}
	}
	for d := 0; d < 200; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%03d", d)
		write(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mt}, nil)
		n := 20
		for f := 0; f < n; f++ {
			size := 1024 + rng.IntN(15*1024)
			if f == 0 && d%2 == 0 {
				size = 600<<10 + rng.IntN(200<<10) // 100 large files
			}
			off := rng.IntN(len(content) - size)
			write(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/file%02d.so", dir, f), Mode: 0o644, Size: int64(size), ModTime: mt}, content[off:off+size])
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkApply compares Apply with GNU tar extracting the same layer.
func BenchmarkApply(b *testing.B) {
	data := benchLayer(b)
	run := func(b *testing.B, extract func(dir string) error) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			b.StopTimer()
			dir, err := os.MkdirTemp("", "berth-bench-")
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			err = extract(dir)
			b.StopTimer()
			os.RemoveAll(dir)
			if err != nil {
				b.Fatal(err)
			}
			unix.Sync() // start each run without the last one's writeback
			b.StartTimer()
		}
	}
	b.Run("berth", func(b *testing.B) {
		run(b, func(dir string) error {
			_, err := Apply(context.Background(), dir, bytes.NewReader(data), ApplyOptions{})
			return err
		})
	})
	b.Run("tar-x", func(b *testing.B) {
		if _, err := exec.LookPath("tar"); err != nil {
			b.Skip("tar is not installed")
		}
		run(b, func(dir string) error {
			cmd := exec.Command("tar", "-xf", "-", "-C", dir)
			cmd.Stdin = bytes.NewReader(data)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("tar -x: %v: %s", err, out)
			}
			return nil
		})
	})
}
