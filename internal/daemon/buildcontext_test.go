package daemon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
)

// tarOf builds a tar archive of hdrs; a regular file's content is its
// header's Linkname field cleared and passed in bodies by name.
func tarOf(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tarEntry struct {
	hdr  tar.Header
	body string
}

func file(name, body string, mode int64) tarEntry {
	return tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, ModTime: time.Unix(1700000000, 0)}, body}
}

func dirEntry(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: time.Unix(1600000000, 0)}}
}

func link(typ byte, name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777}}
}

// contextDirs returns a scratch directory and the tmp directory inside it
// where contexts are extracted; escapes would land in the scratch one.
func contextDirs(t *testing.T) (scratch, tmp string) {
	scratch = t.TempDir()
	tmp = filepath.Join(scratch, "data", "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	return scratch, tmp
}

func TestExtractContext(t *testing.T) {
	plain := tarOf(t,
		file("Dockerfile", "FROM busybox\n", 0o644),
		dirEntry("sub/", 0o750),
		file("sub/run.sh", "#!/bin/sh\n", 0o4755),
		link(tar.TypeSymlink, "sub/abs", "/etc/passwd"),
		link(tar.TypeSymlink, "up", "../../../outside"),
		link(tar.TypeLink, "sub/hard", "Dockerfile"),
		file("/abs/file", "confined", 0o600),
	)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	streams := map[string][]byte{"plain": plain, "gzip": gz.Bytes()}
	for _, prog := range []string{"bzip2", "xz"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Logf("%s is not installed: its compression is not tested", prog)
			continue
		}
		cmd := exec.Command(prog, "-c")
		cmd.Stdin = bytes.NewReader(plain)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		streams[prog] = out
	}
	for name, data := range streams {
		t.Run(name, func(t *testing.T) {
			scratch, tmp := contextDirs(t)
			dir, err := extractContext(context.Background(), tmp, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Dir(dir) != tmp {
				t.Errorf("context extracted to %s, not under %s", dir, tmp)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "Dockerfile")); err != nil || string(b) != "FROM busybox\n" {
				t.Errorf("Dockerfile: %q %v", b, err)
			}
			st, err := os.Lstat(filepath.Join(dir, "sub/run.sh"))
			if err != nil || st.Mode() != 0o755|os.ModeSetuid {
				t.Errorf("sub/run.sh mode: %v %v", st, err)
			}
			if st, err := os.Lstat(filepath.Join(dir, "sub")); err != nil || st.Mode().Perm() != 0o750 || !st.ModTime().Equal(time.Unix(1600000000, 0)) {
				t.Errorf("sub: %v %v", st, err)
			}
			if st, err := os.Lstat(filepath.Join(dir, "Dockerfile")); err != nil || !st.ModTime().Equal(time.Unix(1700000000, 0)) {
				t.Errorf("Dockerfile mtime: %v %v", st, err)
			}
			for l, want := range map[string]string{"sub/abs": "/etc/passwd", "up": "../../../outside"} {
				if got, err := os.Readlink(filepath.Join(dir, l)); err != nil || got != want {
					t.Errorf("symlink %s: %q %v, want %q", l, got, err, want)
				}
			}
			a, _ := os.Stat(filepath.Join(dir, "Dockerfile"))
			b, _ := os.Stat(filepath.Join(dir, "sub/hard"))
			if a == nil || b == nil || !os.SameFile(a, b) {
				t.Errorf("sub/hard is not a hard link of Dockerfile")
			}
			if got, err := os.ReadFile(filepath.Join(dir, "abs/file")); err != nil || string(got) != "confined" {
				t.Errorf("absolute name: %q %v", got, err)
			}
			assertNothingOutside(t, scratch, tmp, dir)
		})
	}
}

