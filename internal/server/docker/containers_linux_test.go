package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	api "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/mountinfo"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/testutil"
)

// apiClient talks to a Server over a unix socket, as the docker CLI does.
type apiClient struct {
	t    *testing.T
	sock string
	hc   *http.Client
}

// newContainerAPI serves a daemon on overlay storage with the busybox
// image as busybox:latest. Cleanup force-removes every container before
// the daemon closes and fails the test if a mount is left under the
// daemon's directory.
func newContainerAPI(t *testing.T) (*apiClient, *daemon.Daemon) {
	t.Helper()
	s, d := newTestServer(t, "overlay")
	root := d.Config().DataRoot
	t.Cleanup(func() {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
		if err != nil {
			t.Errorf("read mounts: %v", err)
		}
		for _, m := range mounts {
			t.Errorf("left a mount: %s", m.Mountpoint)
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		list, err := d.Containers(ctx, daemon.ListContainersOptions{All: true})
		if err != nil {
			t.Errorf("list containers: %v", err)
		}
		for _, c := range list {
			if err := d.RemoveContainer(ctx, c.ID, daemon.RemoveContainerOptions{Force: true, Volumes: true}); err != nil {
				t.Errorf("remove container %s: %v", c.ID, err)
			}
		}
	})
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ImportImage(context.Background(), bytes.NewReader(layer), image.ImportOptions{Ref: "busybox:latest", Changes: []string{`CMD ["sh"]`}}); err != nil {
		t.Fatal(err)
	}
	sock := serveUnix(t, s)
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(hc.CloseIdleConnections)
	return &apiClient{t: t, sock: sock, hc: hc}, d
}

// call sends a request and returns the status and body.
func (c *apiClient) call(method, path, body string) (int, http.Header, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, "http://api"+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// must is call that expects status.
func (c *apiClient) must(status int, method, path, body string) []byte {
	c.t.Helper()
	code, _, b := c.call(method, path, body)
	if code != status {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, status)
	}
	return b
}

// create creates a container from a create request body and returns its ID.
func (c *apiClient) create(body string) string {
	c.t.Helper()
	var res api.CreateResponse
	if err := json.Unmarshal(c.must(201, "POST", "/v1.50/containers/create", body), &res); err != nil {
		c.t.Fatal(err)
	}
	if res.ID == "" || res.Warnings == nil {
		c.t.Fatalf("create answer %+v", res)
	}
	return res.ID
}

// hijack sends a request that upgrades the connection, as the docker CLI
// does, and returns the connection, a reader positioned after the
// response head, and the response.
func (c *apiClient) hijack(path, body string) (*net.UnixConn, *bufio.Reader, *http.Response) {
	c.t.Helper()
	conn, err := net.Dial("unix", c.sock)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, len(body))
	if _, err := io.WriteString(conn, head+body); err != nil {
		c.t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	req, _ := http.NewRequest("POST", path, nil)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	return conn.(*net.UnixConn), br, resp
}

// inspect returns a container's inspect answer.
func (c *apiClient) inspect(id string) containerInspectWire {
	c.t.Helper()
	var out containerInspectWire
	if err := json.Unmarshal(c.must(200, "GET", "/v1.50/containers/"+id+"/json", ""), &out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// containerInspectWire is the part of inspect the tests read.
type containerInspectWire struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status     string
		Running    bool
		ExitCode   int
		StartedAt  string
		FinishedAt string
	}
	NetworkSettings struct {
		IPAddress string
	}
}

// readAllTimeout reads r to EOF, failing the test after a deadline.
func readAllTimeout(t *testing.T, conn net.Conn, r io.Reader) []byte {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read stream: %v (read %q)", err, b)
	}
	return b
}

