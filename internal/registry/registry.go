// Package registry is berthd's client for the distribution protocol (Docker
// registry HTTP API v2 and OCI distribution): resolving and fetching
// manifests, streaming blobs with resume, pushing blobs and manifests,
// cross-repository mounts and logging in.
//
// Plumbing is borrowed from go-containerregistry: its transport package turns
// an authentication challenge (basic, or bearer with scoped token exchange
// and refresh) into an authenticating http.RoundTripper. Everything else is
// ours: endpoint selection (Docker Hub naming, mirrors, insecure registries,
// per-host CAs), the /v2/ ping with the HTTPS-then-HTTP fallback, retries,
// resumable blob reads, chunked uploads, credential lookup in a Docker
// config.json and credential helpers, and error classification.
//
// A request is made in a session: one registry endpoint, one set of token
// scopes (such as "repository:library/busybox:pull") and one set of
// credentials. Sessions are cached on the Client so that a pull of many
// blobs pings and exchanges tokens once.
package registry

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
)

// Docker Hub's names: the reference domain, the API host and the key of its
// credentials in config.json.
const (
	dockerHubDomain  = "docker.io"
	dockerHubHost    = "registry-1.docker.io"
	dockerHubAuthKey = "https://index.docker.io/v1/"
)

// Defaults for Options.
const (
	DefaultCertsDir  = "/etc/berth/certs.d"
	DefaultRetries   = 3
	DefaultChunkSize = 4 << 20
	DefaultTimeout   = 30 * time.Second
	DefaultUserAgent = "berth"
)

// maxManifestSize bounds the size of a manifest or index we accept.
const maxManifestSize = 4 << 20

// Options configure a Client. The zero value works.
type Options struct {
	// ConfigDir is the Docker config directory holding config.json (auths,
	// credsStore, credHelpers). Default $DOCKER_CONFIG, else ~/.docker.
	ConfigDir string
	// Insecure lists hosts ("host:port") and CIDRs that may be reached over
	// plain HTTP or HTTPS without certificate verification. localhost and
	// 127.0.0.0/8 (and ::1) may always use plain HTTP. HTTPS is tried first.
	Insecure []string
	// Mirrors are docker.io mirrors ("host:port" or URLs), tried in order
	// before Docker Hub itself for pulls.
	Mirrors []string
	// CertsDir holds per-host TLS files like Docker's certs.d:
	// <CertsDir>/<host>/*.crt are extra CAs, <name>.cert with <name>.key a
	// client certificate. Default DefaultCertsDir.
	CertsDir string
	// RootCAs are extra trusted roots, added to the system bundle (tests).
	RootCAs *x509.CertPool
	// UserAgent is sent with every request. Default DefaultUserAgent.
	UserAgent string
	// Retries is how many times a failed idempotent request or a dropped
	// blob stream is retried. Default DefaultRetries; negative means none.
	Retries int
	// ChunkSize is the size of the PATCH chunks of a blob upload. Default
	// DefaultChunkSize.
	ChunkSize int64
	// Timeout bounds the wait for response headers and for each read of a
	// blob stream, so that a hung server cannot hang a pull. Default
	// DefaultTimeout.
	Timeout time.Duration
}

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	opts     Options
	hubHost  string // dockerHubHost; tests point it at loopback
	insecure []netip.Prefix
	hosts    map[string]bool // Options.Insecure entries that are host names

	mu         sync.Mutex
	transports map[string]*http.Transport // by host
	pings      *ttlCache[*pingResult]     // by host
	sessions   *ttlCache[*session]        // by host, scopes and credentials
	now        func() time.Time           // time.Now; tests move it
}

// New returns a Client with opts, filling in defaults.
func New(opts Options) *Client {
	if opts.ConfigDir == "" {
		opts.ConfigDir = DefaultConfigDir()
	}
	if opts.CertsDir == "" {
		opts.CertsDir = DefaultCertsDir
	}
	if opts.UserAgent == "" {
		opts.UserAgent = DefaultUserAgent
	}
	if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = DefaultChunkSize
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	c := &Client{
		opts:       opts,
		hubHost:    dockerHubHost,
		hosts:      map[string]bool{},
		transports: map[string]*http.Transport{},
		pings:      newTTLCache[*pingResult](maxPings),
		sessions:   newTTLCache[*session](maxSessions),
		now:        time.Now,
	}
	for _, s := range opts.Insecure {
		if p, err := netip.ParsePrefix(s); err == nil {
			c.insecure = append(c.insecure, p.Masked())
		} else {
			c.hosts[strings.ToLower(s)] = true
		}
	}
	return c
}

