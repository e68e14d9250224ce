package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/jsonstream"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/testutil"
)

// contextTar is a tar of files (name -> content).
func contextTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// postBuild sends a build request and returns the status and the decoded
// stream (or the raw body when it is not a stream).
func postBuild(t *testing.T, h http.Handler, query string, body []byte) (int, []jsonstream.Message, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1.50/build"+query, bytes.NewReader(body)))
	raw := rec.Body.String()
	if rec.Code != http.StatusOK {
		return rec.Code, nil, raw
	}
	var msgs []jsonstream.Message
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		var m jsonstream.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
		msgs = append(msgs, m)
	}
	return rec.Code, msgs, raw
}

func TestBuildBadRequests(t *testing.T) {
	s, d := newTestServer(t)
	ok := contextTar(t, map[string]string{"Dockerfile": "FROM scratch\n"})
	hostile := contextTar(t, map[string]string{"Dockerfile": "FROM scratch\n", "../escape": "x"})
	for _, c := range []struct {
		query  string
		body   []byte
		status int
		msg    string
	}{
		{"?buildargs=notjson", ok, 400, "invalid buildargs"},
		{"?labels=%5B1%5D", ok, 400, "invalid labels"},
		{"?remote=https://example.invalid/ctx.tar", ok, 501, "remote context"},
		{"?version=2", ok, 501, "classic builder only"},
		{"?platform=linux/s390x", ok, 501, "its own platform only"},
		{"?platform=" + runtime.GOOS + "/" + runtime.GOARCH + "&t=Bad:Tag:x", ok, 400, "invalid reference format"},
		{"?t=Bad:Tag:x", ok, 400, "invalid reference format"},
		{"?dockerfile=../Dockerfile", ok, 400, "must be within the build context"},
		{"", hostile, 400, `"../escape" is outside of the build context`},
		{"", []byte("not a tar at all, not even close, certainly not 512 bytes of header"), 400, "build context"},
	} {
		status, _, body := postBuild(t, s, c.query, c.body)
		if status != c.status || !strings.Contains(errorBody(t, body), c.msg) {
			t.Errorf("POST /build%s: %d %s, want %d with %q", c.query, status, body, c.status, c.msg)
		}
	}
	assertNoContexts(t, d.Config().DataRoot)
}

