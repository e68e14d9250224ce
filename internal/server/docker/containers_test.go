package docker

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/daemon"
	"github.com/berth-project/berth/internal/errdefs"
)

// doBody is do with a request body.
func doBody(t *testing.T, h http.Handler, method, path, body string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Header(), rec.Body.String()
}

// TestContainerRequestErrors checks that malformed requests are refused
// with Docker's status and wording before anything is done, and that
// unknown containers and execs are 404.
func TestContainerRequestErrors(t *testing.T) {
	s, _ := newTestServer(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"POST", "/v1.50/containers/create", "", 400, "config cannot be empty in order to create a container"},
		{"POST", "/v1.50/containers/create", "  \n", 400, "config cannot be empty in order to create a container"},
		{"POST", "/v1.50/containers/create", `{"HostConfig":{}}`, 400, "config cannot be empty in order to create a container"},
		{"POST", "/v1.50/containers/create", `{"Image":`, 400, "invalid JSON: unexpected end of JSON input"},
		{"POST", "/v1.50/containers/create", `{"Image":5}`, 400, "invalid JSON: json: cannot unmarshal"},
		{"POST", "/v1.50/containers/create?platform=a/b/c/d", `{"Image":"busybox"}`, 400, `invalid platform "a/b/c/d"`},
		{"GET", "/containers/json?limit=x", "", 400, `invalid value for limit: "x" is not an integer`},
		{"GET", "/containers/json?filters=%7B", "", 400, "invalid filters"},
		{"GET", "/containers/json?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D", "", 400, "invalid filter 'colour'"},
		{"GET", "/v1.50/containers/nope/json", "", 404, "No such container: nope"},
		{"POST", "/containers/nope/start", "", 404, "No such container: nope"},
		{"POST", "/containers/nope/start", `{"Binds":["/a:/b"]}`, 400, "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24"},
		{"POST", "/containers/nope/stop?t=soon", "", 400, `invalid value for t: "soon" is not an integer`},
		{"POST", "/containers/nope/restart?t=1.5", "", 400, `invalid value for t: "1.5" is not an integer`},
		{"POST", "/containers/nope/wait?condition=eventually", "", 400, `invalid condition: "eventually"`},
		{"POST", "/containers/nope/wait?condition=removed", "", 404, "No such container: nope"},
		{"POST", "/containers/nope/resize?h=x&w=80", "", 400, `invalid resize height "x"`},
		{"POST", "/containers/nope/resize?h=24", "", 400, `invalid resize width ""`},
		{"POST", "/containers/nope/rename", "", 400, "Neither old nor new names may be empty"},
		{"POST", "/containers/nope/update", `{"Memory":`, 400, "invalid JSON in request body"},
		{"DELETE", "/containers/nope?link=1", "", 409, "Conflict, cannot remove the default link name of the container"},
		{"DELETE", "/containers/nope", "", 404, "No such container: nope"},
		{"GET", "/containers/nope/logs", "", 400, "Bad parameters: you must choose at least one stream"},
		{"GET", "/containers/nope/logs?stdout=1&tail=some", "", 400, `invalid value for "tail"`},
		{"GET", "/containers/nope/logs?stdout=1&since=yesterday", "", 400, `invalid since value "yesterday"`},
		{"GET", "/containers/nope/logs?stdout=1&tail=all", "", 404, "No such container: nope"},
		{"GET", "/containers/nope/stats?stream=0", "", 404, "No such container: nope"},
		{"HEAD", "/containers/nope/archive", "", 400, ""},
		{"GET", "/containers/nope/archive?path=", "", 400, "path cannot be empty"},
		{"PUT", "/containers/nope/archive", "", 400, "path cannot be empty"},
		{"GET", "/containers/nope/archive?path=/etc", "", 404, "No such container: nope"},
		{"POST", "/containers/nope/attach?stream=1&detachKeys=ctrl-", "", 400, "Invalid detach keys (ctrl-) provided"},
		{"POST", "/containers/nope/attach?stream=1&stdout=1", "", 404, "No such container: nope"},
		{"GET", "/containers/nope/attach/ws", "", 501, "websocket attach is not supported"},
		{"POST", "/containers/nope/exec", `{"Cmd":[]}`, 400, "No exec command specified"},
		{"POST", "/containers/nope/exec", `{"Cmd":["ls"]`, 400, "invalid JSON in request body"},
		{"POST", "/exec/nope/start", `{"Detach":`, 400, "invalid JSON: unexpected end of JSON input"},
		{"POST", "/exec/nope/resize?h=1&w=-1", "", 400, `invalid resize width "-1"`},
		{"POST", "/containers/prune?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D", "", 400, "invalid filter 'dangling'"},
		{"POST", "/commit?container=nope&repo=Bad_Repo", "", 400, "invalid reference format"},
		{"POST", "/commit?container=nope&repo=busybox&tag=a:b", "", 400, `invalid tag "a:b"`},
		{"POST", "/commit?container=nope&tag=1", "", 400, "tag is specified without a repository (repo)"},
		{"POST", "/commit?container=nope", `{"Cmd":`, 400, "invalid JSON"},
	} {
		code, hdr, body := doBody(t, s, tc.method, tc.path, tc.body)
		if code != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.status)
			continue
		}
		if tc.method == "HEAD" {
			continue
		}
		if hdr.Get("Content-Type") != "application/json" || !strings.Contains(errorBody(t, body), tc.message) {
			t.Errorf("%s %s: %s %q, want %q", tc.method, tc.path, hdr.Get("Content-Type"), body, tc.message)
		}
	}
}

