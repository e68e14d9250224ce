package docker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/network/firewall"
	"github.com/berth-project/berth/internal/testutil"
)

// newTestServer returns a Server over a real daemon in a temporary
// directory with the given storage driver ("native" when empty: no mounts
// to clean up), its own default bridge and firewall table, and the berth
// binaries of testutil.Binaries. Cleanup closes the daemon and removes the
// bridge and the table.
func newTestServer(t *testing.T, driver ...string) (*Server, *daemon.Daemon) {
	t.Helper()
	dir := t.TempDir()
	var b [4]byte
	rand.Read(b[:])
	bridge := "bs" + hex.EncodeToString(b[:])
	bins := testutil.Binaries(t)
	cfg := daemon.Config{
		DataRoot: filepath.Join(dir, "data"), ExecRoot: filepath.Join(dir, "exec"), StorageDriver: "native",
		Bridge:   bridge,
		ShimPath: filepath.Join(bins, "berth-shim"), RuntimePath: filepath.Join(bins, "berth-runtime"), InitPath: filepath.Join(bins, "berth-init"),
	}
	if len(driver) > 0 {
		cfg.StorageDriver = driver[0]
	}
	t.Cleanup(func() {
		// The daemon keeps its network namespace directory mounted for
		// live restore; the test's directory must go.
		netnsDir := filepath.Join(cfg.ExecRoot, "netns")
		if err := detachMount(netnsDir); err != nil {
			t.Errorf("unmount %s: %v", netnsDir, err)
		}
		if l, err := netlink.LinkByName(bridge); err == nil {
			netlink.LinkDel(l)
		}
		if fw, err := firewall.New("berth-" + bridge); err == nil {
			fw.Cleanup()
		}
	})
	d, err := daemon.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return New(d, Options{Version: "test"}), d
}

func do(t *testing.T, h http.Handler, method, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Header(), rec.Body.String()
}

func errorBody(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Message
}

func TestRouting(t *testing.T) {
	s, _ := newTestServer(t)
	for _, tc := range []struct {
		method, path string
		status       int
		message      string
	}{
		{"GET", "/v1.50/images/127.0.0.1:5000/a/b:1/json", 404, "No such image: 127.0.0.1:5000/a/b:1"},
		{"GET", "/images/a/b/history", 404, "No such image: a/b"},
		{"DELETE", "/v1.24/images/reg.example:1/x/y:z", 404, "No such image: reg.example:1/x/y:z"},
		{"GET", "/images//json", 404, "page not found"},
		{"PUT", "/images/json", 404, "page not found"},
		{"GET", "/v1.5/version", 400, "too old"},
		{"GET", "/v2.0/version", 400, "too new"},
	} {
		code, hdr, body := do(t, s, tc.method, tc.path)
		if code != tc.status || !strings.Contains(errorBody(t, body), tc.message) {
			t.Errorf("%s %s: %d %s, want %d %q", tc.method, tc.path, code, body, tc.status, tc.message)
		}
		if hdr.Get("API-Version") != APIVersion || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, hdr)
		}
	}
	code, _, body := do(t, s, "GET", "/v1.50/images/json")
	if code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /images/json: %d %q", code, body)
	}
	code, hdr, body := do(t, s, "GET", "/_ping")
	if code != 200 || body != "OK" || hdr.Get("OSType") != "linux" || hdr.Get("Builder-Version") != "1" {
		t.Errorf("GET /_ping: %d %q %v", code, body, hdr)
	}
}

