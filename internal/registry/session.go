package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/log"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// session is an endpoint with an authenticating client for a set of scopes.
type session struct {
	c      *Client
	ep     endpoint
	base   string // "https://host" or "http://host"
	client *http.Client
}

// pingResult is what GET /v2/ told us about an endpoint.
type pingResult struct {
	scheme    string
	challenge transport.Challenge // Scheme "" when no auth is needed
}

// url returns the URL of an API path ("/v2/...").
func (s *session) url(path string) string { return s.base + path }

// session returns a cached or new session with ep for scopes.
func (c *Client) session(ctx context.Context, ep endpoint, scopes ...string) (*session, error) {
	cred, err := c.credentials(ctx, ep.authKey)
	if err != nil {
		return nil, err
	}
	sort.Strings(scopes)
	key := ep.host + "|" + strings.Join(scopes, " ") + "|" + fingerprint(cred)
	c.mu.Lock()
	s, ok := c.sessions.get(key, c.now())
	c.mu.Unlock()
	if ok {
		return s, nil
	}

	var pr *pingResult
	for attempt := 0; ; attempt++ {
		pr, err = c.ping(ctx, ep)
		if err == nil || attempt >= c.opts.Retries || !retryablePing(ctx, err) {
			break
		}
		if serr := sleep(ctx, backoff(attempt)); serr != nil {
			var e *Error
			if errors.As(err, &e) {
				e.cause = errors.Join(e.cause, serr)
			}
			break
		}
	}
	if err != nil {
		return nil, err
	}
	base, err := c.baseTransport(ep)
	if err != nil {
		return nil, err
	}
	rt, ttl, err := c.authTransport(ctx, ep, pr, base, cred, scopes)
	if err != nil {
		return nil, err
	}
	s = &session{c: c, ep: ep, base: pr.scheme + "://" + ep.host, client: &http.Client{Transport: rt}}
	c.mu.Lock()
	now := c.now()
	c.sessions.put(key, s, now.Add(ttl), now)
	c.mu.Unlock()
	return s, nil
}

func retryablePing(ctx context.Context, err error) bool {
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		return retryableStatus(e.Status)
	}
	return retryableError(ctx, err)
}

// authTransport wraps base to authenticate as the ping's challenge asks:
// nothing, basic auth, or a bearer token for scopes (exchanged now). It
// also returns how long to keep the session: sessionTTL, or the token's
// lifetime if that is shorter.
func (c *Client) authTransport(ctx context.Context, ep endpoint, pr *pingResult, base http.RoundTripper, cred authn.AuthConfig, scopes []string) (http.RoundTripper, time.Duration, error) {
	if pr.challenge.Scheme == "" {
		return base, sessionTTL, nil
	}
	reg, err := name.NewRegistry(ep.host, name.WeakValidation)
	if err != nil {
		return nil, 0, invalid("registry host %q: %v", ep.host, err)
	}
	var auth authn.Authenticator = authn.Anonymous
	if cred != (authn.AuthConfig{}) {
		auth = authn.FromConfig(cred)
	}
	if !strings.EqualFold(pr.challenge.Scheme, "bearer") {
		rt, err := transport.FromToken(reg, auth, base, &pr.challenge, nil)
		return rt, sessionTTL, err
	}
	tok, err := transport.Exchange(ctx, reg, auth, base, scopes, &pr.challenge)
	if err != nil {
		return nil, 0, transportError(ctx, err, fmt.Sprintf("get a token for %s from registry %s", strings.Join(scopes, " "), ep))
	}
	rt, err := transport.FromToken(reg, auth, base, &pr.challenge, tok)
	return rt, tokenTTL(tok.ExpiresIn), err
}

// tokenTTL is how long to keep a session whose token lasts expiresIn
// seconds: sessionTTL at most, and 60 s (the spec's default) when the
// server does not say.
func tokenTTL(expiresIn int) time.Duration {
	if expiresIn <= 0 {
		expiresIn = 60
	}
	return min(time.Duration(expiresIn)*time.Second, sessionTTL)
}

// ping finds the scheme of ep and its authentication challenge: HTTPS
// first, then plain HTTP if ep allows it. Results are cached per host.
func (c *Client) ping(ctx context.Context, ep endpoint) (*pingResult, error) {
	c.mu.Lock()
	pr, ok := c.pings.get(ep.host, c.now())
	c.mu.Unlock()
	if ok {
		return pr, nil
	}
	base, err := c.baseTransport(ep)
	if err != nil {
		return nil, err
	}
	schemes := []string{"https"}
	if ep.httpOnly {
		schemes = []string{"http"}
	} else if ep.plainHTTP {
		schemes = append(schemes, "http")
	}
	var errs []string
	var first error
	for _, scheme := range schemes {
		pr, err := c.pingScheme(ctx, base, scheme, ep)
		if err == nil {
			c.mu.Lock()
			now := c.now()
			c.pings.put(ep.host, pr, now.Add(pingTTL), now)
			c.mu.Unlock()
			return pr, nil
		}
		var e *Error
		if errors.As(err, &e) && e.Status != 0 && e.Status != http.StatusBadRequest {
			// The server answered over this scheme: it is the right one.
			return nil, err
		}
		if first == nil {
			first = err
		}
		errs = append(errs, fmt.Sprintf("over %s: %v", scheme, err))
		if isTLSError(err) {
			// The server speaks TLS: plain HTTP would only hide the problem.
			e := transportError(ctx, err, fmt.Sprintf("ping registry %s", ep))
			e.Detail = err.Error() + " (add the registry's CA to " +
				filepath.Join(c.opts.CertsDir, ep.host, "ca.crt") + ", or list it as insecure)"
			return nil, e
		}
		if ctx.Err() != nil {
			break
		}
	}
	e := transportError(ctx, first, fmt.Sprintf("ping registry %s", ep))
	if len(errs) > 1 {
		e.Detail = strings.Join(errs, "; ")
	}
	return nil, e
}

