//go:build linux

package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContextFilesDeterministic checks that the generated context is the
// same from call to call, has n distinct files of 1-8 KiB and holds the
// touch scenario's file.
func TestContextFilesDeterministic(t *testing.T) {
	a, b := contextFiles(300), contextFiles(300)
	if len(a) != 300 || len(b) != 300 {
		t.Fatalf("got %d and %d files, want 300", len(a), len(b))
	}
	seen := map[string]bool{}
	for i := range a {
		if a[i].path != b[i].path || !bytes.Equal(a[i].data, b[i].data) {
			t.Fatalf("file %d differs between two calls: %s, %s", i, a[i].path, b[i].path)
		}
		if seen[a[i].path] {
			t.Fatalf("file %s generated twice", a[i].path)
		}
		seen[a[i].path] = true
		if n := len(a[i].data); n < 1024 || n > 8*1024 {
			t.Errorf("%s has %d bytes, want 1-8 KiB", a[i].path, n)
		}
	}
	if !seen[touchPath] {
		t.Errorf("no %s among the files", touchPath)
	}
	if bytes.Equal(contextFiles(2)[1].data, a[1].data) {
		t.Error("a context of another size has the same content: the seed ignores n")
	}
}

// TestWriteContext writes the context twice and compares the trees,
// content, modes and mtimes; touch changes exactly one file.
func TestWriteContext(t *testing.T) {
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{dirA, dirB} {
		if err := writeContext(d, "bench/busybox:test", 50); err != nil {
			t.Fatal(err)
		}
	}
	treeA, treeB := tree(t, dirA), tree(t, dirB)
	if len(treeA) != 51 { // 50 files and the Dockerfile
		t.Fatalf("context has %d files, want 51", len(treeA))
	}
	for p, s := range treeA {
		if treeB[p] != s {
			t.Errorf("%s differs between two writes: %q, %q", p, s, treeB[p])
		}
	}
	df, err := os.ReadFile(filepath.Join(dirA, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), "FROM bench/busybox:test AS base\n") || !strings.Contains(string(df), "COPY --from=base /src /app/src\n") {
		t.Errorf("Dockerfile lacks its base stage or final COPY --from:\n%s", df)
	}
	if err := writeContext(dirA, "x", 1); err == nil {
		t.Error("writing a context over an existing directory succeeded")
	}
	if err := touch(dirB, 50, 3); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for p, s := range tree(t, dirB) {
		if treeA[p] != s {
			changed++
			if p != touchPath {
				t.Errorf("touch changed %s", p)
			}
		}
	}
	if changed != 1 {
		t.Errorf("touch changed %d files, want 1", changed)
	}
}

// tree maps every regular file under dir to its mode, mtime and content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = st.Mode().String() + " " + st.ModTime().UTC().String() + " " + string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCountSteps counts steps and cache hits in classic build output.
func TestCountSteps(t *testing.T) {
	out := "Sending build context to Docker daemon  1.9MB\n" +
		"Step 1/3 : FROM bench/busybox:build\n ---> d4ed5ad3cf09\n" +
		"Step 2/3 : RUN echo a\n ---> Using cache\n ---> c1b5c1291dc8\n" +
		"Step 3/3 : COPY src /src\n ---> 07e4ab427538\nSuccessfully built 07e4ab427538\n"
	if steps, cached := countSteps([]byte(out)); steps != 3 || cached != 1 {
		t.Errorf("countSteps = %d, %d; want 3, 1", steps, cached)
	}
	if steps, cached := countSteps(nil); steps != 0 || cached != 0 {
		t.Errorf("countSteps(nil) = %d, %d; want 0, 0", steps, cached)
	}
}
