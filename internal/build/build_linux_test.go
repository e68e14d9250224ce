package build

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
)

// TestMetadataInstructions builds a Dockerfile using every instruction
// that only changes the config and reads each effect back from the image
// config and history.
func TestMetadataInstructions(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{"Dockerfile": `
ARG BASE=busybox
FROM ${BASE}:latest AS base
ARG GREETING=hello
ARG FROMARG
ENV A=1 B="two words"
ENV C=${A}-${GREETING}
LABEL team=berth "com.example.k"="v w"
MAINTAINER someone@example.com
WORKDIR /app
WORKDIR sub
USER berth:berth
EXPOSE 80 8000-8001/udp
VOLUME ["/data"]
STOPSIGNAL SIGINT
ONBUILD RUN echo triggered
SHELL ["/bin/sh", "-ec"]
CMD echo $A
ENTRYPOINT ["/bin/env"]
HEALTHCHECK --interval=5s CMD true
`})
	id, out := e.mustBuild(dir, Options{
		BuildArgs: map[string]*string{"GREETING": ptr("hi"), "UNUSED": ptr("x")},
		Labels:    map[string]string{"extra": "yes", "another": "1 2"},
		Tags:      []string{"meta:1", "meta:2"},
	})
	oc, c := e.config(id)
	if want := []string{"PATH=" + defaultPathEnv, "A=1", "B=two words", "C=1-hi"}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("env %q, want %q", c.Env, want)
	}
	if c.Labels["team"] != "berth" || c.Labels["com.example.k"] != "v w" || c.Labels["extra"] != "yes" {
		t.Errorf("labels %v", c.Labels)
	}
	if c.WorkingDir != "/app/sub" || c.User != "berth:berth" || c.StopSignal != "SIGINT" {
		t.Errorf("workdir %q user %q stopsignal %q", c.WorkingDir, c.User, c.StopSignal)
	}
	for _, p := range []string{"80/tcp", "8000/udp", "8001/udp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed: %v", p, c.ExposedPorts)
		}
	}
	if _, ok := c.Volumes["/data"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes %v", c.Volumes)
	}
	if !reflect.DeepEqual(c.OnBuild, []string{"RUN echo triggered"}) {
		t.Errorf("onbuild %q", c.OnBuild)
	}
	// ENTRYPOINT after CMD in the same stage keeps the CMD, which the
	// SHELL before it runs.
	if want := []string{"/bin/sh", "-ec", "echo $A"}; !reflect.DeepEqual(c.Cmd, want) {
		t.Errorf("cmd %q, want %q", c.Cmd, want)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/bin/env"}) {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	// MAINTAINER sets the author of every later step's image.
	if oc.Author != "someone@example.com" {
		t.Errorf("author %q", oc.Author)
	}
	if fi := e.lstat(id, "/app/sub"); !fi.IsDir() {
		t.Errorf("/app/sub is not a directory")
	}
	h := e.history(id)
	for _, want := range []string{
		"/bin/sh -c #(nop)  ARG GREETING=hello",
		"/bin/sh -c #(nop)  ENV A=1 B=two words",
		"/bin/sh -c #(nop)  ENV C=1-hi",
		"/bin/sh -c #(nop) WORKDIR /app/sub",
		"/bin/sh -c #(nop)  USER berth:berth",
		"/bin/sh -c #(nop)  EXPOSE 80 8000-8001/udp",
		`/bin/sh -ec #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" '\x00'}`,
		"/bin/sh -c #(nop)  VOLUME [/data]",
		"/bin/sh -c #(nop)  ONBUILD RUN echo triggered",
		`/bin/sh -ec #(nop)  CMD ["/bin/sh" "-ec" "echo $A"]`,
		`/bin/sh -ec #(nop)  ENTRYPOINT ["/bin/env"]`,
		`/bin/sh -ec #(nop)  LABEL extra=yes`,
		`/bin/sh -ec #(nop)  LABEL another=1 2`,
	} {
		if !slices.Contains(h, want) {
			t.Errorf("history lacks %q:\n%s", want, strings.Join(h, "\n"))
		}
	}
	// busybox's own entry, then one per instruction after FROM, plus
	// one step per --label, in key order (as Docker's classic builder).
	if len(h) != 1+17+2 {
		t.Errorf("%d history entries, want 20:\n%s", len(h), strings.Join(h, "\n"))
	}
	for _, want := range []string{
		"Step 1/20 : FROM ${BASE}:latest AS base\n ---> " + shortID(e.busybox) + "\n",
		"Step 19/20 : LABEL another=1 2\n ---> Running in ",
		"Step 20/20 : LABEL extra=yes\n ---> Running in ",
		"Step 2/20 : ARG GREETING=hello\n ---> Running in ",
		"[Warning] One or more build-args [UNUSED] were not consumed\n",
		"Successfully tagged meta:1\nSuccessfully tagged meta:2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, tag := range []string{"meta:1", "meta:2"} {
		if img, err := e.svc.Resolve(e.ctx, tag); err != nil || img.ID != id {
			t.Errorf("%s is %v (%v), want %s", tag, img.ID, err, id)
		}
	}
}

