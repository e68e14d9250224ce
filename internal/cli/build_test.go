package cli

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTree creates files (name -> content; a name ending in "/" is a
// directory, "@target" content a symlink) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			err := os.MkdirAll(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(body, "@"):
			if err := os.Symlink(body[1:], p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// tarNames lists the entries of a tar and their contents.
func tarNames(t *testing.T, r io.Reader) (names []string, bodies map[string]string, hdrs map[string]*tar.Header) {
	t.Helper()
	bodies, hdrs = map[string]string{}, map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		bodies[h.Name] = string(b)
		hdrs[h.Name] = h
	}
	slices.Sort(names)
	return names, bodies, hdrs
}

func contextTar(t *testing.T, dir, dockerfile string, stdin io.Reader) ([]string, map[string]string, map[string]*tar.Header, *contextDir) {
	t.Helper()
	cd, err := localContext(dir, dockerfile, stdin)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := cd.matcher()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cd.writeTar(&buf, pm); err != nil {
		t.Fatal(err)
	}
	names, bodies, hdrs := tarNames(t, &buf)
	return names, bodies, hdrs, cd
}

func TestBuildContextDockerignore(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"Dockerfile":          "FROM busybox\n",
		".dockerignore":       "# comment\n*.log\nsecret/\nnode_modules\n!keep.log\nbuild/**\n!build/out/app\nDockerfile\n.dockerignore\n",
		"a.log":               "x",
		"keep.log":            "kept",
		"src/main.go":         "package main",
		"src/deep/x.log":      "not matched: *.log is for the top only",
		"secret/key":          "k",
		"node_modules/m/i.js": "x",
		"build/tmp/o":         "x",
		"build/out/app":       "app",
		"build/out/other":     "x",
		"link":                "@src/main.go",
		"escape":              "@../../etc/passwd",
	})
	names, bodies, hdrs, cd := contextTar(t, dir, "", nil)
	want := []string{".dockerignore", "Dockerfile", "build/", "build/out/app", "escape", "keep.log", "link", "src/", "src/deep/", "src/deep/x.log", "src/main.go"}
	if !slices.Equal(names, want) {
		t.Errorf("context entries:\n got %q\nwant %q", names, want)
	}
	if cd.name() != "Dockerfile" || bodies["Dockerfile"] != "FROM busybox\n" || bodies["keep.log"] != "kept" {
		t.Errorf("Dockerfile %q, bodies %q", cd.name(), bodies)
	}
	for _, l := range []struct{ name, target string }{{"link", "src/main.go"}, {"escape", "../../etc/passwd"}} {
		h := hdrs[l.name]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != l.target {
			t.Errorf("%s is not sent as a symlink to %s: %+v", l.name, l.target, h)
		}
	}
	for n, h := range hdrs {
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
			t.Errorf("%s is not owned by root in the context: %d:%d %s", n, h.Uid, h.Gid, h.Uname)
		}
	}
}

func TestBuildContextDockerfile(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"ctx/sub/Build.df":  "FROM a\n",
		"ctx/.dockerignore": "sub\n",
		"ctx/file":          "f",
		"other/Dockerfile":  "FROM outside\n",
	})
	ctx := filepath.Join(dir, "ctx")

	// -f inside the context, relative to the working directory, sent even
	// though .dockerignore excludes its directory.
	t.Chdir(dir)
	names, _, _, cd := contextTar(t, ctx, "ctx/sub/Build.df", nil)
	if cd.name() != "sub/Build.df" || !slices.Contains(names, "sub/Build.df") || slices.Contains(names, "sub/") {
		t.Errorf("-f inside the context: name %q, entries %q", cd.name(), names)
	}

	// -f outside the context: added under a random name.
	names, bodies, _, cd := contextTar(t, ctx, "other/Dockerfile", nil)
	if !strings.HasPrefix(cd.name(), ".dockerfile.") || bodies[cd.name()] != "FROM outside\n" || slices.Contains(names, "Dockerfile") {
		t.Errorf("-f outside the context: name %q, entries %q", cd.name(), names)
	}

	// -f - reads stdin.
	_, bodies, _, cd = contextTar(t, ctx, "-", strings.NewReader("FROM stdin\n"))
	if !strings.HasPrefix(cd.name(), ".dockerfile.") || bodies[cd.name()] != "FROM stdin\n" {
		t.Errorf("-f -: name %q, bodies %q", cd.name(), bodies)
	}

	// No Dockerfile: docker's message.
	if _, err := localContext(ctx, "", nil); err == nil || err.Error() != "Cannot locate specified Dockerfile: Dockerfile" {
		t.Errorf("missing Dockerfile: %v", err)
	}
	if _, err := localContext(ctx, "nope", nil); err == nil || !strings.Contains(err.Error(), "Cannot locate specified Dockerfile: nope") {
		t.Errorf("missing -f: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other", ".dockerignore"), []byte("[\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cd, err := localContext(filepath.Join(dir, "other"), "", nil); err != nil {
		t.Fatal(err)
	} else if _, err := cd.matcher(); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Errorf("bad .dockerignore pattern: %v", err)
	}
	if _, err := localContext(filepath.Join(ctx, "file"), "", nil); err == nil || !strings.Contains(err.Error(), "context must be a directory") {
		t.Errorf("file as context: %v", err)
	}
}

