package registry

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/testutil"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// tokenRequests returns the token server's requests since from.
func tokenRequests(reg *testutil.TestRegistry, from int) []testutil.TokenRequest {
	return reg.Tokens.Requests()[from:]
}

// hasTokenRequest reports whether reqs hold a successful request by user
// ("" for anonymous) that asked for exactly scopes, in any order.
func hasTokenRequest(reqs []testutil.TokenRequest, user string, scopes ...string) bool {
	want := slices.Sorted(slices.Values(scopes))
	for _, r := range reqs {
		if r.User == user && r.Status == 200 && r.Service == testutil.TokenService &&
			slices.Equal(slices.Sorted(slices.Values(r.Scopes)), want) {
			return true
		}
	}
	return false
}

// TestTokenPushPull pushes and pulls through a registry using Docker's
// bearer-token auth, with credentials from config.json, and checks the
// scopes asked of the token server.
func TestTokenPushPull(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Token: true})
	c := newTestClient(t, reg, nil)
	testPushPull(t, c, reg.Host)
	reqs := tokenRequests(reg, 0)
	if !hasTokenRequest(reqs, reg.User, "repository:berth/test:pull,push") ||
		!hasTokenRequest(reqs, reg.User, "repository:berth/test:pull") {
		t.Fatalf("token requests %+v, want pull,push and pull of berth/test by %s", reqs, reg.User)
	}
	// One token per scope set: sessions are cached.
	if len(reqs) != 2 {
		t.Errorf("%d token requests, want 2: %+v", len(reqs), reqs)
	}
}

func TestTokenAnonymous(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Token: true})
	writer := newTestClient(t, reg, nil)
	pub, priv := mustRef(t, reg.Host+"/public/app"), mustRef(t, reg.Host+"/berth/private")
	_, pubDesc, pubLayer := pushImage(t, writer, pub, "v1", 5000)
	_, _, _ = pushImage(t, writer, priv, "v1", 100)
	anon := New(Options{ConfigDir: t.TempDir(), CertsDir: t.TempDir()})
	ctx := testCtx(t)

	// Anyone may pull public/.
	from := len(reg.Tokens.Requests())
	d, _, err := anon.Resolve(ctx, mustRef(t, reg.Host+"/public/app:v1"))
	if err != nil || d.Digest != pubDesc.Digest {
		t.Fatalf("anonymous resolve of public/app: %+v %v", d, err)
	}
	layerDesc := layerDescFor(pubLayer)
	rc, err := anon.OpenBlob(ctx, pub, layerDesc, 0)
	if err != nil {
		t.Fatalf("anonymous blob of public/app: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != string(pubLayer) {
		t.Fatalf("anonymous blob: %d bytes, %v", len(got), err)
	}
	if reqs := tokenRequests(reg, from); !hasTokenRequest(reqs, "", "repository:public/app:pull") {
		t.Fatalf("token requests %+v, want an anonymous pull of public/app", reqs)
	}

	// The private repository: Docker's message, and unauthorized.
	_, _, err = anon.Resolve(ctx, mustRef(t, reg.Host+"/berth/private:v1"))
	want := "pull access denied for " + reg.Host + "/berth/private, repository does not exist or may require authorization"
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), want) {
		t.Fatalf("anonymous pull of a private repository: got %v, want %q", err, want)
	}
	_, err = anon.OpenBlob(ctx, priv, layerDesc, 0)
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "pull access denied") {
		t.Fatalf("anonymous blob of a private repository: %v", err)
	}
	// Nor may anyone push to public/.
	newData, newDesc := randomBlob(t, 1000)
	err = anon.PushBlob(ctx, pub, newDesc, strings.NewReader(string(newData)), nil)
	if !errdefs.IsUnauthorized(err) {
		t.Fatalf("anonymous push: got %v, want unauthorized", err)
	}

	// With credentials given by the caller (X-Registry-Auth), not config.json.
	ctx = WithAuth(ctx, AuthConfig{Username: reg.User, Password: reg.Password})
	if _, _, err := anon.Resolve(ctx, mustRef(t, reg.Host+"/berth/private:v1")); err != nil {
		t.Fatalf("pull with WithAuth: %v", err)
	}
	data, desc := randomBlob(t, 70<<10)
	if err := anon.PushBlob(ctx, priv, desc, strings.NewReader(string(data)), nil); err != nil {
		t.Fatalf("push with WithAuth: %v", err)
	}
	// A wrong password in the context is refused.
	bad := WithAuth(testCtx(t), AuthConfig{Username: reg.User, Password: "wrong"})
	if _, _, err := anon.Resolve(bad, mustRef(t, reg.Host+"/public/app:v1")); !errdefs.IsUnauthorized(err) {
		t.Fatalf("pull with a wrong password: got %v, want unauthorized", err)
	}
}