// TestRun runs shell- and exec-form RUN steps, with each snapshotter: a
// file one writes is seen by the next and is in the final image; the env,
// workdir, user and build args reach the command; output is streamed.
func TestRun(t *testing.T) {
	for _, kind := range []string{"overlay", "native"} {
		t.Run(kind, func(t *testing.T) { testRun(t, kind) })
	}
}

func testRun(t *testing.T, kind string) {
	e := newEnvOn(t, kind)
	dir := e.writeContext(map[string]string{"Dockerfile": `
FROM busybox
ARG V=default
ENV E=env
WORKDIR /w
RUN echo "$V $E $(pwd)" > out && echo to-stdout && echo to-stderr >&2
RUN ["/bin/sh", "-c", "cat /w/out > /w/copy; id -u > /w/uid0"]
RUN grep -q "127.0.0.1.*localhost" /etc/hosts && ping -c 1 -W 5 localhost > /dev/null && echo ok > /tmp/loopback
USER berth
RUN id -u > /tmp/uid
RUN echo "$HTTP_PROXY" > /tmp/proxy
`})
	id, out := e.mustBuild(dir, Options{BuildArgs: map[string]*string{"V": ptr("given"), "HTTP_PROXY": ptr("http://127.0.0.1:3128")}})
	if got, _ := e.readFile(id, "/tmp/loopback"); got != "ok\n" {
		t.Errorf("the loopback and localhost do not work in RUN:\n%s", out)
	}
	e.inImage(id, func(root string) {
		if _, err := os.Lstat(filepath.Join(root, "etc/hosts")); err == nil {
			t.Error("the /etc/hosts mount point is in the image")
		}
	})
	if got, _ := e.readFile(id, "/tmp/proxy"); got != "http://127.0.0.1:3128\n" {
		t.Errorf("/tmp/proxy = %q", got)
	}
	if h := strings.Join(e.history(id), "\n"); strings.Contains(h, "3128") || strings.Contains(out, "not consumed") {
		t.Errorf("the proxy arg shows in the history or was warned about:\n%s\n%s", h, out)
	}
	if got, _ := e.readFile(id, "/w/copy"); got != "given env /w\n" {
		t.Errorf("/w/copy = %q", got)
	}
	if got, _ := e.readFile(id, "/w/uid0"); got != "0\n" {
		t.Errorf("/w/uid0 = %q", got)
	}
	if got, _ := e.readFile(id, "/tmp/uid"); got != "1000\n" {
		t.Errorf("/tmp/uid = %q", got)
	}
	for _, want := range []string{" ---> Running in ", "to-stdout\n", "to-stderr\n", "Removing intermediate container "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	h := e.history(id)
	if want := `|1 V=given /bin/sh -c echo "$V $E $(pwd)" > out && echo to-stdout && echo to-stderr >&2`; !slices.Contains(h, want) {
		t.Errorf("history lacks %q:\n%s", want, strings.Join(h, "\n"))
	}
	if want := `|1 V=given /bin/sh -c cat /w/out > /w/copy; id -u > /w/uid0`; !slices.Contains(h, want) {
		t.Errorf("history lacks %q:\n%s", want, strings.Join(h, "\n"))
	}
	// The build arg is no part of the image's environment.
	if _, c := e.config(id); !reflect.DeepEqual(c.Env, []string{"PATH=" + defaultPathEnv, "E=env"}) {
		t.Errorf("env %q", c.Env)
	}
}

// TestFailingRun checks Docker's message for a failing RUN and that
// nothing is left behind: no snapshot, container or scratch file.
func TestFailingRun(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{"Dockerfile": "FROM busybox\nRUN echo before > /f\nRUN exit 3\nRUN echo never\n"})
	_, out, err := e.build(dir, Options{})
	var ee *ExitError
	if !errors.As(err, &ee) || err.Error() != "The command '/bin/sh -c exit 3' returned a non-zero code: 3" || ee.Code != 3 {
		t.Fatalf("error %v, want the non-zero code error\n%s", err, out)
	}
	if strings.Contains(out, "Step 4/4") {
		t.Errorf("the build went on after the failure:\n%s", out)
	}
	// e.checkClean runs at cleanup.
}