func TestPanicRecovered(t *testing.T) {
	s, _ := newTestServer(t)
	s.routes = append(s.routes, s.handle(http.MethodGet, "/boom", func(http.ResponseWriter, *http.Request, params) error {
		panic("kaboom")
	}))
	code, _, body := do(t, s, "GET", "/boom")
	if code != 500 || !strings.Contains(errorBody(t, body), "kaboom") {
		t.Errorf("panic: %d %s", code, body)
	}
	if code, _, _ := do(t, s, "GET", "/version"); code != 200 {
		t.Errorf("after a panic: %d", code)
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{errdefs.ErrNotFound, 404},
		{fmt.Errorf("x: %w", errdefs.ErrInvalidArgument), 400},
		{fmt.Errorf("x: %w", errdefs.ErrConflict), 409},
		{errdefs.ErrAlreadyExists, 409},
		{errdefs.ErrUnauthorized, 401},
		{errdefs.ErrPermission, 403},
		{errdefs.ErrNotImplemented, 501},
		{errdefs.ErrUnavailable, 503},
		{errdefs.ErrDataLoss, 500},
		{errors.New("plain"), 500},
		{errors.Join(errors.New("a"), fmt.Errorf("b: %w", errdefs.ErrNotFound)), 404},
	} {
		if got := statusOf(tc.err); got != tc.status {
			t.Errorf("statusOf(%v) = %d, want %d", tc.err, got, tc.status)
		}
	}
	if m := errorMessage(fmt.Errorf("No such image: x: %w", errdefs.ErrNotFound)); m != "No such image: x" {
		t.Errorf("errorMessage: %q", m)
	}
	if m := errorMessage(errdefs.ErrNotFound); m != "not found" {
		t.Errorf("errorMessage of a bare class: %q", m)
	}
}

func TestParseFilters(t *testing.T) {
	req := func(v string) *http.Request {
		return httptest.NewRequest("GET", "/x?filters="+v, nil)
	}
	f, err := parseFilters(req(`{"dangling":{"true":true},"label":{"a=b":true,"c":false}}`))
	if err != nil || !reflect.DeepEqual(f, map[string][]string{"dangling": {"true"}, "label": {"a=b"}}) {
		t.Errorf("map form: %v %v", f, err)
	}
	f, err = parseFilters(req(`{"reference":["busybox","alpine"]}`))
	if err != nil || !reflect.DeepEqual(f, map[string][]string{"reference": {"busybox", "alpine"}}) {
		t.Errorf("list form: %v %v", f, err)
	}
	for _, bad := range []string{`{`, `{"a":1}`, `["x"]`} {
		if _, err := parseFilters(req(bad)); !errdefs.IsInvalidArgument(err) {
			t.Errorf("filters %s: %v", bad, err)
		}
	}
	if err := checkFilters(map[string][]string{"colour": {"x"}}, "label"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("checkFilters: %v", err)
	}
}

func TestAuthFromHeader(t *testing.T) {
	r := httptest.NewRequest("POST", "/x", nil)
	if a, err := authFromHeader(r); a != nil || err != nil {
		t.Errorf("no header: %v %v", a, err)
	}
	enc := base64.URLEncoding.EncodeToString([]byte(`{"username":"u","password":"p?>","serveraddress":"r"}`))
	r.Header.Set("X-Registry-Auth", enc)
	if a, err := authFromHeader(r); err != nil || a == nil || a.Username != "u" || a.Password != "p?>" {
		t.Errorf("user/password: %+v %v", a, err)
	}
	legacy := base64.StdEncoding.EncodeToString([]byte(`{"auth":"` + base64.StdEncoding.EncodeToString([]byte("u:p:q")) + `"}`))
	r.Header.Set("X-Registry-Auth", legacy)
	if a, err := authFromHeader(r); err != nil || a == nil || a.Username != "u" || a.Password != "p:q" {
		t.Errorf("legacy auth field: %+v %v", a, err)
	}
	r.Header.Set("X-Registry-Auth", base64.URLEncoding.EncodeToString([]byte(`{}`)))
	if a, err := authFromHeader(r); a != nil || err != nil {
		t.Errorf("empty credentials: %+v %v", a, err)
	}
	for _, bad := range []string{"!!!", base64.URLEncoding.EncodeToString([]byte(`{"username":`))} {
		r.Header.Set("X-Registry-Auth", bad)
		if _, err := authFromHeader(r); !errdefs.IsInvalidArgument(err) {
			t.Errorf("header %q: %v", bad, err)
		}
	}
}

