package ghfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v57/github"
)

// appJWT is a JWT an app would send: signed by key with method, iss, and
// iat and exp these offsets from now.
func appJWT(t *testing.T, key any, method jwt.SigningMethod, iss string, iat, exp time.Duration) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(method, jwt.RegisteredClaims{
		Issuer: iss, IssuedAt: jwt.NewNumericDate(now.Add(iat)), ExpiresAt: jwt.NewNumericDate(now.Add(exp)),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func post(t *testing.T, s *Server, path, auth string) (int, map[string]any) {
	t.Helper()
	return do(t, s, http.MethodPost, path, auth)
}

func do(t *testing.T, s *Server, method, path, auth string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.Server.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestTheTokenExchangeVerifiesTheAppsJWTAsGitHubDoes(t *testing.T) {
	s := New(t.Cleanup, "")
	keyPEM := s.InstallApp(1, 10)
	s.InstallApp(2, 20)
	key, err := jwt.ParseRSAPrivateKeyFromPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const path = "/app/installations/10/access_tokens"
	tests := []struct {
		name     string
		path     string
		auth     string
		wantCode int
		wantMsg  string
	}{
		{"a JWT of the app", path, "Bearer " + appJWT(t, key, jwt.SigningMethodRS256, "1", -30*time.Second, 2*time.Minute), http.StatusCreated, ""},
		{"no JWT", path, "", http.StatusUnauthorized, "A JSON web token could not be decoded"},
		{"a JWT signed with another key", path, "Bearer " + appJWT(t, other, jwt.SigningMethodRS256, "1", 0, time.Minute), http.StatusUnauthorized, "A JSON web token could not be decoded"},
		{"an HS256 JWT", path, "Bearer " + appJWT(t, []byte("secret"), jwt.SigningMethodHS256, "1", 0, time.Minute), http.StatusUnauthorized, "A JSON web token could not be decoded"},
		{"a JWT of an unknown app", path, "Bearer " + appJWT(t, key, jwt.SigningMethodRS256, "3", 0, time.Minute), http.StatusUnauthorized, "Integration not found"},
		{"an expired JWT", path, "Bearer " + appJWT(t, key, jwt.SigningMethodRS256, "1", -20*time.Minute, -10*time.Minute), http.StatusUnauthorized, "'Expiration time' claim ('exp') must be a numeric value"},
		{"a JWT that expires too late", path, "Bearer " + appJWT(t, key, jwt.SigningMethodRS256, "1", 0, time.Hour), http.StatusUnauthorized, "'Expiration time' claim ('exp') is too far in the future"},
		{"another app's installation", "/app/installations/20/access_tokens", "Bearer " + appJWT(t, key, jwt.SigningMethodRS256, "1", 0, time.Minute), http.StatusNotFound, "Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(t, s, tt.path, tt.auth)
			if code != tt.wantCode {
				t.Fatalf("answered %d %v, want %d", code, body, tt.wantCode)
			}
			if msg, _ := body["message"].(string); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message %q, want %q", msg, tt.wantMsg)
			}
		})
	}
	if n := s.TokenExchanges(); n != 1 {
		t.Errorf("%d tokens issued, want the one of the valid JWT", n)
	}
}

func TestAnInstallationTokenOpensTheAPIUntilItExpires(t *testing.T) {
	s := New(t.Cleanup, "personal-token")
	s.Repo("o/r")
	keyPEM := s.InstallApp(1, 10)
	key, _ := jwt.ParseRSAPrivateKeyFromPEM(keyPEM)
	code, body := post(t, s, "/app/installations/10/access_tokens", "Bearer "+appJWT(t, key, jwt.SigningMethodRS256, "1", 0, time.Minute))
	if code != http.StatusCreated {
		t.Fatalf("exchange: %d %v", code, body)
	}
	raw, _ := json.Marshal(body)
	var it github.InstallationToken
	if err := json.Unmarshal(raw, &it); err != nil || !strings.HasPrefix(it.GetToken(), "ghs_") || time.Until(it.GetExpiresAt().Time) < 59*time.Minute {
		t.Fatalf("the answer %s is not an installation token lasting an hour (%v)", raw, err)
	}
	tests := []struct {
		name, auth string
		want       int
	}{
		{"the installation token", "token " + it.GetToken(), http.StatusOK},
		{"the installation token as a bearer", "Bearer " + it.GetToken(), http.StatusOK},
		{"the personal token", "token personal-token", http.StatusOK},
		{"an unknown token", "token ghs_unknown", http.StatusUnauthorized},
		{"the app's JWT", "Bearer " + appJWT(t, key, jwt.SigningMethodRS256, "1", 0, time.Minute), http.StatusUnauthorized},
		{"nothing", "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(t, s, http.MethodGet, "/repos/o/r", tt.auth)
			if code != tt.want {
				t.Fatalf("GET /repos/o/r answered %d %v, want %d", code, body, tt.want)
			}
			if code == http.StatusUnauthorized && body["message"] != "Bad credentials" {
				t.Errorf("a refusal says %v, want GitHub's Bad credentials", body)
			}
		})
	}
	s.ExpireTokens()
	if code, _ := do(t, s, http.MethodGet, "/repos/o/r", "token "+it.GetToken()); code != http.StatusUnauthorized {
		t.Errorf("an expired installation token was let in: %d", code)
	}
}

func TestBranchProtectionIsAnsweredAsGitHubAnswersEachCase(t *testing.T) {
	tests := []struct {
		name        string
		set         func(*Repo)
		code        int
		message     string
		unprotected bool // go-github's ErrBranchNotProtected
	}{
		{"protected, with required checks", func(r *Repo) { r.Required["main"] = &github.RequiredStatusChecks{Contexts: []string{"build"}} }, 200, "", false},
		{"not protected", func(*Repo) {}, 404, "Branch not protected", true},
		{"protected without required checks", func(r *Repo) { r.ProtectedWithoutChecks["main"] = true }, 404, "Required status checks not enabled", false},
		{"a token without admin rights", func(r *Repo) {
			r.Required["main"] = &github.RequiredStatusChecks{Contexts: []string{"build"}}
			r.ProtectionRefusal = 404
		}, 404, "Not Found", false},
		{"an app without the Administration permission", func(r *Repo) { r.ProtectionRefusal = 403 }, 403, "Resource not accessible by integration", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t.Cleanup, "tok")
			r := s.Repo("o/r")
			s.Lock(func() { tt.set(r) })
			gh := github.NewClient(nil).WithAuthToken("tok")
			base, err := url.Parse(s.URL())
			if err != nil {
				t.Fatal(err)
			}
			gh.BaseURL = base
			req, resp, err := gh.Repositories.GetRequiredStatusChecks(t.Context(), "o", "r", "main")
			if resp == nil || resp.StatusCode != tt.code {
				t.Fatalf("answered %v, %v; want %d", resp, err, tt.code)
			}
			if tt.code == 200 {
				if err != nil || len(req.Contexts) != 1 {
					t.Fatalf("required checks %v, %v", req, err)
				}
				return
			}
			var ge *github.ErrorResponse
			if got := errors.Is(err, github.ErrBranchNotProtected); got != tt.unprotected {
				t.Errorf("ErrBranchNotProtected is %v, want %v: %v", got, tt.unprotected, err)
			}
			if !tt.unprotected && (!errors.As(err, &ge) || ge.Message != tt.message) {
				t.Errorf("error %v, want the message %q", err, tt.message)
			}
		})
	}
}