// TestCancelRun cancels a build while a RUN step runs: the build ends at
// once and leaves nothing behind.
func TestCancelRun(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{"Dockerfile": "FROM busybox\nRUN touch /started; sleep 300\n"})
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	pr := &watchWriter{want: " ---> Running in ", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.b.Build(ctx, Options{ContextDir: dir, Out: pr})
		done <- err
	}()
	select {
	case <-pr.seen:
		if leases := e.buildLeases(); len(leases) != 1 {
			t.Errorf("leases during the build: %v, want one", leases)
		}
	case err := <-done:
		t.Fatalf("build ended before running: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the RUN step did not start")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the build did not end after cancel")
	}
}

// TestSyntaxErrors checks that bad Dockerfiles fail before any work with
// the line and the instruction in the message.
func TestSyntaxErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ df, want string }{
		{"FROM busybox\n\nFROBNICATE x\n", `line 3: unknown instruction: FROBNICATE`},
		{"FROM busybox\nENV\n", `line 2: ENV requires at least one argument`},
		{"FROM busybox\nCOPY --bogus=1 a b\n", `line 2: unknown flag: --bogus`},
		{"# just a comment\n", "file with no instructions"},
		{"FROM busybox\nCOPY ../outside /x\n", "forbidden path outside the build context: ../outside ()"},
		{"FROM busybox\nCOPY missing /x\n", "file not found in build context or excluded by .dockerignore: stat missing: file does not exist"},
		{"FROM busybox\nCOPY --from=nostage /a /b\n", "No such image: nostage"},
		{"FROM busybox AS a\n", ""},
	} {
		dir := e.writeContext(map[string]string{"Dockerfile": tc.df})
		_, out, err := e.build(dir, Options{Target: map[bool]string{true: "b"}[tc.want == ""]})
		want := tc.want
		if want == "" {
			want = "failed to reach build target b in Dockerfile"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q\n%s", tc.df, err, want, out)
			continue
		}
		if strings.Contains(want, "line") && !strings.Contains(err.Error(), "instruction") {
			t.Errorf("%q: error %v does not show the instruction", tc.df, err)
		}
		if !errdefs.IsInvalidArgument(err) && !errdefs.IsNotFound(err) {
			t.Errorf("%q: error %v is not of class invalid argument", tc.df, err)
		}
	}
}

func ptr(s string) *string { return &s }

// watchWriter closes seen once want appears in what is written to it.
type watchWriter struct {
	mu   sync.Mutex
	want string
	buf  strings.Builder
	seen chan struct{}
	once bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.once && strings.Contains(w.buf.String(), w.want) {
		w.once = true
		close(w.seen)
	}
	return len(p), nil
}

