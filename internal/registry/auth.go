package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// AuthConfig is a set of credentials for one registry, as a client such as
// the docker CLI sends them (X-Registry-Auth).
type AuthConfig struct {
	Username      string
	Password      string
	IdentityToken string // an OAuth refresh token from a previous login
	RegistryToken string // a bearer token to send as is
}

type authKey struct{}

// WithAuth returns a context whose requests use a instead of the
// credentials found in the config directory.
func WithAuth(ctx context.Context, a AuthConfig) context.Context {
	return context.WithValue(ctx, authKey{}, a)
}

// helperTimeout bounds a credential helper's run.
const helperTimeout = 30 * time.Second

// configFile is the part of Docker's config.json we read.
type configFile struct {
	Auths       map[string]authEntry `json:"auths"`
	CredsStore  string               `json:"credsStore"`
	CredHelpers map[string]string    `json:"credHelpers"`
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// credentials returns the credentials for the config.json key key: those in
// ctx (WithAuth), else from a credential helper (credHelpers, credsStore),
// else from auths. No credentials is not an error.
func (c *Client) credentials(ctx context.Context, key string) (authn.AuthConfig, error) {
	if a, ok := ctx.Value(authKey{}).(AuthConfig); ok {
		return authn.AuthConfig{Username: a.Username, Password: a.Password,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}, nil
	}
	path := filepath.Join(c.opts.ConfigDir, "config.json")
	cf, err := readConfig(path)
	if err != nil {
		return authn.AuthConfig{}, err
	}
	helper := cf.CredHelpers[key]
	if helper == "" {
		helper = cf.CredsStore
	}
	if helper != "" {
		a, found, err := runHelper(ctx, helper, key)
		if err != nil {
			return authn.AuthConfig{}, err
		}
		if found {
			return a, nil
		}
	}
	for k, e := range cf.Auths {
		if k == key || normalizeServer(k) == normalizeServer(key) {
			return e.config(path, k)
		}
	}
	return authn.AuthConfig{}, nil
}

func (e authEntry) config(path, key string) (authn.AuthConfig, error) {
	a := authn.AuthConfig{Username: e.Username, Password: e.Password,
		IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return a, invalid("credentials for %s in %s: auth is not base64: %v", key, path, err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return a, invalid("credentials for %s in %s: auth is not user:password", key, path)
		}
		a.Username, a.Password = user, pass
	}
	return a, nil
}

// readConfig reads config.json; a missing file is an empty config.
func readConfig(path string) (configFile, error) {
	var cf configFile
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return cf, fmt.Errorf("read docker config %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &cf); err != nil {
		return cf, invalid("parse docker config %s: %v", path, err)
	}
	return cf, nil
}

// runHelper runs "docker-credential-<helper> get" with key on stdin. found
// is false when the helper has no credentials for key.
func runHelper(ctx context.Context, helper, key string) (a authn.AuthConfig, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	prog := "docker-credential-" + helper
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Stdin = strings.NewReader(key)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		out := strings.TrimSpace(stdout.String() + " " + stderr.String())
		if strings.Contains(strings.ToLower(out), "credentials not found") {
			return a, false, nil
		}
		return a, false, &Error{Msg: fmt.Sprintf("get credentials for %s from %s", key, prog),
			Detail: strings.TrimSpace(err.Error() + ": " + out), class: errdefs.ErrUnauthorized, cause: err}
	}
	var resp struct {
		Username string
		Secret   string
	}
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return a, false, invalid("get credentials for %s from %s: bad output: %v", key, prog, err)
	}
	if resp.Username == "<token>" {
		return authn.AuthConfig{IdentityToken: resp.Secret}, true, nil
	}
	return authn.AuthConfig{Username: resp.Username, Password: resp.Secret}, true, nil
}

// normalizeServer turns a server as users write it ("https://host/v1/",
// "host") into a host, with Docker Hub's names folded to dockerHubAuthKey.
func normalizeServer(server string) string {
	s := strings.TrimSpace(server)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	switch strings.ToLower(s) {
	case "", dockerHubDomain, "index.docker.io", dockerHubHost:
		return dockerHubAuthKey
	}
	return strings.ToLower(s)
}

// loginEndpoint returns the endpoint to check credentials for server.
func (c *Client) loginEndpoint(server string) endpoint {
	key := normalizeServer(server)
	if key == dockerHubAuthKey {
		return c.endpointFor(dockerHubDomain)
	}
	return c.endpointFor(key)
}