func TestPullRef(t *testing.T) {
	for _, tc := range []struct{ from, tag, want string }{
		{"busybox", "latest", "docker.io/library/busybox:latest"},
		{"127.0.0.1:5000/a/b", "1", "127.0.0.1:5000/a/b:1"},
		{"busybox:1", "", "docker.io/library/busybox:1"},
		{"busybox", "sha256:" + strings.Repeat("a", 64), "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64)},
	} {
		ref, err := pullRef(tc.from, tc.tag)
		if err != nil || ref.String() != tc.want {
			t.Errorf("pullRef(%q, %q) = %v, %v; want %s", tc.from, tc.tag, ref, err, tc.want)
		}
	}
	if _, err := pullRef("busybox", ""); !errdefs.IsNotImplemented(err) {
		t.Errorf("all tags: %v", err)
	}
	if _, err := pullRef("busybox", "bad tag"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad tag: %v", err)
	}
}

func TestProgressStream(t *testing.T) {
	// An error before anything was sent is returned for a status.
	rec := httptest.NewRecorder()
	ps := newProgressStream(rec)
	if err := ps.finish(errdefs.ErrNotFound); !errdefs.IsNotFound(err) || rec.Body.Len() != 0 {
		t.Errorf("early error: %v, body %q", err, rec.Body)
	}
	// After the first message, errors go into the stream.
	rec = httptest.NewRecorder()
	ps = newProgressStream(rec)
	ps.progress(image.Progress{ID: "abc", Status: "Downloading", Current: 10, Total: 100})
	ps.progress(image.Progress{ID: "abc", Status: "Downloading", Current: 20, Total: 100}) // throttled
	ps.progress(image.Progress{ID: "abc", Status: "Downloading", Current: 100, Total: 100})
	ps.progress(image.Progress{ID: "abc", Status: "Pull complete"})
	if err := ps.finish(fmt.Errorf("boom: %w", errdefs.ErrUnavailable)); err != nil {
		t.Fatal(err)
	}
	var msgs []map[string]any
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) != 4 || rec.Code != 200 {
		t.Fatalf("%d: %v", rec.Code, msgs)
	}
	if d, _ := msgs[0]["progressDetail"].(map[string]any); d["current"] != 10.0 || d["total"] != 100.0 || !strings.HasPrefix(msgs[0]["progress"].(string), "[=====>") {
		t.Errorf("first progress: %v", msgs[0])
	}
	if msgs[1]["progressDetail"].(map[string]any)["current"] != 100.0 {
		t.Errorf("completion not sent: %v", msgs[1])
	}
	if msgs[3]["error"] != "boom" || msgs[3]["errorDetail"].(map[string]any)["message"] != "boom" {
		t.Errorf("error line: %v", msgs[3])
	}
	if got := humanSize(1234567); got != "1.23MB" {
		t.Errorf("humanSize: %s", got)
	}
}

// TestEventsStream follows /events live, then checks that Shutdown ends
// the stream.
func TestEventsStream(t *testing.T) {
	s, d := newTestServer(t)
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, err := http.Get(ts.URL + `/v1.50/events?filters=` + `%7B%22type%22%3A%5B%22image%22%5D%7D`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The subscription exists once the header arrived.
	d.Events().Publish(daemon.Event{Type: "daemon", Action: "reload", ID: "x"})
	d.Events().Publish(daemon.Event{Type: "image", Action: "tag", ID: "sha256:abc", Attributes: map[string]string{"name": "a:1"}})
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Type, Action string
		Actor        struct {
			ID         string
			Attributes map[string]string
		}
		Scope    string `json:"scope"`
		TimeNano int64  `json:"timeNano"`
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "image" || ev.Action != "tag" || ev.Actor.ID != "sha256:abc" || ev.Actor.Attributes["name"] != "a:1" || ev.Scope != "local" || ev.TimeNano == 0 {
		t.Errorf("event %+v", ev)
	}
	s.Shutdown(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stream end: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events stream still open after Shutdown")
	}
}

// TestIdleTrim checks that the server gives freed heap back once requests
// stop: the trim runs after the idle time following the last request,
// not while requests keep coming, and not after Shutdown.
func TestIdleTrim(t *testing.T) {
	s, _ := newTestServer(t)
	trims := make(chan time.Time, 10)
	s.idleAfter, s.trim = 200*time.Millisecond, func() { trims <- time.Now() }
	var last time.Time
	for range 5 {
		if code, _, _ := do(t, s, "GET", "/_ping"); code != 200 {
			t.Fatalf("ping: %d", code)
		}
		last = time.Now()
		select {
		case <-trims:
			t.Fatal("trimmed while requests keep coming")
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case at := <-trims:
		if at.Sub(last) < s.idleAfter {
			t.Errorf("trimmed %v after the last request, before the idle time %v", at.Sub(last), s.idleAfter)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after the requests stopped")
	}
	do(t, s, "GET", "/_ping")
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-trims:
		t.Error("trimmed after Shutdown")
	case <-time.After(2 * s.idleAfter):
	}
}
