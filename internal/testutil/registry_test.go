package testutil

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestRegistryPlainStoresBlobs(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{})
	if !strings.HasPrefix(r.Host, "127.0.0.1:") || r.Scheme() != "http" || r.User != "" || r.CAPool != nil {
		t.Fatalf("unexpected registry %+v", r)
	}
	c := r.HTTPClient()
	data := []byte("hello registry")
	sum := sha256.Sum256(data)
	dgst := "sha256:" + hex.EncodeToString(sum[:])

	// Monolithic upload: POST then PUT ?digest=.
	resp, err := c.Post(r.URL("/v2/test/blobs/uploads/"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	q.Set("digest", dgst)
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finish upload: %s", resp.Status)
	}

	resp, err = c.Get(r.URL("/v2/test/blobs/" + dgst))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("get blob: %s %q %v", resp.Status, got, err)
	}
	if _, err := os.Stat(r.Dir + "/storage/docker/registry/v2/blobs/sha256"); err != nil {
		t.Errorf("blob not stored under Dir: %v", err)
	}
}

func TestRegistryAuth(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{Auth: true})
	if r.User != RegistryUser || len(r.Password) < 16 {
		t.Fatalf("credentials %q/%q", r.User, r.Password)
	}
	c := r.HTTPClient()
	get := func(user, pass string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, r.URL("/v2/"), nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("", ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous: got %d, want 401", code)
	}
	if code := get(r.User, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: got %d, want 401", code)
	}
	if code := get(r.User, r.Password); code != http.StatusOK {
		t.Errorf("right password: got %d, want 200", code)
	}
}

func TestRegistryTLS(t *testing.T) {
	r := StartRegistry(t, RegistryOptions{TLS: true})
	if r.Scheme() != "https" || r.CAFile == "" {
		t.Fatalf("unexpected registry %+v", r)
	}
	resp, err := r.HTTPClient().Get(r.URL("/v2/"))
	if err != nil {
		t.Fatalf("with CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with CA: %s", resp.Status)
	}
	// The CA file holds the same CA as the pool.
	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) || !pool.Equal(r.CAPool) {
		t.Errorf("CAFile %s does not hold the CA of CAPool", r.CAFile)
	}
	// Without the CA the certificate is rejected.
	_, err = (&http.Client{Timeout: 10 * time.Second}).Get(r.URL("/v2/"))
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("without CA: got %v, want an unknown-authority error", err)
	}
}

func TestRegistryCleanup(t *testing.T) {
	var host, dir string
	t.Run("run", func(t *testing.T) {
		r := StartRegistry(t, RegistryOptions{Auth: true, TLS: true})
		host, dir = r.Host, r.Dir
	})
	// After the subtest's cleanup the registry is gone and so is its directory.
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err == nil {
		conn.Close()
		t.Errorf("registry on %s still accepts connections after cleanup", host)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("registry dir %s not removed: %v", dir, err)
	}
}
