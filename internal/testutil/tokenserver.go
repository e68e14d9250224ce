package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Names a token server signs its tokens with and the registry checks.
const (
	TokenService = "berth-test-registry"
	TokenIssuer  = "berth-test-token-issuer"
	// TokenPublicPrefix is the repository prefix anyone may pull.
	TokenPublicPrefix = "public/"
	// TokenLifetime is the expires_in of the tokens issued, in seconds.
	TokenLifetime = 300
)

// TokenRequest is one request a TokenServer answered, for tests to check
// which scopes a client asked for.
type TokenRequest struct {
	Method  string   // GET or POST
	Grant   string   // POST's grant_type: "password" or "refresh_token"; "" for GET
	User    string   // the authenticated user, "" for anonymous
	Service string   // the service parameter
	Scopes  []string // the scope parameters, split on spaces, in order
	Offline bool     // a refresh token was asked for
	Status  int      // the HTTP status of the answer
}

// TokenServer is a loopback server implementing Docker's token protocol
// (GET /token with basic credentials or anonymous, and the OAuth2 POST
// /token with grant_type password or refresh_token). Its tokens are JWTs
// signed ES256 with a key whose self-signed certificate (CertFile) the
// registry trusts; the certificate travels in the header's x5c chain.
// Anonymous clients may pull repositories under TokenPublicPrefix; the user
// may pull and push everything.
type TokenServer struct {
	URL      string // "http://localhost:PORT"
	Realm    string // URL + "/token"
	User     string
	Password string
	CertFile string // PEM of the signing certificate, for rootcertbundle

	srv  *httptest.Server
	key  *ecdsa.PrivateKey
	x5c  string // base64 DER of the certificate
	mu   sync.Mutex
	log  []TokenRequest
	refr map[string]string // refresh token -> user
	// expireNext is how many of the next tokens are issued already expired.
	expireNext int
}

// StartTokenServer starts a token server for user and password writing its
// certificate into dir. Cleanup stops it.
//
// Its URL names "localhost", not 127.0.0.1: go-containerregistry's bearer
// transport refuses a realm that is a loopback or private IP literal on
// another port than the registry's.
func StartTokenServer(t testing.TB, dir, user, password string) *TokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("token server: generate key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: TokenIssuer},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("token server: create certificate: %v", err)
	}
	s := &TokenServer{
		User:     user,
		Password: password,
		CertFile: filepath.Join(dir, "token.crt"),
		key:      key,
		x5c:      base64.StdEncoding.EncodeToString(der),
		refr:     map[string]string{},
	}
	if err := os.WriteFile(s.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatalf("token server: %v", err)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.URL = strings.Replace(s.srv.URL, "127.0.0.1", "localhost", 1)
	s.Realm = s.URL + "/token"
	return s
}

// Requests returns the requests answered so far.
func (s *TokenServer) Requests() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenRequest(nil), s.log...)
}

// ExpireNext makes the next n tokens expire before they are issued, so that
// the registry refuses them and the client must get new ones.
func (s *TokenServer) ExpireNext(n int) {
	s.mu.Lock()
	s.expireNext = n
	s.mu.Unlock()
}

func (s *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	rec := TokenRequest{Method: r.Method}
	status := s.handle(w, r, &rec)
	rec.Status = status
	s.mu.Lock()
	s.log = append(s.log, rec)
	s.mu.Unlock()
}