// rfc3339Fixed is a log timestamp: nine fraction digits, UTC.
var rfc3339Fixed = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z $`)

// TestRunFlow drives a container the way `docker run -i` does: create,
// attach with stdin, wait for the next exit, start; then input, its end,
// the separated output streams, the exit code, and the record afterwards.
func TestRunFlow(t *testing.T) {
	c, _ := newContainerAPI(t)
	id := c.create(`{"Image":"busybox","Cmd":["sh","-c","cat; echo err >&2; exit 3"],"OpenStdin":true,"StdinOnce":true,
		"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Labels":{"role":"test"}}`)
	if in := c.inspect(id); in.State.Status != "created" || in.State.StartedAt != "0001-01-01T00:00:00Z" || !strings.HasPrefix(in.Name, "/") {
		t.Errorf("created: %+v", in)
	}

	conn, br, resp := c.hijack("/v1.50/containers/"+id+"/attach?stream=1&stdin=1&stdout=1&stderr=1", "")
	if resp.StatusCode != 101 || resp.Header.Get("Content-Type") != multiplexedStreamType || resp.Header.Get("Upgrade") != "tcp" {
		t.Fatalf("attach answer: %d %v", resp.StatusCode, resp.Header)
	}
	// The wait's header arrives before the container runs.
	waitReq, _ := http.NewRequest("POST", "http://api/v1.50/containers/"+id+"/wait?condition=next-exit", nil)
	waitResp, err := c.hc.Do(waitReq)
	if err != nil || waitResp.StatusCode != 200 {
		t.Fatalf("wait: %v %v", waitResp, err)
	}
	defer waitResp.Body.Close()

	c.must(204, "POST", "/v1.50/containers/"+id+"/start", "")
	code, _, _ := c.call("POST", "/v1.50/containers/"+id+"/start", "")
	if code != 304 {
		t.Errorf("second start: %d, want 304", code)
	}
	if _, err := io.WriteString(conn, "hello\n"); err != nil {
		t.Fatal(err)
	}
	conn.CloseWrite()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, bytes.NewReader(readAllTimeout(t, conn, br))); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "hello\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	var wr api.WaitResponse
	if err := json.NewDecoder(waitResp.Body).Decode(&wr); err != nil || wr.StatusCode != 3 || wr.Error != nil {
		t.Errorf("wait result %+v %v", wr, err)
	}

	in := c.inspect(id)
	if in.State.Status != "exited" || in.State.Running || in.State.ExitCode != 3 || in.State.FinishedAt == "0001-01-01T00:00:00Z" {
		t.Errorf("after exit: %+v", in.State)
	}
	var list []api.Summary
	json.Unmarshal(c.must(200, "GET", `/v1.50/containers/json?all=1&filters={"label":["role=test"]}`, ""), &list)
	if len(list) != 1 || list[0].ID != id || !strings.HasPrefix(list[0].Status, "Exited (3) ") || list[0].Command != "sh -c 'cat; echo err >&2; exit 3'" || list[0].Image != "busybox" {
		t.Errorf("list: %+v", list)
	}

	// Logs: framed per stream, each line with its time.
	code, hdr, body := c.call("GET", "/v1.50/containers/"+id+"/logs?stdout=1&stderr=1&timestamps=1", "")
	if code != 200 || hdr.Get("Content-Type") != multiplexedStreamType {
		t.Fatalf("logs: %d %v", code, hdr)
	}
	stdout.Reset()
	stderr.Reset()
	if _, err := stdcopy.StdCopy(&stdout, &stderr, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		got, line string
	}{"stdout": {stdout.String(), "hello\n"}, "stderr": {stderr.String(), "err\n"}} {
		ts, line, ok := strings.Cut(tc.got, " ")
		if !ok || !rfc3339Fixed.MatchString(ts+" ") || line != tc.line {
			t.Errorf("logs %s: %q", name, tc.got)
		}
	}
	_, _, body = c.call("GET", "/v1.50/containers/"+id+"/logs?stderr=1&tail=all", "")
	if !bytes.Equal(body, append([]byte{2, 0, 0, 0, 0, 0, 0, 4}, "err\n"...)) {
		t.Errorf("stderr-only logs: %q", body)
	}
}

// TestExecStreams runs exec'd processes attached without and with a TTY,
// and detached.
func TestExecStreams(t *testing.T) {
	c, _ := newContainerAPI(t)
	id := c.create(`{"Image":"busybox","Cmd":["sleep","300"]}`)
	code, _, body := c.call("POST", "/v1.50/containers/"+id+"/exec", `{"Cmd":["true"]}`)
	if code != 409 || !strings.Contains(string(body), "is not running") {
		t.Errorf("exec in a created container: %d %s", code, body)
	}
	c.must(204, "POST", "/v1.50/containers/"+id+"/start", "")

	execID := func(body string) string {
		var r api.ExecCreateResponse
		json.Unmarshal(c.must(201, "POST", "/v1.50/containers/"+id+"/exec", body), &r)
		if r.ID == "" {
			t.Fatal("exec create: no ID")
		}
		return r.ID
	}
	x := execID(`{"Cmd":["sh","-c","read v; echo got $v; echo e >&2; exit 5"],"AttachStdin":true,"AttachStdout":true,"AttachStderr":true}`)
	conn, br, resp := c.hijack("/v1.50/exec/"+x+"/start", `{"Detach":false,"Tty":false}`)
	if resp.StatusCode != 101 || resp.Header.Get("Content-Type") != multiplexedStreamType {
		t.Fatalf("exec start: %d %v", resp.StatusCode, resp.Header)
	}
	io.WriteString(conn, "abc\n")
	conn.CloseWrite()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, bytes.NewReader(readAllTimeout(t, conn, br))); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "got abc\n" || stderr.String() != "e\n" {
		t.Errorf("exec output: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	var xi api.ExecInspectResponse
	json.Unmarshal(c.must(200, "GET", "/v1.50/exec/"+x+"/json", ""), &xi)
	if xi.Running || xi.ExitCode == nil || *xi.ExitCode != 5 || xi.ContainerID != id || xi.ProcessConfig == nil || xi.ProcessConfig.Entrypoint != "sh" {
		t.Errorf("exec inspect: %+v", xi)
	}

	// With a TTY: raw output, the console size from the start request.
	x = execID(`{"Cmd":["sh","-c","tty; stty size"],"Tty":true,"AttachStdout":true,"ConsoleSize":[30,100]}`)
	conn, br, resp = c.hijack("/v1.50/exec/"+x+"/start", `{"Tty":true,"ConsoleSize":[30,100]}`)
	if resp.StatusCode != 101 || resp.Header.Get("Content-Type") != rawStreamType {
		t.Fatalf("tty exec start: %d %v", resp.StatusCode, resp.Header)
	}
	conn.CloseWrite()
	if out := string(readAllTimeout(t, conn, br)); !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "30 100\r\n") {
		t.Errorf("tty exec output %q", out)
	}

	// Detached: 200 at once, the process runs on.
	x = execID(`{"Cmd":["sh","-c","echo bg > /tmp/bg"]}`)
	if b := c.must(200, "POST", "/v1.50/exec/"+x+"/start", `{"Detach":true}`); len(b) != 0 {
		t.Errorf("detached start body %q", b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		json.Unmarshal(c.must(200, "GET", "/v1.50/exec/"+x+"/json", ""), &xi)
		if !xi.Running && xi.ExitCode != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("detached exec still running: %+v", xi)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if *xi.ExitCode != 0 {
		t.Errorf("detached exec exit %d", *xi.ExitCode)
	}
	c.must(404, "GET", "/v1.50/exec/nope/json", "")

	c.must(204, "POST", "/v1.50/containers/"+id+"/kill?signal=KILL", "")
	var wr api.WaitResponse
	json.Unmarshal(c.must(200, "POST", "/v1.50/containers/"+id+"/wait", ""), &wr)
	if wr.StatusCode != 137 {
		t.Errorf("wait after kill: %+v", wr)
	}
}

// TestAttachDetachKeys attaches to a running container with a TTY and
// leaves it with the detach keys the client chose: the stream ends, the
// container runs on.
func TestAttachDetachKeys(t *testing.T) {
	c, _ := newContainerAPI(t)
	id := c.create(`{"Image":"busybox","Cmd":["sh"],"Tty":true,"OpenStdin":true}`)
	c.must(204, "POST", "/v1.50/containers/"+id+"/start", "")
	conn, br, resp := c.hijack("/v1.50/containers/"+id+"/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x,x", "")
	if resp.StatusCode != 101 || resp.Header.Get("Content-Type") != rawStreamType {
		t.Fatalf("attach: %d %v", resp.StatusCode, resp.Header)
	}
	c.must(200, "POST", "/v1.50/containers/"+id+"/resize?h=20&w=70", "")
	io.WriteString(conn, "stty size; echo mark-$((40+2))\n")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var seen bytes.Buffer
	for !strings.Contains(seen.String(), "mark-42") {
		line, err := br.ReadString('\n')
		seen.WriteString(line)
		if err != nil {
			t.Fatalf("before detach: %v (read %q)", err, seen.String())
		}
	}
	if !strings.Contains(seen.String(), "20 70") {
		t.Errorf("size after resize: %q", seen.String())
	}
	// Ctrl-x alone is passed on; ctrl-x x detaches.
	io.WriteString(conn, "\x18x")
	readAllTimeout(t, conn, br)
	if in := c.inspect(id); !in.State.Running {
		t.Errorf("container stopped by the detach: %+v", in.State)
	}
}

// TestArchive copies into and out of a container and checks the stat
// header and Docker's message for a missing path.
func TestArchive(t *testing.T) {
	c, _ := newContainerAPI(t)
	id := c.create(`{"Image":"busybox","Cmd":["sleep","300"]}`)
	c.must(204, "POST", "/v1.50/containers/"+id+"/start", "")

	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "note.txt", Mode: 0o640, Size: 5, Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)})
	tw.Write([]byte("hello"))
	tw.Close()
	c.must(200, "PUT", "/v1.50/containers/"+id+"/archive?path=/tmp", tb.String())

	code, hdr, _ := c.call("HEAD", "/v1.50/containers/"+id+"/archive?path=/tmp/note.txt", "")
	if code != 200 {
		t.Fatalf("HEAD: %d", code)
	}
	raw, err := base64.StdEncoding.DecodeString(hdr.Get(pathStatHeader))
	var st api.PathStat
	if err == nil {
		err = json.Unmarshal(raw, &st)
	}
	if err != nil || st.Name != "note.txt" || st.Size != 5 || st.Mode.Perm() != 0o640 {
		t.Errorf("stat header %q: %+v %v", hdr.Get(pathStatHeader), st, err)
	}
	code, hdr, body := c.call("GET", "/v1.50/containers/"+id+"/archive?path=/tmp/note.txt", "")
	if code != 200 || hdr.Get("Content-Type") != "application/x-tar" || hdr.Get(pathStatHeader) == "" {
		t.Fatalf("GET: %d %v", code, hdr)
	}
	tr := tar.NewReader(bytes.NewReader(body))
	h, err := tr.Next()
	if err != nil || h.Name != "note.txt" {
		t.Fatalf("archive entry %+v %v", h, err)
	}
	if b, _ := io.ReadAll(tr); string(b) != "hello" {
		t.Errorf("archive content %q", b)
	}
	code, _, body = c.call("GET", "/v1.50/containers/"+id+"/archive?path=/nope", "")
	if code != 404 || errorBody(t, string(body)) != "Could not find the file /nope in container "+id {
		t.Errorf("missing path: %d %s", code, body)
	}
}

// TestStatsFollowAndRemoval reads a stats stream (each sample carries the
// previous one's CPU figures), follows a log until the container dies, and
// waits for a forced removal.
func TestStatsFollowAndRemoval(t *testing.T) {
	c, _ := newContainerAPI(t)
	id := c.create(`{"Image":"busybox","Cmd":["sh","-c","while true; do echo tick; sleep 0.2; done"]}`)
	c.must(204, "POST", "/v1.50/containers/"+id+"/start", "")

	resp, err := c.hc.Get("http://api/v1.50/containers/" + id + "/stats")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stats: %v %v", resp, err)
	}
	dec := json.NewDecoder(resp.Body)
	var first, second api.StatsResponse
	if err := dec.Decode(&first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&second); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if first.ID != id || first.Name == "" || !first.PreRead.IsZero() || !second.PreRead.Equal(first.Read) ||
		second.PreCPUStats.CPUUsage.TotalUsage != first.CPUStats.CPUUsage.TotalUsage || !second.Read.After(first.Read) {
		t.Errorf("stats samples: first read %v pre %v, second read %v pre %v", first.Read, first.PreRead, second.Read, second.PreRead)
	}
	var one api.StatsResponse
	json.Unmarshal(c.must(200, "GET", "/v1.50/containers/"+id+"/stats?stream=0&one-shot=1", ""), &one)
	if one.ID != id || one.Read.IsZero() || !one.PreRead.IsZero() {
		t.Errorf("one-shot sample: %+v", one)
	}

	logs, err := c.hc.Get("http://api/v1.50/containers/" + id + "/logs?stdout=1&follow=1&tail=0")
	if err != nil || logs.StatusCode != 200 {
		t.Fatalf("follow logs: %v %v", logs, err)
	}
	defer logs.Body.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(logs.Body, hdr[:]); err != nil || hdr[0] != 1 {
		t.Fatalf("first followed frame: %v %v", hdr, err)
	}

	waitResp, err := c.hc.Post("http://api/v1.50/containers/"+id+"/wait?condition=removed", "", nil)
	if err != nil || waitResp.StatusCode != 200 {
		t.Fatalf("wait: %v %v", waitResp, err)
	}
	defer waitResp.Body.Close()
	c.must(204, "DELETE", "/v1.50/containers/"+id+"?force=1", "")
	var wr api.WaitResponse
	if err := json.NewDecoder(waitResp.Body).Decode(&wr); err != nil || wr.StatusCode != 137 {
		t.Errorf("wait for removal: %+v %v", wr, err)
	}
	// The followed log ends with the container.
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, logs.Body)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow end: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("followed log still open after the container was removed")
	}
	c.must(404, "GET", "/v1.50/containers/"+id+"/json", "")
}
