package registry

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/berth-project/berth/internal/testutil"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseChallenges(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string // scheme then sorted key=value
		pick string
	}{
		{`Basic realm="berth-test"`, []string{"Basic realm=berth-test"}, "Basic"},
		{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`,
			[]string{"Bearer realm=https://auth.example/token scope=repository:a/b:pull,push service=registry.example"}, "Bearer"},
		{`Basic realm="a\"b", Bearer realm=https://t/x, service=s`,
			[]string{`Basic realm=a"b`, "Bearer realm=https://t/x service=s"}, "Bearer"},
		{`Negotiate`, []string{"Negotiate"}, ""},
		{``, nil, ""},
	} {
		var got []string
		for _, ch := range parseChallenges(tc.in) {
			s := ch.Scheme
			for _, k := range sortedKeys(ch.Parameters) {
				s += " " + k + "=" + ch.Parameters[k]
			}
			got = append(got, s)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseChallenges(%q) = %q, want %q", tc.in, got, tc.want)
		}
		ch, ok := pickChallenge([]string{tc.in})
		if ok != (tc.pick != "") || ch.Scheme != tc.pick {
			t.Errorf("pickChallenge(%q) = %q %v, want %q", tc.in, ch.Scheme, ok, tc.pick)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

func TestEndpoints(t *testing.T) {
	c := New(Options{
		Insecure: []string{"10.0.0.0/8", "reg.example:5000"},
		Mirrors:  []string{"https://mirror.example/", "http://127.0.0.1:5001", "  "},
	})
	hub := c.pullEndpoints("docker.io")
	var hosts []string
	for _, ep := range hub {
		hosts = append(hosts, ep.host)
	}
	if want := []string{"mirror.example", "127.0.0.1:5001", dockerHubHost}; !reflect.DeepEqual(hosts, want) {
		t.Fatalf("docker.io endpoints %q, want %q", hosts, want)
	}
	if !hub[0].mirror || hub[0].httpOnly || !hub[1].httpOnly || hub[2].mirror || hub[2].authKey != dockerHubAuthKey {
		t.Errorf("docker.io endpoints %+v", hub)
	}
	if eps := c.pullEndpoints("quay.example"); len(eps) != 1 || eps[0].host != "quay.example" {
		t.Errorf("other registries use no mirror: %+v", eps)
	}
	for host, want := range map[string][2]bool{ // plainHTTP, skipVerify
		"127.0.0.1:5000":   {true, false},
		"127.9.9.9":        {true, false},
		"localhost:5000":   {true, false},
		"[::1]:5000":       {true, false},
		"10.1.2.3:5000":    {true, true},
		"reg.example:5000": {true, true},
		"reg.example:5001": {false, false},
		"192.168.1.1":      {false, false},
		"registry.example": {false, false},
	} {
		ep := c.endpointFor(host)
		if ep.plainHTTP != want[0] || ep.skipVerify != want[1] {
			t.Errorf("%s: plainHTTP %v skipVerify %v, want %v", host, ep.plainHTTP, ep.skipVerify, want)
		}
	}
}

func TestNormalizeServer(t *testing.T) {
	for in, want := range map[string]string{
		"":                            dockerHubAuthKey,
		"docker.io":                   dockerHubAuthKey,
		"https://index.docker.io/v1/": dockerHubAuthKey,
		"registry-1.docker.io":        dockerHubAuthKey,
		"http://Reg.Example:5000/v2/": "reg.example:5000",
		"127.0.0.1:5000":              "127.0.0.1:5000",
	} {
		if got := normalizeServer(in); got != want {
			t.Errorf("normalizeServer(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContentRangeStart(t *testing.T) {
	for in, want := range map[string]int64{"bytes 100-199/200": 100, "bytes 0-0/*": 0} {
		if got, ok := contentRangeStart(in); !ok || got != want {
			t.Errorf("contentRangeStart(%q) = %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "100-199/200", "bytes x-1/2", "items 1-2/3"} {
		if _, ok := contentRangeStart(in); ok {
			t.Errorf("contentRangeStart(%q) accepted", in)
		}
	}
}

func TestManifestMediaType(t *testing.T) {
	for _, tc := range []struct{ ct, body, want string }{
		{"application/vnd.oci.image.manifest.v1+json; charset=utf-8", `{}`, v1.MediaTypeImageManifest},
		{"application/json", `{"mediaType":"` + MediaTypeDockerManifestList + `"}`, MediaTypeDockerManifestList},
		{"", `{"manifests":[]}`, v1.MediaTypeImageIndex},
		{"text/plain", `{"config":{}}`, v1.MediaTypeImageManifest},
	} {
		got, err := manifestMediaType(tc.ct, []byte(tc.body))
		if err != nil || got != tc.want {
			t.Errorf("manifestMediaType(%q, %s) = %q %v, want %q", tc.ct, tc.body, got, err, tc.want)
		}
	}
	for _, body := range []string{`not json`, `{"layers":[]}`} {
		if _, err := manifestMediaType("", []byte(body)); err == nil {
			t.Errorf("manifestMediaType(%s) accepted", body)
		}
	}
}

// TestMirrors pulls a docker.io image through loopback mirrors: a broken
// first mirror is skipped and the second serves it. Docker Hub's host is
// replaced by a closed loopback port, so a failure never leaves the machine.
func TestMirrors(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	good := newFaultProxy(t, reg)
	bad := newFaultProxy(t, reg)
	bad.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/v2/" {
			return false
		}
		http.Error(w, "broken mirror", http.StatusNotFound)
		return true
	})
	writer := newTestClient(t, reg, nil)
	raw, mdesc, layer := pushImage(t, writer, mustRef(t, reg.Host+"/library/busybox"), "mirrored", 500)

	c := New(Options{ConfigDir: t.TempDir(), Mirrors: []string{bad.Host(), "http://" + good.Host()}})
	c.hubHost = "127.0.0.1:1" // never Docker Hub, even if the mirrors fail
	ctx := testCtx(t)
	ref := mustRef(t, "busybox:mirrored")
	d, got, err := c.Resolve(ctx, ref)
	if err != nil || d.Digest != mdesc.Digest || string(got) != string(raw) {
		t.Fatalf("resolve through mirrors: %+v %v", d, err)
	}
	if len(bad.requests("/manifests/mirrored")) != 1 || len(good.requests("/manifests/mirrored")) != 1 {
		t.Errorf("bad mirror asked %d times, good %d; want 1 and 1",
			len(bad.requests("/manifests/mirrored")), len(good.requests("/manifests/mirrored")))
	}
	rc, err := c.OpenBlob(ctx, ref, v1.Descriptor{Digest: digest.FromBytes(layer), Size: int64(len(layer))}, 0)
	if err != nil {
		t.Fatalf("open blob through mirrors: %v", err)
	}
	rc.Close()
}
