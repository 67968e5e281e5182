// Package ghfake is a faithful fake of the parts of GitHub's REST API the
// ci-status plugin calls, on httptest, speaking go-github's types: commits
// and their statuses, check runs and annotations, Actions workflow runs,
// jobs and logs, branch protection, pull requests, reruns and cancels. Its
// answers carry ETags and honour If-None-Match with a 304, as GitHub does,
// and it can answer as a used-up rate limit. It authenticates as GitHub
// does: a personal token, or a GitHub App's installation token, which the
// app gets from POST /app/installations/{id}/access_tokens with a JWT that
// the fake verifies (RS256 under the app's public key, iss the app's id,
// iat and exp sane) and which expires. Tests of the plugin and the
// end-to-end tests of the bot use it.
package ghfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v57/github"
)

// Repo is one repository's state.
type Repo struct {
	DefaultBranch string
	// Branches maps a branch to its head commit.
	Branches map[string]string
	Pulls    map[int]*github.PullRequest
	// Statuses of a commit, newest first (as the combined status lists
	// the newest per context).
	Statuses map[string][]*github.RepoStatus
	// CheckRuns of a commit.
	CheckRuns map[string][]*github.CheckRun
	// Runs are the workflow runs, newest first.
	Runs []*github.WorkflowRun
	// Jobs of a workflow run.
	Jobs map[int64][]*github.WorkflowJob
	// Required are the required status checks of a protected branch; a
	// branch absent here is not protected.
	Required map[string]*github.RequiredStatusChecks
	// ProtectedWithoutChecks are protected branches that require no status
	// checks: GitHub answers their required checks 404 "Required status
	// checks not enabled".
	ProtectedWithoutChecks map[string]bool
	// ProtectionRefusal, when 403 or 404, is how GitHub answers a token
	// that may not read branch protection (it needs admin rights on the
	// repository): 404 "Not Found" to a classic token without them, 403
	// "Resource not accessible by integration" to a GitHub App (or a
	// fine-grained token) without the Administration permission.
	ProtectionRefusal int
	Annotations       map[int64][]*github.CheckRunAnnotation
	// Logs of a job.
	Logs map[int64]string
}

// Server is the fake GitHub.
type Server struct {
	*httptest.Server
	// Token is the token every API request must carry.
	Token string

	mu    sync.Mutex
	repos map[string]*Repo
	calls []string
	// notModified counts 304 answers.
	notModified int
	// RateLimited, when set, answers every API request as a used-up rate
	// limit that resets at RateReset.
	rateLimited bool
	rateReset   time.Time
	actions     []string

	// apps are the GitHub Apps' public keys by app id; installations
	// the app of each installation.
	apps          map[int64]*rsa.PublicKey
	installations map[int64]int64
	// tokens are the installation tokens issued, with their expiry.
	tokens    map[string]time.Time
	tokenTTL  time.Duration
	exchanges int
}

// DefaultTokenTTL is how long an installation token lasts, as on GitHub.
const DefaultTokenTTL = time.Hour

// New starts a fake GitHub; it is closed when the test ends (cleanup).
// Every API request must carry token (as "Bearer" or "token"), or an
// installation token of an app (InstallApp); with neither, any request
// is let in.
func New(cleanup func(func()), token string) *Server {
	s := &Server{
		Token: token, repos: map[string]*Repo{},
		apps: map[int64]*rsa.PublicKey{}, installations: map[int64]int64{}, tokens: map[string]time.Time{}, tokenTTL: DefaultTokenTTL,
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	cleanup(s.Close)
	return s
}

// Repo returns the repository full name ("owner/name"), made empty on first
// use. Change it under Lock.
func (s *Server) Repo(full string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(full)]
	if r == nil {
		r = &Repo{
			DefaultBranch: "main", Branches: map[string]string{}, Pulls: map[int]*github.PullRequest{},
			Statuses: map[string][]*github.RepoStatus{}, CheckRuns: map[string][]*github.CheckRun{},
			Jobs: map[int64][]*github.WorkflowJob{}, Required: map[string]*github.RequiredStatusChecks{},
			ProtectedWithoutChecks: map[string]bool{},
			Annotations:            map[int64][]*github.CheckRunAnnotation{}, Logs: map[int64]string{},
		}
		s.repos[strings.ToLower(full)] = r
	}
	return r
}

