package ghclient

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// The app of the tests and its installation.
const (
	appID          = 4242
	installationID = 77
)

// fakeAPI is a GitHub API under a path prefix, as an Enterprise Server's
// /api/v3: it issues installation tokens to the test app for a JWT signed
// with its key, and records the Authorization of the other calls.
type fakeAPI struct {
	srv    *httptest.Server
	prefix string
	pub    *rsa.PublicKey

	mu        sync.Mutex
	exchanges int
	auths     []string // of GET /repos/o/r, in order
}

func newFakeAPI(t *testing.T, pub *rsa.PublicKey) *fakeAPI {
	f := &fakeAPI{prefix: "/api/v3", pub: pub}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+f.prefix+"/app/installations/{id}/access_tokens", f.exchange)
	mux.HandleFunc("GET "+f.prefix+"/repos/o/r", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.auths = append(f.auths, r.Header.Get("Authorization"))
		f.mu.Unlock()
		fmt.Fprint(w, `{"full_name":"o/r","default_branch":"main"}`)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) url() string { return f.srv.URL + f.prefix + "/" }

func (f *fakeAPI) exchange(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q,"documentation_url":"https://docs.github.com/rest"}`, msg)
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), claims, func(*jwt.Token) (any, error) {
		if claims.Issuer != strconv.Itoa(appID) {
			return nil, fmt.Errorf("no app %s", claims.Issuer)
		}
		return f.pub, nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	switch {
	case err != nil && claims.Issuer != strconv.Itoa(appID):
		refuse(http.StatusUnauthorized, "Integration not found")
		return
	case err != nil:
		refuse(http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	case r.PathValue("id") != strconv.Itoa(installationID):
		refuse(http.StatusNotFound, "Not Found")
		return
	}
	f.mu.Lock()
	f.exchanges++
	n := f.exchanges
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"token": fmt.Sprintf("ghs_%d", n), "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
}

// newKey is a new RSA key and its PEM, as GitHub gives an app.
func newKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// wrapCount is an Options.Wrap that counts what passes through it and
// whether it already carried an Authorization.
type wrapCount struct {
	base     http.RoundTripper
	mu       sync.Mutex
	n        int
	withAuth int
}

func (w *wrapCount) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.n++
	if r.Header.Get("Authorization") != "" {
		w.withAuth++
	}
	w.mu.Unlock()
	return w.base.RoundTrip(r)
}

func TestAnAppClientExchangesItsTokenAtTheAPIGivenAndKeepsIt(t *testing.T) {
	key, keyPEM := newKey(t)
	api := newFakeAPI(t, &key.PublicKey)
	var wrap *wrapCount
	c, err := New(Auth{AppID: appID, InstallationID: installationID, PrivateKey: keyPEM}, api.url(),
		Options{Wrap: func(b http.RoundTripper) http.RoundTripper { wrap = &wrapCount{base: b}; return wrap }})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BaseURL.String(); got != api.url() {
		t.Errorf("BaseURL = %q, want the URL exactly as given, %q", got, api.url())
	}
	for range 2 {
		if _, _, err := c.Repositories.Get(context.Background(), "o", "r"); err != nil {
			t.Fatalf("GET /repos/o/r: %v", err)
		}
	}
	tok, err := c.Token(context.Background())
	if err != nil || tok != "ghs_1" {
		t.Errorf("Token = %q, %v; want the installation token the calls carried", tok, err)
	}
	if api.exchanges != 1 || len(api.auths) != 2 || api.auths[0] != "token ghs_1" || api.auths[1] != "token ghs_1" {
		t.Errorf("%d exchanges, calls carried %q; want one exchange and `token ghs_1` on both", api.exchanges, api.auths)
	}
	// The wrapper is above the app's transport: it sees the calls before
	// their token is added, and never the exchange.
	if wrap.n != 2 || wrap.withAuth != 0 {
		t.Errorf("the wrapper saw %d requests, %d of them with an Authorization; want the 2 calls, without", wrap.n, wrap.withAuth)
	}
}

func TestATokenClientSendsItAsABearerTokenBelowNoExchange(t *testing.T) {
	api := newFakeAPI(t, nil)
	var wrap *wrapCount
	c, err := New(Auth{Token: "ghp_x"}, api.url(), Options{Wrap: func(b http.RoundTripper) http.RoundTripper { wrap = &wrapCount{base: b}; return wrap }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Repositories.Get(context.Background(), "o", "r"); err != nil {
		t.Fatal(err)
	}
	if tok, _ := c.Token(context.Background()); tok != "ghp_x" {
		t.Errorf("Token = %q", tok)
	}
	if api.exchanges != 0 || len(api.auths) != 1 || api.auths[0] != "Bearer ghp_x" {
		t.Errorf("%d exchanges, calls carried %q", api.exchanges, api.auths)
	}
	// go-github adds the token above the wrapper (ci-status keys its cache
	// by it).
	if wrap.n != 1 || wrap.withAuth != 1 {
		t.Errorf("the wrapper saw %d requests, %d with an Authorization", wrap.n, wrap.withAuth)
	}
}

func TestNewWithoutAuthIsErrNotConfigured(t *testing.T) {
	if _, err := New(Auth{}, "", Options{}); err != ErrNotConfigured {
		t.Fatalf("New without auth = %v", err)
	}
}

func TestARefusedExchangeIsAnErrorSayingWhatToCheck(t *testing.T) {
	key, keyPEM := newKey(t)
	_, otherPEM := newKey(t)
	tests := []struct {
		name string
		auth Auth
		want []string
	}{
		{"a private key of another app", Auth{AppID: appID, InstallationID: installationID, PrivateKey: otherPEM},
			[]string{"GitHub gave the GitHub App no installation token for the test (401 A JSON web token could not be decoded): check github_app_id and that the secret GITHUB_APP_PRIVATE_KEY is a private key of that app"}},
		{"an app id GitHub does not know", Auth{AppID: 99, InstallationID: installationID, PrivateKey: keyPEM},
			[]string{"(401 Integration not found)", "check github_app_id"}},
		{"an installation of another app", Auth{AppID: appID, InstallationID: 78, PrivateKey: keyPEM},
			[]string{"(404 Not Found): check github_installation_id: the app is not installed there"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI(t, &key.PublicKey)
			c, err := New(tt.auth, api.url(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.Repositories.Get(context.Background(), "o", "r")
			ie := InstallationError("the test", err)
			if ie == nil {
				t.Fatalf("InstallationError(%v) = nil", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(ie.Error(), w) {
					t.Errorf("%q lacks %q", ie, w)
				}
			}
			if again := InstallationError("the test", err); again.Error() != ie.Error() {
				t.Errorf("a second explanation differs: %q", again)
			}
			if _, err := c.Token(context.Background()); InstallationError("git", err) == nil {
				t.Errorf("Token's error %v is not explained", err)
			}
			if len(api.auths) != 0 {
				t.Errorf("calls were made without a token: %q", api.auths)
			}
		})
	}
}

func TestAnUnreachableExchangeSaysSo(t *testing.T) {
	_, keyPEM := newKey(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := New(Auth{AppID: appID, InstallationID: installationID, PrivateKey: keyPEM}, srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Repositories.Get(context.Background(), "o", "r")
	if ie := InstallationError("the test", err); ie == nil || !strings.HasPrefix(ie.Error(), "could not reach GitHub for the GitHub App's installation token, needed for the test: ") {
		t.Fatalf("InstallationError = %v", ie)
	}
}

func TestOtherErrorsAreLeftToTheCaller(t *testing.T) {
	if err := InstallationError("x", fmt.Errorf("GET: %w", context.DeadlineExceeded)); err != nil {
		t.Fatalf("InstallationError of a timeout = %v", err)
	}
}

func TestReadAuth(t *testing.T) {
	_, keyPEM := newKey(t)
	oneLine := strings.ReplaceAll(strings.TrimSpace(string(keyPEM)), "\n", `\n`)
	tests := []struct {
		name          string
		appID, instID int64
		secrets       map[string]string
		want          Auth
		problems      []string // key: message start
	}{
		{"nothing is no auth, and no problem", 0, 0, nil, Auth{}, nil},
		{"a token", 0, 0, map[string]string{SecretToken: "ghp_x"}, Auth{Token: "ghp_x"}, nil},
		{"an app", appID, installationID, map[string]string{SecretPrivateKey: string(keyPEM)},
			Auth{AppID: appID, InstallationID: installationID, PrivateKey: []byte(strings.TrimSpace(string(keyPEM)))}, nil},
		{"an app whose key is one line with \\n", appID, installationID, map[string]string{SecretPrivateKey: oneLine},
			Auth{AppID: appID, InstallationID: installationID, PrivateKey: []byte(strings.TrimSpace(string(keyPEM)))}, nil},
		{"an app and a token", appID, installationID, map[string]string{SecretPrivateKey: string(keyPEM), SecretToken: "ghp_x"}, Auth{},
			[]string{"github_app_id: a GitHub App and the secret GITHUB_TOKEN are both configured"}},
		{"a key alone", 0, 0, map[string]string{SecretPrivateKey: string(keyPEM)}, Auth{},
			[]string{"github_app_id: is required for a GitHub App", "github_installation_id: is required for a GitHub App"}},
		{"ids without a key", appID, installationID, nil, Auth{},
			[]string{"github_app_id: the GitHub App needs its private key: give the plugin the secret GITHUB_APP_PRIVATE_KEY"}},
		{"negative ids", -1, -2, map[string]string{SecretPrivateKey: string(keyPEM)}, Auth{},
			[]string{"github_app_id: -1 is not an app's id", "github_installation_id: -2 is not an installation's id"}},
		{"a key that is no PEM", appID, installationID, map[string]string{SecretPrivateKey: "not-a-key-s3cr3t"}, Auth{},
			[]string{"github_app_id: the secret GITHUB_APP_PRIVATE_KEY is not the app's RSA private key in PEM"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := ReadAuth(tt.appID, tt.instID, func(k string) string { return tt.secrets[k] })
			var msgs []string
			for _, p := range problems {
				msgs = append(msgs, p.Key+": "+p.Message)
				if strings.Contains(p.Message, "s3cr3t") || strings.Contains(p.Message, "PRIVATE KEY-----\n") {
					t.Errorf("a problem quotes the key: %q", p.Message)
				}
			}
			if len(msgs) != len(tt.problems) {
				t.Fatalf("problems = %q, want %q", msgs, tt.problems)
			}
			for i, w := range tt.problems {
				if !strings.HasPrefix(msgs[i], w) {
					t.Errorf("problem %d = %q, want it to start %q", i, msgs[i], w)
				}
			}
			if got.Token != tt.want.Token || got.AppID != tt.want.AppID || got.InstallationID != tt.want.InstallationID || string(got.PrivateKey) != string(tt.want.PrivateKey) {
				t.Errorf("auth = %+v, want %+v", got, tt.want)
			}
		})
	}
}