// handle answers one request and returns its status.
func (s *TokenServer) handle(w http.ResponseWriter, r *http.Request, rec *TokenRequest) int {
	if r.URL.Path != "/token" {
		return tokenError(w, http.StatusNotFound, "not found")
	}
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		rec.Service = q.Get("service")
		rec.Scopes = splitScopes(q["scope"])
		rec.Offline = q.Get("offline_token") == "true"
		if user, pass, ok := r.BasicAuth(); ok {
			if user != s.User || pass != s.Password {
				return tokenError(w, http.StatusUnauthorized, "incorrect username or password")
			}
			rec.User = user
		}
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			return tokenError(w, http.StatusBadRequest, err.Error())
		}
		f := r.PostForm
		rec.Service = f.Get("service")
		rec.Scopes = splitScopes(f["scope"])
		rec.Grant = f.Get("grant_type")
		switch rec.Grant {
		case "password":
			if f.Get("username") != s.User || f.Get("password") != s.Password {
				return tokenError(w, http.StatusUnauthorized, "incorrect username or password")
			}
			rec.User = s.User
			rec.Offline = f.Get("access_type") == "offline"
		case "refresh_token":
			s.mu.Lock()
			user := s.refr[f.Get("refresh_token")]
			s.mu.Unlock()
			if user == "" {
				return tokenError(w, http.StatusUnauthorized, "invalid refresh token")
			}
			rec.User = user
		default:
			return tokenError(w, http.StatusBadRequest, "unsupported grant_type "+rec.Grant)
		}
	default:
		return tokenError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
	if rec.Service != TokenService {
		return tokenError(w, http.StatusBadRequest, "unknown service "+rec.Service)
	}
	tok, issued, err := s.sign(rec.User, rec.Scopes)
	if err != nil {
		return tokenError(w, http.StatusInternalServerError, err.Error())
	}
	resp := map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   TokenLifetime,
		"issued_at":    issued.UTC().Format(time.RFC3339),
	}
	switch {
	case rec.Grant == "refresh_token":
		resp["refresh_token"] = r.PostForm.Get("refresh_token")
	case rec.Offline && rec.User != "":
		rt := randomToken()
		s.mu.Lock()
		s.refr[rt] = rec.User
		s.mu.Unlock()
		resp["refresh_token"] = rt
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
	return http.StatusOK
}

func tokenError(w http.ResponseWriter, status int, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": msg}},
	})
	return status
}

func splitScopes(params []string) []string {
	var out []string
	for _, p := range params {
		out = append(out, strings.Fields(p)...)
	}
	return out
}

// grant returns the actions user may have of those asked on repository
// name: pull of TokenPublicPrefix for anyone, pull and push for the user.
func grant(user, name string, asked []string) []string {
	var out []string
	for _, a := range asked {
		switch {
		case user != "" && (a == "pull" || a == "push"):
			out = append(out, a)
		case a == "pull" && strings.HasPrefix(name, TokenPublicPrefix):
			out = append(out, a)
		}
	}
	return out
}

type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// sign returns a JWT granting user what it may have of scopes.
func (s *TokenServer) sign(user string, scopes []string) (string, time.Time, error) {
	access := []tokenAccess{}
	for _, sc := range scopes {
		// "repository:NAME:ACTIONS"; NAME may hold a port's colon.
		typ, rest, ok := strings.Cut(sc, ":")
		i := strings.LastIndexByte(rest, ':')
		if !ok || typ != "repository" || i < 0 {
			continue
		}
		name, actions := rest[:i], strings.Split(rest[i+1:], ",")
		if got := grant(user, name, actions); len(got) > 0 {
			sort.Strings(got)
			access = append(access, tokenAccess{Type: typ, Name: name, Actions: got})
		}
	}
	now := time.Now()
	exp := now.Add(TokenLifetime * time.Second)
	s.mu.Lock()
	if s.expireNext > 0 {
		s.expireNext--
		// Beyond distribution's 60 s leeway.
		exp = now.Add(-10 * time.Minute)
	}
	s.mu.Unlock()
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{s.x5c}}
	claims := map[string]any{
		"iss":    TokenIssuer,
		"sub":    user,
		"aud":    TokenService,
		"exp":    exp.Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"iat":    now.Unix(),
		"jti":    randomToken(),
		"access": access,
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", now, err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", now, err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, s.key, sum[:])
	if err != nil {
		return "", now, fmt.Errorf("sign token: %w", err)
	}
	// JWS ES256: R and S as 32-byte big-endian numbers, concatenated.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig), now, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