// TestRunHeredocsAndMounts runs RUN heredocs (plain, with a shebang, read
// by the shell) and RUN --mount tmpfs and binds from the context and an
// image, read-only and rw (writes thrown away); the mount points are no
// part of the image, and a changed bind source rebuilds its step.
func TestRunHeredocsAndMounts(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{
		"Dockerfile": `
FROM busybox
RUN <<EOF
echo simple > /simple
echo line2 >> /simple
EOF
RUN <<EOF
#!/bin/sh
echo shebang > /shebang
EOF
RUN cat <<EOF > /complex
complex text
EOF
RUN --mount=type=tmpfs,target=/scratch echo tmp > /scratch/f && test -f /scratch/f
RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/in.txt > /from-bind
RUN --mount=type=bind,from=busybox,source=/etc,target=/mnt/etc head -n 1 /mnt/etc/passwd > /from-image
RUN --mount=type=bind,source=data,target=/mnt/rw,rw echo written > /mnt/rw/in.txt && echo new > /mnt/rw/new && cat /mnt/rw/in.txt > /rw-dir
RUN --mount=type=bind,source=data/in.txt,target=/mnt/file,rw echo written > /mnt/file && cat /mnt/file > /rw-file
RUN --mount=type=bind,from=busybox,source=/etc,target=/mnt/etc,rw echo x > /mnt/etc/passwd && cat /mnt/etc/passwd > /rw-image
`,
		"data/in.txt": "bound\n",
	})
	id, out := e.mustBuild(dir, Options{})
	for p, want := range map[string]string{
		"/simple": "simple\nline2\n", "/shebang": "shebang\n", "/complex": "complex text\n",
		"/from-bind": "bound\n", "/from-image": "root:x:0:0:root:/root:/bin/sh\n",
		"/rw-dir": "written\n", "/rw-file": "written\n", "/rw-image": "x\n",
	} {
		if got, _ := e.readFile(id, p); got != want {
			t.Errorf("%s = %q, want %q\n%s", p, got, want, out)
		}
	}
	e.inImage(id, func(root string) {
		for _, p := range []string{"scratch", "mnt"} {
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				t.Errorf("mount point /%s is in the image", p)
			}
		}
	})
	// Writes to rw binds are thrown away: the context and the image are
	// as they were.
	if data, err := os.ReadFile(filepath.Join(dir, "data/in.txt")); err != nil || string(data) != "bound\n" {
		t.Errorf("context file after an rw bind: %q %v", data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data/new")); err == nil {
		t.Error("an rw bind wrote into the context")
	}
	if got, _ := e.readFile(e.busybox, "/etc/passwd"); !strings.HasPrefix(got, "root:x:0:0") {
		t.Errorf("busybox's /etc/passwd after an rw bind: %q", got)
	}
	writeFiles(t, dir, map[string]string{"data/in.txt": "changed\n"})
	id2, out := e.mustBuild(dir, Options{})
	if !slices.Equal(cachedSteps(out), []int{2, 3, 4, 5}) {
		t.Errorf("after changing the bind source: cached %v\n%s", cachedSteps(out), out)
	}
	if got, _ := e.readFile(id2, "/from-bind"); got != "changed\n" {
		t.Errorf("/from-bind = %q", got)
	}
	for _, tc := range []struct{ run, want string }{
		{"RUN --mount=type=ssh true", "RUN --mount=type=ssh is not supported yet"},
		{"RUN --mount=type=bind,source=../x,target=/x true", "forbidden path outside the build context"},
	} {
		writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\n" + tc.run + "\n"})
		if _, out, err := e.build(dir, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q\n%s", tc.run, err, tc.want, out)
		}
	}
}

// TestLayersMatchTheirBlobs checks, with each snapshotter, that the layer
// snapshots a build commits hold exactly what their layer blobs unpack
// to: the image, saved and loaded into another store, has the same tree
// (files changed, deleted and replaced in lower layers included).
func TestLayersMatchTheirBlobs(t *testing.T) {
	for _, kind := range []string{"overlay", "native"} {
		t.Run(kind, func(t *testing.T) { testLayersMatchTheirBlobs(t, kind) })
	}
}