// DefaultConfigDir returns $DOCKER_CONFIG, else ~/.docker.
func DefaultConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker")
}

// endpoint is one registry server that can serve a repository.
type endpoint struct {
	host       string // host[:port] requests go to
	authKey    string // key of its credentials in config.json
	plainHTTP  bool   // HTTP is allowed after HTTPS fails
	skipVerify bool   // TLS certificates are not verified
	httpOnly   bool   // a mirror given as an http:// URL
	mirror     bool
}

// repoRef is a repository on a registry as the protocol names it.
type repoRef struct {
	domain string // reference domain: "docker.io", "127.0.0.1:5000"
	path   string // repository path: "library/busybox"
	name   string // familiar name for messages: "busybox"
}

func splitRepo(ref reference.Named) repoRef {
	return repoRef{
		domain: reference.Domain(ref),
		path:   reference.Path(ref),
		name:   reference.FamiliarName(ref),
	}
}

// endpointFor returns the endpoint of the registry itself for domain.
func (c *Client) endpointFor(domain string) endpoint {
	if domain == dockerHubDomain || domain == "index.docker.io" {
		return c.newEndpoint(c.hubHost, dockerHubAuthKey)
	}
	return c.newEndpoint(domain, domain)
}

func (c *Client) newEndpoint(host, authKey string) endpoint {
	ep := endpoint{host: host, authKey: authKey}
	if c.isInsecure(host) {
		ep.plainHTTP, ep.skipVerify = true, true
	} else if isLoopback(host) {
		ep.plainHTTP = true
	}
	return ep
}

// pullEndpoints returns the endpoints to try, in order, for a pull from
// domain: the mirrors first for Docker Hub.
func (c *Client) pullEndpoints(domain string) []endpoint {
	real := c.endpointFor(domain)
	if real.authKey != dockerHubAuthKey {
		return []endpoint{real}
	}
	var eps []endpoint
	for _, m := range c.opts.Mirrors {
		host, httpOnly := parseMirror(m)
		if host == "" {
			continue
		}
		ep := c.newEndpoint(host, host)
		ep.mirror = true
		ep.httpOnly = httpOnly
		eps = append(eps, ep)
	}
	return append(eps, real)
}

// parseMirror returns the host of a mirror given as "host:port" or as a URL,
// and whether its URL says plain HTTP.
func parseMirror(m string) (host string, httpOnly bool) {
	m = strings.TrimSpace(m)
	if !strings.Contains(m, "://") {
		return strings.TrimSuffix(m, "/"), false
	}
	u, err := url.Parse(m)
	if err != nil {
		return "", false
	}
	return u.Host, u.Scheme == "http"
}

// isInsecure reports whether host is listed in Options.Insecure, by name or
// by an IP address inside a listed CIDR.
func (c *Client) isInsecure(host string) bool {
	if c.hosts[strings.ToLower(host)] {
		return true
	}
	name := hostname(host)
	if c.hosts[strings.ToLower(name)] {
		return true
	}
	addr, err := netip.ParseAddr(name)
	if err != nil {
		return false
	}
	for _, p := range c.insecure {
		if p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	name := hostname(host)
	if strings.EqualFold(name, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(name)
	return err == nil && addr.Unmap().IsLoopback()
}

// hostname strips the port (and IPv6 brackets) from host.
func hostname(host string) string {
	u := url.URL{Host: host}
	return u.Hostname()
}

// scopeFor returns the token scope for actions ("pull", "pull,push") on repo.
func scopeFor(repo, actions string) string {
	return "repository:" + repo + ":" + actions
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// backoff is the wait before retry n (0-based): 100ms, 200ms, 400ms, ...
// capped at 2s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << n
	if d > 2*time.Second || d <= 0 {
		d = 2 * time.Second
	}
	return d
}

func (e endpoint) String() string {
	if e.mirror {
		return fmt.Sprintf("mirror %s", e.host)
	}
	return e.host
}
