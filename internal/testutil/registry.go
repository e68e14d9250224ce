package testutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is Debian's distribution registry (package docker-registry).
const RegistryBinary = "/usr/bin/docker-registry"

// RegistryUser is the user name of a TestRegistry started with Auth.
const RegistryUser = "berth"

// registryStartTimeout bounds how long StartRegistry waits for /v2/ to answer.
const registryStartTimeout = 30 * time.Second

// RegistryOptions selects the features of a test registry.
type RegistryOptions struct {
	// Auth turns on htpasswd basic auth with user RegistryUser and a
	// generated password.
	Auth bool
	// TLS serves HTTPS with a server certificate for 127.0.0.1 and localhost
	// signed by a generated CA (see TestRegistry.CAFile and CAPool).
	TLS bool
	// Token turns on Docker's bearer-token auth with a TokenServer (see
	// TestRegistry.Tokens) for user RegistryUser and a generated password.
	// Auth is ignored when Token is set.
	Token bool
}

// TestRegistry is a running docker-registry on a free loopback port.
type TestRegistry struct {
	Host     string         // "127.0.0.1:PORT"
	User     string         // RegistryUser when Auth, else empty
	Password string         // generated password when Auth, else empty
	CAFile   string         // PEM file of the CA when TLS, else empty
	CAPool   *x509.CertPool // pool holding the CA when TLS, else nil
	Dir      string         // the registry's directory: config, storage, log
	TokenURL string         // the token server's realm when Token, else empty
	Tokens   *TokenServer   // the token server when Token, else nil
}

// Scheme returns "https" for a TLS registry and "http" otherwise.
func (r *TestRegistry) Scheme() string {
	if r.CAPool != nil {
		return "https"
	}
	return "http"
}

// URL returns the registry's URL for path, which starts with "/".
func (r *TestRegistry) URL(path string) string {
	return r.Scheme() + "://" + r.Host + path
}

// HTTPClient returns a client that trusts the registry's CA (when TLS).
// It sends no credentials by itself.
func (r *TestRegistry) HTTPClient() *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.CAPool}}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// StartRegistry runs Debian's docker-registry (distribution 2.8) with a
// generated configuration and storage in a new temporary directory, and
// returns once GET /v2/ answers. Cleanup kills the registry, waits for it and
// removes its directory; if the test failed, the registry's log is printed.
// It fails the test (never skips) when the binary is missing.
func StartRegistry(t testing.TB, opts RegistryOptions) *TestRegistry {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Fatalf("test registry: %v (install Debian's docker-registry, listed in scripts/debian-packages.txt)", err)
	}
	r := &TestRegistry{Dir: t.TempDir()}
	if opts.Token {
		opts.Auth = false
		r.User = RegistryUser
		r.Password = randomHex(t, 16)
		r.Tokens = StartTokenServer(t, r.Dir, r.User, r.Password)
		r.TokenURL = r.Tokens.Realm
	}
	if opts.Auth {
		r.User = RegistryUser
		r.Password = randomHex(t, 16)
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("test registry: hash password: %v", err)
		}
		line := r.User + ":" + string(hash) + "\n"
		if err := os.WriteFile(filepath.Join(r.Dir, "htpasswd"), []byte(line), 0o600); err != nil {
			t.Fatalf("test registry: %v", err)
		}
	}
	if opts.TLS {
		if err := writeRegistryCerts(r); err != nil {
			t.Fatalf("test registry: %v", err)
		}
	}
	// The free port is found by binding and releasing it, so another process
	// may take it before the registry binds it; the registry then exits and
	// we try again with another port.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("test registry: %v", err)
		}
		r.Host = fmt.Sprintf("127.0.0.1:%d", port)
		lastErr = r.start(t, opts)
		if lastErr == nil {
			return r
		}
		if !errors.Is(lastErr, errRegistryExited) {
			break
		}
	}
	t.Fatalf("test registry: %v", lastErr)
	return nil
}

var errRegistryExited = errors.New("registry exited")

// start runs the registry on r.Host and waits until it answers. On failure
// the process is gone when it returns; on success cleanup is registered.
func (r *TestRegistry) start(t testing.TB, opts RegistryOptions) error {
	config := r.config(opts)
	configPath := filepath.Join(r.Dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(r.Dir, "registry.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "=== start on %s\n", r.Host)

	cmd := exec.Command(RegistryBinary, "serve", configPath)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", RegistryBinary, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := r.waitReady(exited); err != nil {
		stop()
		if errors.Is(err, errRegistryExited) {
			err = fmt.Errorf("%w (%v) on %s: %s", errRegistryExited, waitErr, r.Host, tail(logPath))
		}
		return err
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			// Only the log's end: a whole log would push the test's own
			// failure messages out of a CI log's tail.
			t.Logf("registry %s log (end):\n%s", r.Host, tail(logPath))
		}
	})
	return nil
}

// waitReady polls GET /v2/ until the registry answers with 200 or 401, the
// process exits, or registryStartTimeout passes.
func (r *TestRegistry) waitReady(exited <-chan struct{}) error {
	client := r.HTTPClient()
	client.Timeout = time.Second
	defer client.CloseIdleConnections()
	deadline := time.NewTimer(registryStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		resp, err := client.Get(r.URL("/v2/"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		lastErr = err
		select {
		case <-exited:
			return errRegistryExited
		case <-deadline.C:
			return fmt.Errorf("registry on %s not ready after %s: %v", r.Host, registryStartTimeout, lastErr)
		case <-tick.C:
		}
	}
}

// config returns the registry's config.yml.
func (r *TestRegistry) config(opts RegistryOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
`, filepath.Join(r.Dir, "storage"), r.Host, hex.EncodeToString([]byte(r.Host+r.Dir)))
	if opts.TLS {
		fmt.Fprintf(&b, "  tls:\n    certificate: %q\n    key: %q\n",
			filepath.Join(r.Dir, "server.crt"), filepath.Join(r.Dir, "server.key"))
	}
	if opts.Token {
		fmt.Fprintf(&b, "auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
			r.Tokens.Realm, TokenService, TokenIssuer, r.Tokens.CertFile)
	} else if opts.Auth {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: berth-test\n    path: %q\n",
			filepath.Join(r.Dir, "htpasswd"))
	}
	return b.String()
}

// writeRegistryCerts makes a CA and a server certificate for 127.0.0.1 and
// localhost in r.Dir and fills r.CAFile and r.CAPool.
func writeRegistryCerts(r *TestRegistry) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("parse CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal server key: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{
		"ca.crt":     caPEM,
		"server.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(r.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	r.CAFile = filepath.Join(r.Dir, "ca.crt")
	r.CAPool = x509.NewCertPool()
	r.CAPool.AddCert(caCert)
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(bytes.TrimSpace(data))
}

// PushOptions returns the options PushImage and PushIndex need to reach r.
func (r *TestRegistry) PushOptions() PushOptions {
	return PushOptions{User: r.User, Password: r.Password, CAPool: r.CAPool}
}
