package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// compareDockerfile uses every instruction that sets image metadata,
// relative and trailing-slash destinations, a tar ADD, COPY --chown and
// a COPY --from of an earlier stage.
const compareDockerfile = `# every metadata instruction, side by side with dockerd
ARG BASE=busybox
FROM ${BASE} AS builder
RUN mkdir -p /out && echo built > /out/artifact
FROM ${BASE}
ARG VERSION=0
ENV APP_HOME=/app PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.example.name="compare" org.example.version=${VERSION}
EXPOSE 8080/tcp 53/udp
VOLUME ["/data"]
WORKDIR ${APP_HOME}
COPY hello.txt .
COPY hello.txt ./sub/
COPY --chown=1000:1000 hello.txt /owned/
ADD files.tar /unpacked/
COPY --from=builder /out/artifact /opt/
USER 1000:1000
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-c"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=4 CMD true
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/hello.txt"]
`

// contentHash is the digest in a COPY/ADD history entry, which each
// engine computes its own way.
var contentHash = regexp.MustCompile(`(file|dir|multi):[0-9a-f]{64}`)

// TestBuildMatchesDockerd builds one Dockerfile with DOCKER_BUILDKIT=0
// docker build against berthd and against Debian's dockerd, with the
// same build args and labels, and compares the images: the whole
// config (less the parent image's ID, which differs as the layers'
// digests do), the history's created_by lines (less the content
// digests) and the files the image holds.
func TestBuildMatchesDockerd(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"Dockerfile": compareDockerfile, "hello.txt": "hello\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "files.tar"), tarFiles(t, map[string]string{"in/tar.txt": "from tar\n"}), 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		config  map[string]any
		history []string
		files   string
	}
	build := func(c *CLI) result {
		c.env = append(c.env, "DOCKER_BUILDKIT=0")
		c.ok("build", "--network", "none", "--build-arg", "VERSION=7", "--label", "built.by=e2e", "-t", "compare", dir)
		t.Cleanup(func() { c.run("", "rmi", "compare") })
		var r result
		if err := json.Unmarshal([]byte(c.ok("image", "inspect", "--format", "{{json .Config}}", "compare")), &r.config); err != nil {
			t.Fatal(err)
		}
		delete(r.config, "Image") // the parent image's ID
		for _, line := range strings.Split(strings.TrimSpace(c.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "compare")), "\n") {
			r.history = append(r.history, contentHash.ReplaceAllString(line, "$1:<digest>"))
		}
		r.files = c.ok("run", "--rm", "--entrypoint", "sh", "compare", "-c",
			"cd / && ls -ln /app /app/sub /owned /unpacked/in /opt | sed 's/  */ /g' | cut -d' ' -f1,3,4,5,9; cat /app/hello.txt /unpacked/in/tar.txt /opt/artifact")
		return r
	}
	berth := startDaemon(t)
	bc := berth.cli(t)
	importBusybox(t, bc)
	got := build(bc)
	dockerd := startDockerd(t)
	dc := &CLI{t: t, host: dockerd.Host, env: dockerEnv(t)}
	importBusybox(t, dc)
	want := build(dc)

	gotJSON, _ := json.MarshalIndent(got.config, "", "  ")
	wantJSON, _ := json.MarshalIndent(want.config, "", "  ")
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("image config differs:\nberth:\n%s\ndockerd:\n%s", gotJSON, wantJSON)
	}
	if strings.Join(got.history, "\n") != strings.Join(want.history, "\n") {
		t.Errorf("history differs:\nberth:\n%s\ndockerd:\n%s", strings.Join(got.history, "\n"), strings.Join(want.history, "\n"))
	}
	if got.files != want.files {
		t.Errorf("image files differ:\nberth:\n%s\ndockerd:\n%s", got.files, want.files)
	}
}

// tarFiles returns a tar of files (name to content, mode 0644).
func tarFiles(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