func testLayersMatchTheirBlobs(t *testing.T, kind string) {
	e := newEnvOn(t, kind)
	dir := e.writeContext(map[string]string{
		"Dockerfile": `
FROM busybox
RUN mkdir -p /d/sub && echo a > /d/sub/a && echo b > /d/b && ln -s b /d/link && chmod 0700 /d/sub
RUN rm /d/b && rm -r /d/sub && mkdir /d/sub && echo new > /d/sub/n && echo changed >> /etc/passwd && rm /bin/ls
COPY f /etc/f
`,
		"f": "file\n",
	})
	id, _ := e.mustBuild(dir, Options{Tags: []string{"layers:latest"}})
	var saved bytes.Buffer
	if err := e.svc.Save(e.ctx, &saved, []string{"layers:latest"}); err != nil {
		t.Fatal(err)
	}
	other := newEnv(t)
	if _, err := other.svc.Load(other.ctx, &saved, nil); err != nil {
		t.Fatal(err)
	}
	var want, got map[string]string
	e.inImage(id, func(root string) { want = treeOf(t, root) })
	other.inImage(id, func(root string) { got = treeOf(t, root) })
	if len(want) < 10 || !maps.Equal(want, got) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: built %q, loaded %q", k, v, got[k])
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: only in the loaded image (%q)", k, v)
			}
		}
	}
	if _, ok := want["/bin/ls"]; ok {
		t.Error("/bin/ls was not deleted")
	}
	if want["/d/sub/n"] == "" || want["/d/sub/a"] != "" {
		t.Errorf("/d/sub was not replaced: %v", want)
	}
}

// treeOf describes every file under root: mode, owner, size, link
// target and content digest.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + digest.FromBytes(data).String()
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBadInput checks the errors of mistakes found while building: each
// is precise, classified, and leaves nothing behind (checkClean).
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		df, want string
		class    error
	}{
		{"FROM busybox\nCOPY a b /x\n", "When using COPY with more than one source file, the destination must be a directory and end with a /", errdefs.ErrInvalidArgument},
		{"FROM busybox\nCOPY --chown=nosuch a /x\n", "unable to find user nosuch", errdefs.ErrInvalidArgument},
		{"FROM busybox\nCOPY --chmod=999 a /x\n", "invalid chmod parameter: 999", errdefs.ErrInvalidArgument},
		{"FROM busybox\nUSER nosuch\nRUN true\n", "unable to find user nosuch", errdefs.ErrInvalidArgument},
		{"FROM busybox\nCOPY a /bin/sh/x\n", "/bin/busybox is not a directory", errdefs.ErrInvalidArgument},
		{"FROM busybox\nADD http://127.0.0.1:9/x /x\n", "download http://127.0.0.1:9/x: dial tcp 127.0.0.1:9: connect: connection refused", errdefs.ErrUnavailable},
		{"FROM busybox\nCOPY http://127.0.0.1:9/x /x\n", "source can't be a URL for COPY", errdefs.ErrInvalidArgument},
		{"FROM --platform=linux/s390x busybox\n", "building for another platform is not supported", errdefs.ErrNotImplemented},
		{"FROM busybox\nSTOPSIGNAL FOO\n", "invalid signal: FOO", errdefs.ErrInvalidArgument},
		{"FROM busybox\nEXPOSE abc\n", "invalid containerPort: abc", errdefs.ErrInvalidArgument},
		{"FROM scratch\n", "No image was generated. Is your Dockerfile empty?", errdefs.ErrInvalidArgument},
		{"FROM scratch\nRUN true\n", `build container: exec: "/bin/sh": no such file or directory`, errdefs.ErrInvalidArgument},
	} {
		dir := e.writeContext(map[string]string{"Dockerfile": tc.df, "a": "a", "b": "b"})
		_, out, err := e.build(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.class != nil && !errors.Is(err, tc.class)) {
			t.Errorf("%q: error %v, want %q (%v)\n%s", tc.df, err, tc.want, tc.class, out)
		}
	}
	dir := e.writeContext(map[string]string{"Dockerfile": "FROM busybox\n"})
	for f, want := range map[string]string{
		"../Dockerfile": "forbidden path outside the build context: ../Dockerfile ()",
		"nosuch":        "Cannot locate specified Dockerfile: nosuch",
	} {
		if _, _, err := e.build(dir, Options{Dockerfile: f}); err == nil || !strings.Contains(err.Error(), want) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("-f %s: error %v, want %q", f, err, want)
		}
	}
	// Without -f, a lower-case dockerfile is found too.
	lower := e.writeContext(map[string]string{"dockerfile": "FROM busybox\nENV LOWER=1\n"})
	if id, _ := e.mustBuild(lower, Options{}); !slices.Contains(e.history(id), "/bin/sh -c #(nop)  ENV LOWER=1") {
		t.Errorf("the lower-case dockerfile was not built: %q", e.history(id))
	}
	if _, _, err := e.build(dir, Options{NetworkMode: "mynet"}); !errdefs.IsNotImplemented(err) {
		t.Errorf("network mynet: error %v, want not implemented", err)
	}
}