func TestBuildStream(t *testing.T) {
	s, d := newTestServer(t)
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ImportImage(context.Background(), bytes.NewReader(layer), image.ImportOptions{Ref: "busybox:latest", Changes: []string{`CMD ["sh"]`}}); err != nil {
		t.Fatal(err)
	}
	ctxTar := contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nLABEL a=b\nCMD [\"true\"]\n"})
	_, sub := d.Events().Subscribe(time.Time{})
	defer sub.Close()

	status, msgs, raw := postBuild(t, s, "?t=built:1&labels=%7B%22l%22%3A%22v%22%7D", ctxTar)
	if status != 200 || len(msgs) == 0 {
		t.Fatalf("build: %d %s", status, raw)
	}
	var text strings.Builder
	var id string
	for _, m := range msgs {
		text.WriteString(m.Stream)
		if m.Error != nil {
			t.Fatalf("build failed: %s", raw)
		}
		if m.Aux != nil {
			var a struct{ ID string }
			json.Unmarshal(*m.Aux, &a)
			id = a.ID
		}
	}
	if last := msgs[len(msgs)-1]; last.Aux == nil || !strings.HasPrefix(id, "sha256:") {
		t.Errorf("the stream does not end with the image ID: %s", raw)
	}
	for _, want := range []string{"Step 1/4 : FROM busybox\n", "Step 3/4 : CMD [\"true\"]\n", "Step 4/4 : LABEL l=v\n", "Successfully built " + strings.TrimPrefix(id, "sha256:")[:12] + "\n", "Successfully tagged built:1\n"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("build output lacks %q:\n%s", want, text.String())
		}
	}
	if ev := nextEvent(t, sub.C, "image", "tag"); ev.ID != id || ev.Attributes["name"] != "built:1" || ev.Attributes["l"] != "v" {
		t.Errorf("build's tag event: %+v", ev)
	}
	img, err := d.InspectImage(context.Background(), "built:1")
	if err != nil || img.ID.String() != id {
		t.Errorf("built:1 is %v (%v), want %s", img.ID, err, id)
	}

	// q=1: only the ID, then aux.
	status, msgs, raw = postBuild(t, s, "?q=1", ctxTar)
	if status != 200 || len(msgs) != 2 || !strings.HasPrefix(msgs[0].Stream, "sha256:") || msgs[1].Aux == nil || !strings.Contains(string(*msgs[1].Aux), strings.TrimSpace(msgs[0].Stream)) {
		t.Errorf("quiet build: %d %s", status, raw)
	}

	// A failing RUN: 200 already sent, the error in the stream with the
	// command's exit code.
	failing := contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 3\n"})
	status, msgs, raw = postBuild(t, s, "", failing)
	if status != 200 || len(msgs) == 0 {
		t.Fatalf("failing build: %d %s", status, raw)
	}
	last := msgs[len(msgs)-1]
	if last.Error == nil || last.Error.Code != 3 || !strings.Contains(last.Error.Message, "returned a non-zero code: 3") || !strings.Contains(raw, `"error":"`) {
		t.Errorf("failing build's stream: %s", raw)
	}

	// A quiet build that fails sends what it kept back, then the error.
	status, msgs, raw = postBuild(t, s, "?q=1", failing)
	if status != 200 || len(msgs) < 2 || !strings.Contains(msgs[0].Stream, "Step 2/2 : RUN exit 3") || msgs[len(msgs)-1].Error == nil {
		t.Errorf("failing quiet build: %d %s", status, raw)
	}
	assertNoContexts(t, d.Config().DataRoot)

	// Prune answers a BuildCachePruneReport.
	code, _, body := do(t, s, http.MethodPost, "/build/prune")
	var rep struct {
		CachesDeleted  []string
		SpaceReclaimed uint64
	}
	if code != 200 || json.Unmarshal([]byte(body), &rep) != nil {
		t.Errorf("build prune: %d %s", code, body)
	}
	if ev := nextEvent(t, sub.C, "builder", "prune"); ev.Attributes["reclaimed"] != fmt.Sprint(rep.SpaceReclaimed) {
		t.Errorf("builder prune event: %+v", ev)
	}
}

// nextEvent returns the next event of typ and action already published
// (a request publishes its events before it answers), skipping others.
func nextEvent(t *testing.T, c <-chan daemon.Event, typ, action string) daemon.Event {
	t.Helper()
	for {
		select {
		case ev, ok := <-c:
			if !ok {
				t.Fatal("event subscription ended")
			}
			if ev.Type == typ && ev.Action == action {
				return ev
			}
		default:
			t.Fatalf("no %s %s event was published", typ, action)
			return daemon.Event{}
		}
	}
}

// assertNoContexts checks that no extracted build context is left under
// the data root's tmp.
func assertNoContexts(t *testing.T, dataRoot string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(dataRoot, "tmp", "build-context-*"))
	if err != nil || len(left) != 0 {
		t.Errorf("build contexts left behind: %v %v", left, err)
	}
}

// TestBuildCancelled ends a build whose client goes away in the middle of
// a RUN: the step's process is killed and the extracted context removed.
func TestBuildCancelled(t *testing.T) {
	s, d := newTestServer(t)
	layer, err := testutil.BusyboxLayerTar()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ImportImage(context.Background(), bytes.NewReader(layer), image.ImportOptions{Ref: "busybox:latest"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := contextTar(t, map[string]string{"Dockerfile": "FROM busybox\nRUN sleep 4321\n"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/build", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.Contains(sc.Text(), "Running in") {
	}
	if sc.Err() != nil {
		t.Fatalf("stream ended before the RUN started: %v", sc.Err())
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(sleepers(t)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the RUN step's sleep 4321 did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	deadline = time.Now().Add(30 * time.Second)
	for {
		left, _ := filepath.Glob(filepath.Join(d.Config().DataRoot, "tmp", "build-context-*"))
		pids := sleepers(t)
		if len(left) == 0 && len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the client went away: contexts %v, sleep processes %v", left, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sleepers lists the processes running "sleep 4321".
func sleepers(t *testing.T) []string {
	t.Helper()
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []string
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err == nil && (strings.Contains(string(b), "sleep\x004321") || strings.Contains(string(b), "sleep 4321")) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}