// Lock runs f with the fake's state locked, to change a Repo while the
// server runs.
func (s *Server) Lock(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// URL is the API's base URL, for the github_api_url setting.
func (s *Server) URL() string { return s.Server.URL + "/" }

// Calls returns the API requests made so far ("GET /repos/o/r/…"), and
// how many of them were answered 304 Not Modified.
func (s *Server) Calls() (calls []string, notModified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...), s.notModified
}

// ResetCalls forgets the calls counted so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.notModified = nil, 0
}

// Actions returns the reruns and cancels asked for: "rerun 42",
// "rerun-failed-jobs 42", "cancel 42".
func (s *Server) Actions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.actions...)
}

// RateLimit makes every API request fail as GitHub does when the quota is
// used up, until reset; the zero time lifts it.
func (s *Server) RateLimit(reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimited, s.rateReset = !reset.IsZero(), reset
}

// InstallApp registers a GitHub App, appID, installed as installationID,
// and returns its private key in PEM, as GitHub generates one on the app's
// settings page; the fake keeps only the public key.
func (s *Server) InstallApp(appID, installationID int64) []byte {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("ghfake: generate an app's key: %v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = &key.PublicKey
	s.installations[installationID] = appID
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// SetTokenTTL sets how long the installation tokens issued from now on
// last (DefaultTokenTTL at first).
func (s *Server) SetTokenTTL(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTTL = d
}

// TokenExchanges counts the installation tokens issued.
func (s *Server) TokenExchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges
}

// ExpireTokens makes every installation token issued so far expire now,
// as if their hour had passed.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = time.Now().Add(-time.Second)
	}
}

// authorized says whether an API request's Authorization header carries the
// token or a live installation token. Called with s.mu held.
func (s *Server) authorized(header string) bool {
	if s.Token == "" && len(s.apps) == 0 {
		return true
	}
	scheme, tok, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "bearer") || tok == "" {
		return false
	}
	if s.Token != "" && tok == s.Token {
		return true
	}
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// errNoApp is a JWT's iss that names no app of the fake.
var errNoApp = errors.New("no such app")

// jwtSkew is the drift of the app's clock GitHub tolerates in iat and exp.
const jwtSkew = time.Minute