func TestExtractContextHostile(t *testing.T) {
	cases := map[string][]byte{
		"dotdot":               tarOf(t, file("a", "x", 0o644), file("../escape", "x", 0o644)),
		"dotdot deep":          tarOf(t, file("a/../../../escape", "x", 0o644)),
		"symlink then file":    tarOf(t, link(tar.TypeSymlink, "l", "../.."), file("l/escape", "x", 0o644)),
		"symlink abs then dir": tarOf(t, link(tar.TypeSymlink, "l", "/"), dirEntry("l/escape/", 0o755)),
		"hardlink out":         tarOf(t, link(tar.TypeLink, "h", "../../escape")),
		"hardlink via symlink": tarOf(t, link(tar.TypeSymlink, "l", "/etc"), link(tar.TypeLink, "h", "l/passwd")),
		"char device":          tarOf(t, tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3, Mode: 0o666}}),
		"block device":         tarOf(t, tarEntry{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Devmajor: 8, Mode: 0o666}}),
		"fifo":                 tarOf(t, tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o666}}),
		"truncated":            tarOf(t, file("big", strings.Repeat("x", 10000), 0o644))[:3000],
		"not a tar":            []byte(strings.Repeat("this is not a tar archive\n", 40)),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			scratch, tmp := contextDirs(t)
			dir, err := extractContext(context.Background(), tmp, bytes.NewReader(data))
			if err == nil {
				t.Fatalf("extracted into %s, want an error", dir)
			}
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("error is not classified invalid argument: %v", err)
			}
			t.Log(err)
			left, _ := os.ReadDir(tmp)
			if len(left) != 0 {
				t.Errorf("a failed extraction left %d entries in %s", len(left), tmp)
			}
			assertNothingOutside(t, scratch, tmp, "")
		})
	}
	// An error names the entry.
	_, tmp := contextDirs(t)
	_, err := extractContext(context.Background(), tmp, bytes.NewReader(cases["char device"]))
	if err == nil || !strings.Contains(err.Error(), `"null"`) || !strings.Contains(err.Error(), "device nodes") {
		t.Errorf("device node error: %v", err)
	}
}

// assertNothingOutside checks that scratch holds only data/tmp and, if
// dir is not empty, dir inside it.
func assertNothingOutside(t *testing.T, scratch, tmp, dir string) {
	t.Helper()
	filepath.Walk(scratch, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		switch {
		case p == scratch, p == filepath.Join(scratch, "data"), p == tmp:
		case dir != "" && (p == dir || strings.HasPrefix(p, dir+"/")):
			return nil
		default:
			t.Errorf("extraction wrote %s outside its directory", p)
		}
		return nil
	})
	if _, err := os.Lstat("/escape"); err == nil {
		t.Errorf("/escape exists")
	}
}

// benchContext is a deterministic build context like bench/build's: a
// Dockerfile and 300 files of 1-8 KiB in nested directories, as the
// docker CLI sends them (directory entries before their content, owner
// root).
func benchContext(tb testing.TB) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	write := func(h *tar.Header, body []byte) {
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			tb.Fatal(err)
		}
	}
	write(&tar.Header{Typeflag: tar.TypeReg, Name: "Dockerfile", Mode: 0o644, Size: 13, ModTime: mtime}, []byte("FROM busybox\n"))
	seen := map[string]bool{}
	for i := range 300 {
		dir := fmt.Sprintf("src/d%d/e%d", i%10, i%3)
		for _, d := range []string{"src", path.Dir(dir), dir} {
			if !seen[d] {
				seen[d] = true
				write(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: mtime}, nil)
			}
		}
		body := bytes.Repeat([]byte{byte('a' + i%26)}, 1024+(i*7919)%(7*1024))
		write(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/f%03d.txt", dir, i), Mode: 0o644, Size: int64(len(body)), ModTime: mtime}, body)
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkExtractContext extracts benchContext and removes it again, as
// a build does.
func BenchmarkExtractContext(b *testing.B) {
	data := benchContext(b)
	tmp := b.TempDir()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		dir, err := extractContext(context.Background(), tmp, bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
	}
}
