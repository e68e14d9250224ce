package registry

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
)

func TestTTLCache(t *testing.T) {
	c := newTTLCache[int](3)
	t0 := time.Unix(1000, 0)
	c.put("a", 1, t0.Add(10*time.Second), t0)
	c.put("b", 2, t0.Add(20*time.Second), t0)
	c.put("c", 3, t0.Add(5*time.Second), t0)
	if v, ok := c.get("a", t0.Add(9*time.Second)); !ok || v != 1 {
		t.Fatalf("a before expiry: %v %v", v, ok)
	}
	if _, ok := c.get("a", t0.Add(10*time.Second)); ok {
		t.Fatal("a found at its expiry")
	}
	if c.len() != 2 {
		t.Fatalf("expired entry kept: %d entries", c.len())
	}
	// Full: the entry that expires first (c) makes room.
	c.put("d", 4, t0.Add(30*time.Second), t0)
	c.put("e", 5, t0.Add(30*time.Second), t0)
	if c.len() != 3 {
		t.Fatalf("%d entries, want 3", c.len())
	}
	if _, ok := c.get("c", t0); ok {
		t.Fatal("c kept in a full cache though it expires first")
	}
	for _, k := range []string{"b", "d", "e"} {
		if _, ok := c.get(k, t0); !ok {
			t.Fatalf("%s dropped", k)
		}
	}
	// Expired entries go before live ones.
	c.put("f", 6, t0.Add(time.Hour), t0.Add(25*time.Second))
	if _, ok := c.get("b", t0); ok {
		t.Fatal("expired b kept")
	}
	for _, k := range []string{"d", "e", "f"} {
		if _, ok := c.get(k, t0.Add(25*time.Second)); !ok {
			t.Fatalf("%s dropped", k)
		}
	}
	// Replacing a key in a full cache drops nothing else.
	c.put("f", 7, t0.Add(time.Hour), t0.Add(25*time.Second))
	if v, _ := c.get("f", t0); v != 7 || c.len() != 3 {
		t.Fatalf("replace: f=%d, %d entries", v, c.len())
	}
	if tokenTTL(0) != time.Minute || tokenTTL(30) != 30*time.Second || tokenTTL(3600) != sessionTTL {
		t.Fatalf("tokenTTL: %s %s %s", tokenTTL(0), tokenTTL(30), tokenTTL(3600))
	}
}

// fakeClock is a settable Client.now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// TestSessionExpiry: a session is reused while its token lasts and
// replaced, with a new ping and token, once it has expired.
func TestSessionExpiry(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Token: true})
	writer := newTestClient(t, reg, nil)
	_, _, _ = pushImage(t, writer, mustRef(t, reg.Host+"/berth/ttl"), "v1", 100)
	p := newFaultProxy(t, reg)

	c := newTestClient(t, reg, nil)
	clock := &fakeClock{t: time.Now()}
	c.now = clock.now
	// The proxy counts the pings; the token realm still names the token
	// server. Credentials are looked up by the proxy's host.
	if err := SaveCredentials(c.opts.ConfigDir, p.Host(), reg.User, reg.Password); err != nil {
		t.Fatal(err)
	}
	ref := mustRef(t, p.Host()+"/berth/ttl:v1")
	resolve := func() {
		t.Helper()
		if _, _, err := c.Resolve(testCtx(t), ref); err != nil {
			t.Fatal(err)
		}
	}
	from := len(reg.Tokens.Requests())
	resolve()
	clock.add(testutil.TokenLifetime*time.Second - time.Second)
	resolve()
	if n := len(tokenRequests(reg, from)); n != 1 {
		t.Fatalf("%d token requests within the token's life, want 1", n)
	}
	if n := len(p.requests("GET /v2/ ")); n != 1 {
		t.Fatalf("%d pings within the ping's life, want 1", n)
	}
	clock.add(2 * time.Second)
	resolve()
	if n := len(tokenRequests(reg, from)); n != 2 {
		t.Fatalf("%d token requests after the token expired, want 2", n)
	}
	if n := len(p.requests("GET /v2/ ")); n != 2 {
		t.Fatalf("%d pings after the ping expired, want 2", n)
	}
}

// TestSessionCacheBounded opens more sessions than the cache holds.
func TestSessionCacheBounded(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	c := newTestClient(t, reg, nil)
	ep := c.endpointFor(reg.Host)
	for i := range maxSessions + 10 {
		if _, err := c.session(testCtx(t), ep, scopeFor(fmt.Sprintf("berth/r%d", i), "pull")); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	n := c.sessions.len()
	c.mu.Unlock()
	if n != maxSessions {
		t.Fatalf("%d sessions cached, want %d", n, maxSessions)
	}
}