// TestContainerListEmpty checks the list, info and df answers of a
// daemon without containers.
func TestContainerListEmpty(t *testing.T) {
	s, _ := newTestServer(t)
	code, _, body := do(t, s, "GET", "/containers/json?all=1&size=1&limit=3")
	if code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("list: %d %q", code, body)
	}
	code, _, body = do(t, s, "GET", "/info")
	if code != 200 || !strings.Contains(body, `"Containers":0,"ContainersRunning":0,"ContainersPaused":0,"ContainersStopped":0`) {
		t.Errorf("info: %d %s", code, body)
	}
	code, _, body = do(t, s, "GET", "/v1.52/system/df")
	if code != 200 || !strings.Contains(body, `"Containers":[]`) || !strings.Contains(body, `"ContainerUsage":{}`) {
		t.Errorf("df: %d %s", code, body)
	}
}

func TestCommitReference(t *testing.T) {
	for _, tc := range []struct{ repo, tag, want string }{
		{"", "", ""},
		{"busybox", "", "busybox:latest"},
		{"busybox", "v1", "busybox:v1"},
		{"127.0.0.1:5000/a/b", "x", "127.0.0.1:5000/a/b:x"},
		{"docker.io/library/alpine:3", "", "alpine:3"},
		{"alpine:3", "4", "alpine:4"},
	} {
		got, err := commitReference(tc.repo, tc.tag)
		if err != nil || got != tc.want {
			t.Errorf("commitReference(%q, %q) = %q, %v; want %q", tc.repo, tc.tag, got, err, tc.want)
		}
	}
	if _, err := commitReference("busybox@sha256:"+strings.Repeat("a", 64), ""); !errdefs.IsInvalidArgument(err) {
		t.Errorf("digest: %v", err)
	}
}

func TestEventContainerFilter(t *testing.T) {
	ev := daemon.Event{Type: "container", Action: "start", ID: "abcdef0123", Attributes: map[string]string{"name": "web", "tier": "front"}}
	for _, tc := range []struct {
		containers, labels []string
		want               bool
	}{
		{nil, nil, true},
		{[]string{"abc"}, nil, true},
		{[]string{"web"}, nil, true},
		{[]string{"we"}, nil, true},
		{[]string{"db", "abcdef0123"}, nil, true},
		{[]string{"db"}, nil, false},
		{[]string{"bcd"}, nil, false},
		{nil, []string{"tier"}, true},
		{nil, []string{"tier=front"}, true},
		{nil, []string{"tier=back"}, false},
		{nil, []string{"tier", "zone"}, false},
	} {
		if got := matchEventContainer(tc.containers, ev) && allLabels(tc.labels, ev.Attributes); got != tc.want {
			t.Errorf("container %v label %v: %v, want %v", tc.containers, tc.labels, got, tc.want)
		}
	}
	if matchEventContainer([]string{"x"}, daemon.Event{Type: "image", ID: "sha256:1"}) {
		t.Error("an image event passed a container filter")
	}
}

func TestEventLegacyFields(t *testing.T) {
	ev := daemon.Event{Type: "container", Action: "die", ID: "c1", Attributes: map[string]string{"image": "busybox", "exitCode": "2"}}
	old := jsonMap(t, toEvent(ev, "1.29"))
	if old["status"] != "die" || old["id"] != "c1" || old["from"] != "busybox" || old["Action"] != "die" || old["Type"] != "container" {
		t.Errorf("API 1.29 container event: %v", old)
	}
	if m := jsonMap(t, toEvent(daemon.Event{Type: "image", Action: "pull", ID: "busybox:latest"}, "1.50")); m["status"] != "pull" || m["id"] != "busybox:latest" || m["from"] != nil {
		t.Errorf("API 1.50 image event: %v", m)
	}
	if m := jsonMap(t, toEvent(daemon.Event{Type: "network", Action: "connect", ID: "n1"}, "1.50")); m["status"] != nil || m["id"] != nil {
		t.Errorf("network event with legacy fields: %v", m)
	}
	if m := jsonMap(t, toEvent(ev, "1.52")); m["status"] != nil || m["id"] != nil || m["from"] != nil {
		t.Errorf("API 1.52 event with legacy fields: %v", m)
	}
}