func TestTokenMountScopes(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Token: true})
	c := newTestClient(t, reg, nil)
	ctx := testCtx(t)
	a, b := mustRef(t, reg.Host+"/berth/a"), mustRef(t, reg.Host+"/berth/b")
	data, desc := randomBlob(t, 1000)
	pushBlob(t, c, a, data, desc)
	from := len(reg.Tokens.Requests())
	if ok, err := c.MountBlob(ctx, b, a, desc.Digest); err != nil || !ok {
		t.Fatalf("mount: %v %v", ok, err)
	}
	if ok, err := c.BlobExists(ctx, b, desc.Digest); err != nil || !ok {
		t.Fatalf("blob in b after mount: %v %v", ok, err)
	}
	reqs := tokenRequests(reg, from)
	if !hasTokenRequest(reqs, reg.User, "repository:berth/b:pull,push", "repository:berth/a:pull") {
		t.Fatalf("token requests %+v, want push of berth/b with pull of berth/a", reqs)
	}
}

func TestTokenLogin(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Token: true})
	writer := newTestClient(t, reg, nil)
	_, _, _ = pushImage(t, writer, mustRef(t, reg.Host+"/berth/private"), "v1", 100)
	c := New(Options{ConfigDir: t.TempDir(), CertsDir: t.TempDir()})
	ctx := testCtx(t)

	from := len(reg.Tokens.Requests())
	idToken, err := c.Login(ctx, reg.Host, reg.User, reg.Password)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if idToken == "" {
		t.Fatal("login returned no identity token though the server gives refresh tokens")
	}
	reqs := tokenRequests(reg, from)
	if len(reqs) != 1 || !reqs[0].Offline || reqs[0].User != reg.User || reqs[0].Status != 200 {
		t.Fatalf("login's token requests %+v, want one offline request by %s", reqs, reg.User)
	}

	// The identity token stands in for the password (OAuth2 refresh grant).
	from = len(reg.Tokens.Requests())
	idCtx := WithAuth(ctx, AuthConfig{IdentityToken: idToken})
	if _, _, err := c.Resolve(idCtx, mustRef(t, reg.Host+"/berth/private:v1")); err != nil {
		t.Fatalf("pull with the identity token: %v", err)
	}
	reqs = tokenRequests(reg, from)
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Grant != "refresh_token" || reqs[0].User != reg.User {
		t.Fatalf("token requests %+v, want one refresh_token grant", reqs)
	}
	// A bad identity token is refused.
	badCtx := WithAuth(ctx, AuthConfig{IdentityToken: "forged"})
	if _, _, err := c.Resolve(badCtx, mustRef(t, reg.Host+"/berth/private:v1")); !errdefs.IsUnauthorized(err) {
		t.Fatalf("pull with a forged identity token: got %v, want unauthorized", err)
	}

	_, err = c.Login(ctx, reg.Host, reg.User, "wrong")
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "wrong user name or password") || !strings.Contains(err.Error(), reg.Host) {
		t.Fatalf("login with a wrong password: %v", err)
	}
}

// TestTokenExpired gets a token that has already expired: the registry
// refuses it and the client fetches a new one and carries on.
func TestTokenExpired(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Token: true})
	c := newTestClient(t, reg, nil)
	repo := mustRef(t, reg.Host+"/berth/expiry")
	_, mdesc, _ := pushImage(t, c, repo, "v1", 100)

	reader := newTestClient(t, reg, nil)
	reg.Tokens.ExpireNext(1)
	from := len(reg.Tokens.Requests())
	d, _, err := reader.Resolve(testCtx(t), mustRef(t, reg.Host+"/berth/expiry:v1"))
	if err != nil || d.Digest != mdesc.Digest {
		t.Fatalf("resolve with an expired first token: %+v %v", d, err)
	}
	if reqs := tokenRequests(reg, from); len(reqs) != 2 {
		t.Fatalf("token requests %+v, want 2 (the expired token, then a fresh one)", reqs)
	}
}

func layerDescFor(data []byte) v1.Descriptor {
	return v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: digest.FromBytes(data), Size: int64(len(data))}
}