// accessToken issues an installation token to the app that installationID
// belongs to, for a JWT of that app: POST
// /app/installations/{id}/access_tokens. Called with s.mu held.
func (s *Server) accessToken(w http.ResponseWriter, r *http.Request, installationID string) {
	const undecodable = "A JSON web token could not be decoded"
	refuse := func(msg string) {
		writeJSON(w, r, http.StatusUnauthorized, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		refuse(undecodable)
		return
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		id, err := strconv.ParseInt(claims.Issuer, 10, 64)
		if pub := s.apps[id]; err == nil && pub != nil {
			return pub, nil
		}
		return nil, errNoApp
	}, jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}))
	now := time.Now()
	var ve *jwt.ValidationError
	switch {
	case errors.Is(err, errNoApp):
		refuse("Integration not found")
		return
	case errors.As(err, &ve) && ve.Errors&jwt.ValidationErrorExpired != 0:
		refuse("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
		return
	case err != nil:
		refuse(undecodable)
		return
	case claims.IssuedAt == nil || claims.IssuedAt.After(now.Add(jwtSkew)):
		refuse("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")
		return
	case claims.ExpiresAt == nil:
		refuse("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
		return
	case claims.ExpiresAt.Sub(now) > 10*time.Minute+jwtSkew:
		refuse("'Expiration time' claim ('exp') is too far in the future")
		return
	}
	appID, _ := strconv.ParseInt(claims.Issuer, 10, 64)
	inst, err := strconv.ParseInt(installationID, 10, 64)
	if err != nil || s.installations[inst] != appID {
		notFound(w, r)
		return
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	tok := "ghs_" + hex.EncodeToString(b)
	exp := now.Add(s.tokenTTL).Truncate(time.Second)
	s.tokens[tok] = exp
	s.exchanges++
	writeJSON(w, r, http.StatusCreated, &github.InstallationToken{Token: github.String(tok), ExpiresAt: &github.Timestamp{Time: exp}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/rawlogs/") {
		s.rawLog(w, r)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), serverKey{}, s))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path)
	if parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/"); r.Method == http.MethodPost && len(parts) == 4 &&
		parts[0] == "app" && parts[1] == "installations" && parts[3] == "access_tokens" {
		s.accessToken(w, r, parts[2])
		return
	}
	if !s.authorized(r.Header.Get("Authorization")) {
		writeJSON(w, r, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	w.Header().Set("X-RateLimit-Limit", "5000")
	if s.rateLimited {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(s.rateReset.Unix(), 10))
		writeJSON(w, r, http.StatusForbidden, map[string]string{"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"})
		return
	}
	w.Header().Set("X-RateLimit-Remaining", "4999")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "repos" {
		notFound(w, r)
		return
	}
	repo := s.repos[strings.ToLower(parts[1]+"/"+parts[2])]
	if repo == nil {
		notFound(w, r)
		return
	}
	rest := parts[3:]
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && len(rest) == 0:
		writeJSON(w, r, http.StatusOK, &github.Repository{FullName: github.String(parts[1] + "/" + parts[2]), DefaultBranch: github.String(repo.DefaultBranch)})
	case r.Method == http.MethodGet && len(rest) == 2 && rest[0] == "commits":
		sha := repo.resolve(rest[1])
		if sha == "" {
			writeJSON(w, r, http.StatusUnprocessableEntity, map[string]string{"message": "No commit found for SHA: " + rest[1]})
			return
		}
		if strings.Contains(r.Header.Get("Accept"), "sha") {
			w.Header().Set("ETag", `"`+sha+`"`)
			if r.Header.Get("If-None-Match") == `"`+sha+`"` {
				s.notModified++
				w.WriteHeader(http.StatusNotModified)
				return
			}
			_, _ = w.Write([]byte(sha))
			return
		}
		writeJSON(w, r, http.StatusOK, &github.RepositoryCommit{SHA: github.String(sha)})
	case r.Method == http.MethodGet && len(rest) == 3 && rest[0] == "commits" && rest[2] == "status":
		sha := repo.resolve(rest[1])
		latest := map[string]bool{}
		var list []*github.RepoStatus
		state := "success"
		for _, st := range repo.Statuses[sha] {
			if latest[st.GetContext()] {
				continue
			}
			latest[st.GetContext()] = true
			list = append(list, st)
			switch st.GetState() {
			case "failure", "error":
				state = "failure"
			case "pending":
				if state == "success" {
					state = "pending"
				}
			}
		}
		if len(list) == 0 {
			state = "pending"
		}
		writeJSON(w, r, http.StatusOK, &github.CombinedStatus{State: github.String(state), SHA: github.String(sha), TotalCount: github.Int(len(list)), Statuses: list})
	case r.Method == http.MethodGet && len(rest) == 3 && rest[0] == "commits" && rest[2] == "check-runs":
		sha := repo.resolve(rest[1])
		runs := repo.CheckRuns[sha]
		if q.Get("filter") != "all" {
			// latest: the newest check run of each name.
			newest := map[string]*github.CheckRun{}
			for _, cr := range runs {
				if o := newest[cr.GetName()]; o == nil || cr.GetID() > o.GetID() {
					newest[cr.GetName()] = cr
				}
			}
			runs = nil
			for _, cr := range repo.CheckRuns[sha] {
				if newest[cr.GetName()] == cr {
					runs = append(runs, cr)
				}
			}
		}
		writeJSON(w, r, http.StatusOK, &github.ListCheckRunsResults{Total: github.Int(len(runs)), CheckRuns: runs})
	case r.Method == http.MethodGet && len(rest) == 3 && rest[0] == "check-runs" && rest[2] == "annotations":
		id, _ := strconv.ParseInt(rest[1], 10, 64)
		list := repo.Annotations[id]
		if list == nil {
			list = []*github.CheckRunAnnotation{}
		}
		writeJSON(w, r, http.StatusOK, list)
	case r.Method == http.MethodGet && len(rest) == 2 && rest[0] == "actions" && rest[1] == "runs":
		var runs []*github.WorkflowRun
		for _, run := range repo.Runs {
			if (q.Get("head_sha") == "" || run.GetHeadSHA() == q.Get("head_sha")) &&
				(q.Get("branch") == "" || run.GetHeadBranch() == q.Get("branch")) &&
				(q.Get("status") == "" || run.GetStatus() == q.Get("status") || run.GetConclusion() == q.Get("status")) {
				runs = append(runs, run)
			}
		}
		writeJSON(w, r, http.StatusOK, &github.WorkflowRuns{TotalCount: github.Int(len(runs)), WorkflowRuns: runs})
	case r.Method == http.MethodGet && len(rest) == 4 && rest[0] == "actions" && rest[1] == "runs" && rest[3] == "jobs":
		id, _ := strconv.ParseInt(rest[2], 10, 64)
		jobs := repo.Jobs[id]
		writeJSON(w, r, http.StatusOK, &github.Jobs{TotalCount: github.Int(len(jobs)), Jobs: jobs})
	case r.Method == http.MethodGet && len(rest) == 3 && rest[0] == "actions" && rest[1] == "jobs":
		id, _ := strconv.ParseInt(rest[2], 10, 64)
		for _, jobs := range repo.Jobs {
			for _, j := range jobs {
				if j.GetID() == id {
					writeJSON(w, r, http.StatusOK, j)
					return
				}
			}
		}
		notFound(w, r)
	case r.Method == http.MethodGet && len(rest) == 4 && rest[0] == "actions" && rest[1] == "jobs" && rest[3] == "logs":
		id, _ := strconv.ParseInt(rest[2], 10, 64)
		if _, ok := repo.Logs[id]; !ok {
			notFound(w, r)
			return
		}
		// GitHub redirects to the log's file on its storage.
		w.Header().Set("Location", fmt.Sprintf("%s/rawlogs/%s/%s/%d", s.Server.URL, parts[1], parts[2], id))
		w.WriteHeader(http.StatusFound)
	case r.Method == http.MethodGet && len(rest) >= 4 && rest[0] == "branches" && rest[len(rest)-2] == "protection" && rest[len(rest)-1] == "required_status_checks":
		branch := strings.Join(rest[1:len(rest)-2], "/")
		const docs = "https://docs.github.com/rest/branches/branch-protection#get-status-checks-protection"
		req := repo.Required[branch]
		switch {
		case repo.ProtectionRefusal == http.StatusNotFound:
			notFound(w, r)
			return
		case repo.ProtectionRefusal == http.StatusForbidden:
			writeJSON(w, r, http.StatusForbidden, map[string]string{"message": "Resource not accessible by integration", "documentation_url": docs})
			return
		case req == nil && repo.ProtectedWithoutChecks[branch]:
			writeJSON(w, r, http.StatusNotFound, map[string]string{"message": "Required status checks not enabled", "documentation_url": docs})
			return
		case req == nil:
			writeJSON(w, r, http.StatusNotFound, map[string]string{"message": "Branch not protected", "documentation_url": docs})
			return
		}
		writeJSON(w, r, http.StatusOK, req)
	case r.Method == http.MethodGet && len(rest) == 2 && rest[0] == "pulls":
		n, _ := strconv.Atoi(rest[1])
		pr := repo.Pulls[n]
		if pr == nil {
			notFound(w, r)
			return
		}
		writeJSON(w, r, http.StatusOK, pr)
	case r.Method == http.MethodPost && len(rest) == 4 && rest[0] == "actions" && rest[1] == "runs":
		id, _ := strconv.ParseInt(rest[2], 10, 64)
		found := false
		for _, run := range repo.Runs {
			found = found || run.GetID() == id
		}
		if !found {
			notFound(w, r)
			return
		}
		switch rest[3] {
		case "rerun", "rerun-failed-jobs":
			s.actions = append(s.actions, fmt.Sprintf("%s %d", rest[3], id))
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("{}"))
		case "cancel":
			s.actions = append(s.actions, fmt.Sprintf("cancel %d", id))
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("{}"))
		default:
			notFound(w, r)
		}
	default:
		notFound(w, r)
	}
}

// resolve turns a branch or SHA into a SHA; "" when unknown.
func (r *Repo) resolve(ref string) string {
	if sha, ok := r.Branches[ref]; ok {
		return sha
	}
	if len(ref) == 40 {
		return ref
	}
	for _, pr := range r.Pulls {
		if pr.GetHead().GetRef() == ref {
			return pr.GetHead().GetSHA()
		}
	}
	return ""
}

func (s *Server) rawLog(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 4 {
		http.NotFound(w, r)
		return
	}
	id, _ := strconv.ParseInt(parts[3], 10, 64)
	s.mu.Lock()
	repo := s.repos[strings.ToLower(parts[1]+"/"+parts[2])]
	var log string
	ok := false
	if repo != nil {
		log, ok = repo.Logs[id]
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(log))
}

// writeJSON answers v with an ETag of its bytes, or a 304 when the request
// already has them. Called with s.mu held.
func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if code == http.StatusOK {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			if s, ok := r.Context().Value(serverKey{}).(*Server); ok {
				s.notModified++
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

type serverKey struct{}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusNotFound, map[string]string{"message": "Not Found"})
}