func TestStdinContext(t *testing.T) {
	// A Dockerfile alone becomes a tar with it as Dockerfile.
	r, isTar, err := stdinContext(strings.NewReader("FROM busybox\nRUN true\n"))
	if err != nil || isTar {
		t.Fatalf("Dockerfile on stdin: tar=%v %v", isTar, err)
	}
	names, bodies, _ := tarNames(t, r)
	if !slices.Equal(names, []string{"Dockerfile"}) || bodies["Dockerfile"] != "FROM busybox\nRUN true\n" {
		t.Errorf("Dockerfile on stdin sent as %q %q", names, bodies)
	}
	// A tar passes through unchanged.
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM x\n"})
	cd, err := localContext(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := cd.matcher()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := cd.writeTar(&buf, pm); err != nil {
		t.Fatal(err)
	}
	orig := slices.Clone(buf.Bytes())
	r, isTar, err = stdinContext(&buf)
	if err != nil || !isTar {
		t.Fatalf("tar on stdin: tar=%v %v", isTar, err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, orig) {
		t.Errorf("tar on stdin was changed")
	}
	// Compressed streams are archives too.
	for _, head := range [][]byte{{0x1f, 0x8b, 8}, []byte("BZh91AY"), {0xfd, '7', 'z', 'X', 'Z', 0, 0}} {
		if !isArchive(head) {
			t.Errorf("%q not recognised as an archive", head)
		}
	}
}

func TestBuildAPIOptions(t *testing.T) {
	t.Setenv("BERTH_TEST_ARG", "from-env")
	o, err := buildAPIOptions(BuildOptions{
		Tags:      []string{"x", "reg:5000/y:1"},
		BuildArgs: []string{"A=1", "B=", "BERTH_TEST_ARG", "UNSET_BERTH_ARG"},
		Labels:    []string{"k=v", "empty"},
		Quiet:     true, Rm: true, Pull: true, Network: "none", Target: "t",
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(k string) string {
		v, ok := o.BuildArgs[k]
		switch {
		case !ok:
			return "<absent>"
		case v == nil:
			return "<nil>"
		}
		return *v
	}
	if get("A") != "1" || get("B") != "" || get("BERTH_TEST_ARG") != "from-env" || get("UNSET_BERTH_ARG") != "<nil>" {
		t.Errorf("build args: %v", o.BuildArgs)
	}
	if o.Labels["k"] != "v" || o.Labels["empty"] != "" || len(o.Labels) != 2 {
		t.Errorf("labels: %v", o.Labels)
	}
	if !o.SuppressOutput || !o.Remove || !o.PullParent || o.NetworkMode != "none" || o.Target != "t" || len(o.Tags) != 2 {
		t.Errorf("options: %+v", o)
	}
	if _, err := buildAPIOptions(BuildOptions{Tags: []string{"Bad:Tag:x"}}); err == nil || !strings.Contains(err.Error(), `"-t, --tag" flag`) {
		t.Errorf("bad tag: %v", err)
	}
	if _, err := buildAPIOptions(BuildOptions{BuildArgs: []string{"=x"}}); err == nil {
		t.Errorf("build arg without a name accepted")
	}
}