// TestParallelStages builds two stages that can only both finish if they
// run at the same time (one serves on a loopback port in the host's
// network, the other connects to it), and checks that the progress still
// reads in step order. The client sends from a file, not a pipe: busybox
// nc, whose server half-closes when its own stdin (/dev/null) ends, would
// otherwise exit on that before echo wrote into the pipe, sending nothing.
func TestParallelStages(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := e.writeContext(map[string]string{"Dockerfile": fmt.Sprintf(`
FROM busybox AS server
RUN nc -l -p %d > /got
FROM busybox AS client
RUN echo hello > /msg && until nc 127.0.0.1 %d < /msg; do sleep 0.1; done
FROM busybox
COPY --from=server /got /got
COPY --from=client /bin/busybox /client-done
`, port, port)})
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	res, err := e.b.Build(ctx, Options{ContextDir: dir, Out: &out, NetworkMode: "host"})
	if err != nil {
		t.Fatalf("build (the stages did not run side by side?): %v\n%s", err, out.String())
	}
	if got, _ := e.readFile(res.ImageID, "/got"); got != "hello\n" {
		t.Errorf("/got = %q", got)
	}
	for _, p := range []string{"/etc/hosts", "/etc/resolv.conf"} {
		e.inImage(res.ImageID, func(root string) {
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				t.Errorf("mount point %s is in the image", p)
			}
		})
	}
	step := 0
	for _, line := range strings.Split(out.String(), "\n") {
		var n, total int
		if _, err := fmt.Sscanf(line, "Step %d/%d :", &n, &total); err == nil {
			if n != step+1 {
				t.Errorf("step %d after step %d:\n%s", n, step, out.String())
			}
			step = n
		}
	}
	if step != 7 {
		t.Errorf("last step %d, want 7:\n%s", step, out.String())
	}
}

// TestParallelStageFails fails one stage while another runs: the build
// ends at once with the failing stage's error, the other stage's
// container is killed, and nothing is left behind (checkClean).
func TestParallelStageFails(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{"Dockerfile": `
FROM busybox AS slow
RUN sleep 300
FROM busybox AS failing
RUN exit 7
FROM busybox
COPY --from=slow /bin/busybox /a
`})
	start := time.Now()
	_, out, err := e.build(dir, Options{})
	if err == nil || err.Error() != "The command '/bin/sh -c exit 7' returned a non-zero code: 7" {
		t.Fatalf("error %v, want stage failing's\n%s", err, out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the build took %v: the slow stage was not stopped", d)
	}
	if strings.Contains(out, "Step 5/6") {
		t.Errorf("the last stage ran:\n%s", out)
	}
}