func (c *Client) pingScheme(ctx context.Context, base http.RoundTripper, scheme string, ep endpoint) (*pingResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	u := scheme + "://" + ep.host + "/v2/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, invalid("ping registry %s: %v", ep, err)
	}
	resp, err := (&http.Client{Transport: base}).Do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return &pingResult{scheme: scheme}, nil
	case http.StatusUnauthorized:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		ch, ok := pickChallenge(resp.Header.Values("WWW-Authenticate"))
		if !ok {
			return nil, &Error{Msg: fmt.Sprintf("ping registry %s", ep), Status: resp.StatusCode,
				Detail: "401 without a basic or bearer challenge", class: statusClass(resp.StatusCode)}
		}
		ch.Insecure = scheme == "http"
		return &pingResult{scheme: scheme, challenge: ch}, nil
	default:
		return nil, responseError(resp, fmt.Sprintf("ping registry %s (GET %s)", ep, u))
	}
}

// baseTransport returns the shared HTTP transport for ep's host with its TLS
// settings, wrapped to send the user agent.
func (c *Client) baseTransport(ep endpoint) (http.RoundTripper, error) {
	key := ep.host
	c.mu.Lock()
	tr := c.transports[key]
	c.mu.Unlock()
	if tr == nil {
		cfg, err := c.tlsConfig(ep)
		if err != nil {
			return nil, err
		}
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: c.opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       cfg,
			TLSHandshakeTimeout:   c.opts.Timeout,
			ResponseHeaderTimeout: c.opts.Timeout,
			ExpectContinueTimeout: time.Second,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
		c.mu.Lock()
		if old := c.transports[key]; old != nil {
			tr = old
		} else {
			c.transports[key] = tr
		}
		c.mu.Unlock()
	}
	return &userAgent{agent: c.opts.UserAgent, inner: tr}, nil
}

// tlsConfig returns ep's TLS settings: system roots plus Options.RootCAs and
// the CAs and client certificates in <CertsDir>/<host>/.
func (c *Client) tlsConfig(ep endpoint) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: ep.skipVerify}
	var roots *x509.CertPool
	if c.opts.RootCAs != nil {
		roots = c.opts.RootCAs.Clone()
		addSystemBundle(roots)
	} else if sys, err := x509.SystemCertPool(); err == nil {
		roots = sys
	} else {
		roots = x509.NewCertPool()
	}
	dir := filepath.Join(c.opts.CertsDir, ep.host)
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read certificates of registry %s: %w", ep, err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".crt"):
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("read CA of registry %s: %w", ep, err)
			}
			if !roots.AppendCertsFromPEM(data) {
				return nil, invalid("CA file %s of registry %s holds no PEM certificate", p, ep)
			}
		case strings.HasSuffix(e.Name(), ".cert"):
			keyPath := strings.TrimSuffix(p, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(p, keyPath)
			if err != nil {
				return nil, invalid("client certificate %s of registry %s: %v", p, ep, err)
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		}
	}
	cfg.RootCAs = roots
	return cfg, nil
}

// addSystemBundle adds the system's CA bundle file, if found, to pool.
func addSystemBundle(pool *x509.CertPool) {
	files := []string{os.Getenv("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}
	for _, f := range files {
		if f == "" {
			continue
		}
		if data, err := os.ReadFile(f); err == nil && pool.AppendCertsFromPEM(data) {
			return
		}
	}
}

// userAgent sets the User-Agent header of every request.
type userAgent struct {
	agent string
	inner http.RoundTripper
}

func (u *userAgent) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", u.agent)
	return u.inner.RoundTrip(req)
}

// fingerprint identifies credentials in a cache key without holding them.
func fingerprint(a authn.AuthConfig) string {
	if a == (authn.AuthConfig{}) {
		return "anonymous"
	}
	h := sha256.Sum256([]byte(a.Username + "\x00" + a.Password + "\x00" + a.Auth + "\x00" + a.IdentityToken + "\x00" + a.RegistryToken))
	return hex.EncodeToString(h[:8])
}

// request describes one API call for session.do.
type request struct {
	method string
	url    string
	header http.Header
	body   []byte // sent as is; nil for none
	// retry allows resending on a dropped connection, 429 or 5xx.
	retry bool
	// what says what failed in error messages.
	what string
}

// do sends r, retrying it (when r.retry) up to Options.Retries times on
// transport errors and 429/5xx answers. Any response is returned, whatever
// its status; the caller checks it.
func (s *session) do(ctx context.Context, r request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body)
		}
		req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
		if err != nil {
			return nil, invalid("%s: %v", r.what, err)
		}
		for k, v := range r.header {
			req.Header[k] = v
		}
		if r.body != nil {
			req.ContentLength = int64(len(r.body))
		}
		resp, err := s.client.Do(req)
		canRetry := r.retry && attempt < s.c.opts.Retries
		if err != nil {
			if canRetry && retryableError(ctx, err) {
				log.G(ctx).Debug("registry request failed, retrying", "what", r.what, "attempt", attempt+1, "error", err)
				if sleep(ctx, backoff(attempt)) == nil {
					continue
				}
			}
			return nil, transportError(ctx, err, r.what)
		}
		if canRetry && retryableStatus(resp.StatusCode) {
			log.G(ctx).Debug("registry request failed, retrying", "what", r.what, "attempt", attempt+1, "status", resp.Status)
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return nil, transportError(ctx, err, r.what)
			}
			continue
		}
		return resp, nil
	}
}