// Login checks user and password against the registry server (a host, a
// URL, or "" for Docker Hub). It returns the identity token the registry
// issued, if any, which can be stored instead of the password.
func (c *Client) Login(ctx context.Context, server, user, password string) (string, error) {
	ep := c.loginEndpoint(server)
	pr, err := c.ping(ctx, ep)
	if err != nil {
		return "", err
	}
	base, err := c.baseTransport(ep)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("login to registry %s as %s", ep, user)
	switch strings.ToLower(pr.challenge.Scheme) {
	case "":
		// The registry asks for no credentials: any are fine.
		return "", nil
	case "bearer":
		return c.loginToken(ctx, base, pr, user, password, msg)
	default:
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, pr.scheme+"://"+ep.host+"/v2/", nil)
		if err != nil {
			return "", invalid("%s: %v", msg, err)
		}
		req.SetBasicAuth(user, password)
		resp, err := (&http.Client{Transport: base}).Do(req)
		if err != nil {
			return "", transportError(ctx, err, msg)
		}
		if resp.StatusCode != http.StatusOK {
			e := responseError(resp, msg)
			if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
				e.Msg += ": wrong user name or password"
			}
			return "", e
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return "", nil
	}
}

// loginToken checks user and password against the token server of a bearer
// challenge as Docker does: GET the realm with basic credentials, asking for
// no scope and for a refresh token (offline_token), which it returns.
func (c *Client) loginToken(ctx context.Context, base http.RoundTripper, pr *pingResult, user, password, msg string) (string, error) {
	realm, err := url.Parse(pr.challenge.Parameters["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") || realm.Host == "" {
		return "", invalid("%s: bad token realm %q", msg, pr.challenge.Parameters["realm"])
	}
	if realm.Scheme == "http" && pr.scheme == "https" {
		return "", invalid("%s: registry over HTTPS sends a plain HTTP token realm %s", msg, realm)
	}
	q := realm.Query()
	if svc := pr.challenge.Parameters["service"]; svc != "" {
		q.Set("service", svc)
	}
	q.Set("client_id", c.opts.UserAgent)
	q.Set("offline_token", "true")
	realm.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", invalid("%s: %v", msg, err)
	}
	req.SetBasicAuth(user, password)
	resp, err := (&http.Client{Transport: base}).Do(req)
	if err != nil {
		return "", transportError(ctx, err, msg)
	}
	if resp.StatusCode != http.StatusOK {
		e := responseError(resp, msg)
		if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
			e.Msg += ": wrong user name or password"
		}
		return "", e
	}
	defer resp.Body.Close()
	var tok transport.Token
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok); err != nil {
		return "", &Error{Msg: msg, Detail: "bad token response: " + err.Error(), class: errdefs.ErrUnavailable}
	}
	if tok.Token == "" && tok.AccessToken == "" {
		return "", &Error{Msg: msg, Detail: "token server sent no token", class: errdefs.ErrUnavailable}
	}
	return tok.RefreshToken, nil
}

// pickChallenge parses WWW-Authenticate header values and returns a bearer
// challenge if there is one, else a basic one.
func pickChallenge(values []string) (transport.Challenge, bool) {
	var basic *transport.Challenge
	for _, v := range values {
		for _, ch := range parseChallenges(v) {
			switch strings.ToLower(ch.Scheme) {
			case "bearer":
				return ch, true
			case "basic":
				if basic == nil {
					b := ch
					basic = &b
				}
			}
		}
	}
	if basic != nil {
		return *basic, true
	}
	return transport.Challenge{}, false
}

// parseChallenges parses one WWW-Authenticate value (RFC 7235): schemes,
// each followed by comma-separated name=value parameters whose values are
// tokens or quoted strings. Malformed parts end the parse.
func parseChallenges(v string) []transport.Challenge {
	var out []transport.Challenge
	p := &headerParser{s: v}
	for {
		p.skip(" \t,")
		scheme := p.token()
		if scheme == "" {
			return out
		}
		ch := transport.Challenge{Scheme: scheme, Parameters: map[string]string{}}
		for {
			p.skip(" \t")
			save := p.i
			key := p.token()
			p.skip(" \t")
			if key == "" || !p.consume('=') {
				// Not a parameter: the next challenge's scheme, or the end.
				p.i = save
				break
			}
			p.skip(" \t")
			var val string
			if p.peek() == '"' {
				val = p.quoted()
			} else {
				val = p.token()
			}
			ch.Parameters[strings.ToLower(key)] = val
			p.skip(" \t")
			if !p.consume(',') {
				break
			}
		}
		out = append(out, ch)
	}
}

type headerParser struct {
	s string
	i int
}

func (p *headerParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *headerParser) consume(b byte) bool {
	if p.peek() == b && p.i < len(p.s) {
		p.i++
		return true
	}
	return false
}

func (p *headerParser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

// token reads a run of characters up to a space, comma, '=', ';' or quote.
func (p *headerParser) token() string {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] > ' ' && strings.IndexByte(",=;\"", p.s[p.i]) < 0 {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted string starting at '"', handling backslash escapes.
func (p *headerParser) quoted() string {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