// TestRunCacheMount checks that a RUN --mount=type=cache directory keeps
// its content from one build to the next (with the owner and mode the
// mount asks for), is no part of the image, and goes with Prune.
func TestRunCacheMount(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{"Dockerfile": `
FROM busybox
RUN --mount=type=cache,target=/var/cache/app,uid=1000,mode=0700 echo run >> /var/cache/app/log && cp /var/cache/app/log /seen && stat -c '%u %a' /var/cache/app > /owner
`})
	first, _ := e.mustBuild(dir, Options{})
	second, _ := e.mustBuild(dir, Options{NoCache: true})
	if got, _ := e.readFile(first, "/seen"); got != "run\n" {
		t.Errorf("first /seen = %q", got)
	}
	if got, _ := e.readFile(second, "/seen"); got != "run\nrun\n" {
		t.Errorf("second /seen = %q, want the cache's earlier line too", got)
	}
	if got, _ := e.readFile(second, "/owner"); got != "1000 700\n" {
		t.Errorf("cache dir owner and mode %q", got)
	}
	e.inImage(second, func(root string) {
		if _, err := os.Lstat(filepath.Join(root, "var")); err == nil {
			t.Error("the cache mount point is in the image")
		}
	})
	if n, err := e.b.Prune(e.ctx); err != nil || n <= 0 {
		t.Errorf("prune: %d bytes, %v", n, err)
	}
	third, _ := e.mustBuild(dir, Options{NoCache: true})
	if got, _ := e.readFile(third, "/seen"); got != "run\n" {
		t.Errorf("after prune /seen = %q, want a fresh cache", got)
	}
	if _, err := e.b.Prune(e.ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRunSecret passes secrets to RUN as a file and as an environment
// variable; they reach neither the image nor its history nor the cache
// key, and a required secret that was not given fails the step.
func TestRunSecret(t *testing.T) {
	e := newEnv(t)
	// The Dockerfile names the secret's digest only, so that finding the
	// secret in the image means it leaked.
	sum := fmt.Sprintf("%x", md5.Sum([]byte("s3cret")))
	dir := e.writeContext(map[string]string{"Dockerfile": fmt.Sprintf(`
FROM busybox
RUN --mount=type=secret,id=token test "$(md5sum < /run/secrets/token | cut -d' ' -f1)" = %[1]s && stat -c '%%a %%u' /run/secrets/token > /file-ok
RUN --mount=type=secret,id=token,env=TOKEN test "$(printf %%s "$TOKEN" | md5sum | cut -d' ' -f1)" = %[1]s && echo ok > /env-ok
RUN --mount=type=secret,id=absent,target=/x test ! -e /x && echo ok > /absent-ok
`, sum)})
	secrets := map[string][]byte{"token": []byte("s3cret")}
	id, out := e.mustBuild(dir, Options{Secrets: secrets})
	for p, want := range map[string]string{"/file-ok": "400 0\n", "/env-ok": "ok\n", "/absent-ok": "ok\n"} {
		if got, _ := e.readFile(id, p); got != want {
			t.Errorf("%s = %q, want %q\n%s", p, got, want, out)
		}
	}
	e.inImage(id, func(root string) {
		if _, err := os.Lstat(filepath.Join(root, "run")); err == nil {
			t.Error("the secret's mount point is in the image")
		}
	})
	oc, _ := e.config(id)
	if raw, _ := json.Marshal(oc); bytes.Contains(raw, []byte("s3cret")) {
		t.Errorf("the secret is in the image config: %s", raw)
	}
	// Another value does not change the steps' keys.
	if _, out := e.mustBuild(dir, Options{Secrets: map[string][]byte{"token": []byte("other")}}); !slices.Equal(cachedSteps(out), []int{2, 3, 4}) {
		t.Errorf("a new secret value rebuilt steps: cached %v\n%s", cachedSteps(out), out)
	}
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=secret,id=absent,required true\n"})
	if _, _, err := e.build(dir, Options{}); err == nil || !strings.Contains(err.Error(), "secret absent: not found") || !errdefs.IsInvalidArgument(err) {
		t.Errorf("a missing required secret: %v", err)
	}
}
