package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

// fakeGitHub is a local stand-in for GitHub's REST API, speaking its JSON
// through go-github's own types: it records deployments and statuses and can
// be told to answer a deployment request with 202, 409, 404 or 422.
type fakeGitHub struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	answer   int // status for the next create; 0 = 201
	body     string
	created  []github.DeploymentRequest
	statuses map[int64][]github.DeploymentStatusRequest
	nextID   int64
	shas     map[string]string // ref → sha
	// repoAnswer is the status of GET /repos/{owner}/{repo}; 0 = 200 with
	// DefaultBranch "master". repoGets counts those requests.
	repoAnswer int
	repoGets   int
	// onCreate, when set, runs as a deployment request arrives.
	onCreate func(r *http.Request)
	// appKey, appID and installationID are the GitHub App the fake issues
	// installation tokens to (installApp); installTokens are those
	// issued, and auths the Authorization of every other call.
	appKey                *rsa.PublicKey
	appID, installationID int64
	installTokens         []string
	auths                 []string
}

func newFakeGitHub(t *testing.T, shas map[string]string) *fakeGitHub {
	g := &fakeGitHub{t: t, statuses: map[int64][]github.DeploymentStatusRequest{}, nextID: 1000, shas: shas}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}", g.getRepository)
	mux.HandleFunc("POST /repos/{owner}/{repo}/deployments", g.createDeployment)
	mux.HandleFunc("POST /repos/{owner}/{repo}/deployments/{id}/statuses", g.createStatus)
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", g.accessToken)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGitHub) auth(w http.ResponseWriter, r *http.Request) bool {
	got := r.Header.Get("Authorization")
	g.mu.Lock()
	g.auths = append(g.auths, r.Method+" "+r.URL.Path+" "+got)
	ok := got == "Bearer test-token"
	for _, tok := range g.installTokens {
		ok = ok || got == "token "+tok
	}
	g.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return false
	}
	return true
}

// installApp registers a GitHub App, appID, installed as installationID,
// and returns its new private key in PEM; the fake keeps the public key.
func (g *fakeGitHub) installApp(appID, installationID int64) []byte {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		g.t.Fatal(err)
	}
	g.mu.Lock()
	g.appKey, g.appID, g.installationID = &key.PublicKey, appID, installationID
	g.mu.Unlock()
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// accessToken issues an installation token for a JWT the app signed (RS256
// under its key, iss its id), as GitHub does: POST
// /app/installations/{id}/access_tokens.
func (g *fakeGitHub) accessToken(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	refuse := func(status int, msg string) {
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message":%q,"documentation_url":"https://docs.github.com/rest"}`, msg)
	}
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), claims, func(*jwt.Token) (any, error) {
		if g.appKey == nil || claims.Issuer != strconv.FormatInt(g.appID, 10) {
			return nil, errors.New("no such app")
		}
		return g.appKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}))
	switch {
	case err != nil && (g.appKey == nil || claims.Issuer != strconv.FormatInt(g.appID, 10)):
		refuse(http.StatusUnauthorized, "Integration not found")
		return
	case err != nil:
		refuse(http.StatusUnauthorized, "A JSON web token could not be decoded")
		return
	case r.PathValue("id") != strconv.FormatInt(g.installationID, 10):
		refuse(http.StatusNotFound, "Not Found")
		return
	}
	tok := fmt.Sprintf("ghs_installation%d", len(g.installTokens)+1)
	g.installTokens = append(g.installTokens, tok)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(github.InstallationToken{Token: github.String(tok), ExpiresAt: &github.Timestamp{Time: time.Now().Add(time.Hour)}})
}

func (g *fakeGitHub) getRepository(w http.ResponseWriter, r *http.Request) {
	if !g.auth(w, r) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.repoGets++
	w.Header().Set("Content-Type", "application/json")
	if g.repoAnswer != 0 {
		w.WriteHeader(g.repoAnswer)
		fmt.Fprint(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/repos/repos#get-a-repository"}`)
		return
	}
	owner, name := r.PathValue("owner"), r.PathValue("repo")
	_ = json.NewEncoder(w).Encode(github.Repository{
		ID: github.Int64(1296269), Name: github.String(name), FullName: github.String(owner + "/" + name),
		Owner: &github.User{Login: github.String(owner)}, DefaultBranch: github.String("master"),
	})
}

func (g *fakeGitHub) createDeployment(w http.ResponseWriter, r *http.Request) {
	if !g.auth(w, r) {
		return
	}
	g.mu.Lock()
	onCreate := g.onCreate
	g.mu.Unlock()
	if onCreate != nil {
		onCreate(r)
	}
	var req github.DeploymentRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.created = append(g.created, req)
	w.Header().Set("Content-Type", "application/json")
	if g.answer != 0 {
		w.WriteHeader(g.answer)
		fmt.Fprint(w, g.body)
		g.answer, g.body = 0, ""
		return
	}
	sha, ok := g.shas[req.GetRef()]
	if !ok {
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprintf(w, `{"message":"No ref found for: %s","documentation_url":"https://docs.github.com/rest/deployments/deployments#create-a-deployment"}`, req.GetRef())
		return
	}
	g.nextID++
	payload, _ := json.Marshal(req.Payload)
	dep := github.Deployment{
		ID: github.Int64(g.nextID), SHA: github.String(sha), Ref: github.String(req.GetRef()),
		Task: github.String(req.GetTask()), Environment: github.String(req.GetEnvironment()),
		Description: req.Description, Payload: payload,
		Creator: &github.User{Login: github.String("chima-bot")},
	}
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(dep)
}

func (g *fakeGitHub) createStatus(w http.ResponseWriter, r *http.Request) {
	if !g.auth(w, r) {
		return
	}
	var req github.DeploymentStatusRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var id int64
	fmt.Sscan(r.PathValue("id"), &id)
	g.mu.Lock()
	g.statuses[id] = append(g.statuses[id], req)
	g.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(github.DeploymentStatus{ID: github.Int64(1), State: req.State})
}

func (g *fakeGitHub) states(id int64) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var s []string
	for _, st := range g.statuses[id] {
		s = append(s, st.GetState())
	}
	return strings.Join(s, ",")
}

// deploymentEvent builds GitHub's deployment webhook payload from the real
// example, pointed at the deployment the fake created.
func (g *fakeGitHub) deploymentEvent(t *testing.T, index int) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../core/webhook/testdata/github/deployment.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev github.DeploymentEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	req := g.created[index]
	g.mu.Unlock()
	payload, _ := json.Marshal(req.Payload)
	ev.Deployment.ID = github.Int64(1001 + int64(index))
	ev.Deployment.Ref = req.Ref
	ev.Deployment.SHA = github.String(g.shas[req.GetRef()])
	ev.Deployment.Environment = req.Environment
	ev.Deployment.Task = req.Task
	ev.Deployment.Payload = payload
	ev.Repo.FullName = github.String("oursky/demo")
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// externalDeploymentEvent is GitHub's deployment webhook payload for a
// deployment made outside chat (GitHub's UI, another tool): its payload
// names no bot.
func externalDeploymentEvent(t *testing.T, id int64, ref, sha, env string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../core/webhook/testdata/github/deployment.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev github.DeploymentEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev.Deployment.ID, ev.Deployment.Ref, ev.Deployment.SHA = github.Int64(id), github.String(ref), github.String(sha)
	ev.Deployment.Environment, ev.Deployment.Task = github.String(env), github.String("deploy")
	ev.Deployment.Payload = json.RawMessage(`{}`)
	ev.Repo.FullName = github.String("oursky/demo")
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

const githubApp = `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["staging", "production"],
	"default_environment": "staging", "required_contexts": ["ci/build"], "auto_merge": true,
	"environment_urls": {"staging": "https://staging.example.com"}}}`

func githubFixture(t *testing.T) (*fixture, *fakeGitHub, *sdktest.Harness) {
	return githubFixtureWith(t, githubApp)
}

// githubFixtureWith is githubFixture with another apps file.
func githubFixtureWith(t *testing.T, appJSON string) (*fixture, *fakeGitHub, *sdktest.Harness) {
	f, gh := githubFake(t, appJSON)
	return f, gh, f.harness(t, f.githubSettings(gh)...)
}

// githubFake makes the fixture and fake GitHub of a GitHub-mode test.
func githubFake(t *testing.T, appJSON string) (*fixture, *fakeGitHub) {
	f := newFixture(t, appJSON)
	gh := newFakeGitHub(t, map[string]string{"main": f.main, "feature-1": f.feature, "master": f.main})
	t.Setenv("GITHUB_TOKEN", "test-token") // the harness runs the plugin in-process
	return f, gh
}

func (f *fixture) githubSettings(gh *fakeGitHub) []string {
	return []string{"github_api_url", gh.srv.URL + "/", "github_clone_url", f.repo}
}

func TestGitHubModeCreatesTheDeploymentThenRunsItOnTheWebhook(t *testing.T) {
	f, gh, h := githubFixture(t)
	res := h.Command("deploy", deployArgs("demo", "main", "staging"))
	if !strings.Contains(res.Text(), "created GitHub deployment 1001 of demo/main to staging") {
		t.Fatalf("reply = %q %v", res.Text(), res.Errors)
	}
	req := gh.created[0]
	var p payload
	raw, _ := json.Marshal(req.Payload)
	_ = json.Unmarshal(raw, &p)
	if req.GetRef() != "main" || req.GetEnvironment() != "staging" || !req.GetAutoMerge() ||
		req.RequiredContexts == nil || (*req.RequiredContexts)[0] != "ci/build" ||
		p.Chima.Instance != "chima" || p.Chima.Notify.Room != "test" || p.Config == nil {
		t.Fatalf("deployment request = %+v payload %+v", req, p)
	}
	if n := len(h.Host.Enqueued()); n != 0 {
		t.Fatalf("%d jobs queued before GitHub's webhook", n)
	}
	ev := h.Event("github:deployment", gh.deploymentEvent(t, 0))
	if ev.Done.Outcome == "error" {
		t.Fatalf("webhook: %v", ev.Done)
	}
	runs := h.RunEnqueued()
	if len(runs) != 1 || runs[0].Done.Outcome != "success" {
		t.Fatalf("job = %+v", runs)
	}
	if !strings.Contains(f.mark(t, 1), "DEPLOY_SHA="+f.main) {
		t.Fatal("the job did not deploy GitHub's commit")
	}
	if got := gh.states(1001); got != "in_progress,success" {
		t.Fatalf("statuses = %s", got)
	}
	st := gh.statuses[1001][1]
	if !strings.HasPrefix(st.GetLogURL(), "http://chima.test/deployments/1/log?token=") || st.GetEnvironmentURL() != "https://staging.example.com" {
		t.Fatalf("status urls = %q %q", st.GetLogURL(), st.GetEnvironmentURL())
	}
	// The link GitHub shows opens the log.
	page := h.HTTP(strings.TrimPrefix(st.GetLogURL(), "http://chima.test"))
	if page.Status != 200 || !strings.Contains(string(page.Body), "deploying main ("+f.main+")") {
		t.Fatalf("log page from the status = %d %q", page.Status, page.Body)
	}
	// A redelivered webhook does not deploy twice.
	h.Event("github:deployment", gh.deploymentEvent(t, 0))
	if n := len(h.RunEnqueued()); n != 0 {
		t.Fatalf("redelivery queued %d more jobs", n)
	}
}

func TestGitHubModeForceSkipsAutoMergeAndStatusChecks(t *testing.T) {
	_, gh, h := githubFixture(t)
	args := deployArgs("demo", "main", "staging")
	args["force"] = "true"
	h.Command("deploy", args)
	req := gh.created[0]
	if req.GetAutoMerge() || req.RequiredContexts == nil || len(*req.RequiredContexts) != 0 {
		t.Fatalf("forced request = auto_merge %v contexts %v", req.GetAutoMerge(), req.RequiredContexts)
	}
}

func TestGitHubAnswersBecomeClearChatMessages(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		ref    string
		want   string
	}{
		{"auto-merged", 202, `{"message":"Auto-merged master into topic-branch on deployment."}`, "main", "Run the deploy again"},
		{"merge conflict", 409, `{"message":"Conflict merging master into topic-branch."}`, "main", "merge conflict"},
		{"failed contexts", 409, `{"message":"Conflict: Commit status checks failed for topic-branch.","errors":[{"contexts":[{"context":"ci/build","state":"failure"},{"context":"ci/lint","state":"success"},{"context":"security","state":"pending"}],"resource":"Deployment","field":"required_contexts","code":"invalid"}]}`, "main", "ci/build: failure"},
		{"not found", 404, `{"message":"Not Found"}`, "main", "repo_deployment scope"},
		{"unknown ref", 0, "", "nope", `doesn't know the ref "nope"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, gh, h := githubFixture(t)
			gh.answer, gh.body = c.status, c.body
			res := h.Command("deploy", deployArgs("demo", c.ref, "staging"))
			msg := userError(res)
			if !strings.Contains(msg, c.want) {
				t.Fatalf("message = %q, want %q", msg, c.want)
			}
			if c.name == "failed contexts" && (strings.Contains(msg, "ci/lint") || !strings.Contains(msg, "security: pending")) {
				t.Fatalf("contexts listed wrongly: %q", msg)
			}
			if n := len(h.Host.Enqueued()); n != 0 {
				t.Fatalf("a refused deployment queued %d jobs", n)
			}
		})
	}
}

func TestGitHubDeploymentsForAnotherBotAreIgnored(t *testing.T) {
	_, gh, h := githubFixture(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	raw := reinstance(t, gh.deploymentEvent(t, 0), "other-bot")
	h.Event("github:deployment", raw)
	if n := len(h.Host.Enqueued()); n != 0 {
		t.Fatalf("another bot's deployment queued %d jobs", n)
	}
}

// reinstance rewrites the payload's chima.instance.
func reinstance(t *testing.T, raw []byte, instance string) []byte {
	t.Helper()
	var ev github.DeploymentEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	var p map[string]map[string]any
	_ = json.Unmarshal(ev.Deployment.Payload, &p)
	p["chima"]["instance"] = instance
	ev.Deployment.Payload, _ = json.Marshal(p)
	out, _ := json.Marshal(ev)
	return out
}

func TestGitHubModeDeploysTheCommitGitHubApprovedNotTheBranchTip(t *testing.T) {
	tests := []struct {
		name string
		// deploy makes the GitHub deployment of main (at f.main) and
		// returns its webhook, to deliver after main moved on.
		deploy func(t *testing.T, f *fixture, gh *fakeGitHub, h *sdktest.Harness) []byte
	}{
		{"created from chat", func(t *testing.T, f *fixture, gh *fakeGitHub, h *sdktest.Harness) []byte {
			if res := h.Command("deploy", deployArgs("demo", "main", "staging")); len(res.Errors) != 0 {
				t.Fatalf("deploy: %v", res.Errors)
			}
			return gh.deploymentEvent(t, 0)
		}},
		{"made outside chat", func(t *testing.T, f *fixture, gh *fakeGitHub, h *sdktest.Harness) []byte {
			return externalDeploymentEvent(t, 555, "main", f.main, "staging")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, gh, h := githubFixture(t)
			ev := tt.deploy(t, f, gh, h)
			// main moves on between GitHub's approval and the job.
			write(t, filepath.Join(f.repo, "README"), "v3\n", 0o644)
			git(t, f.repo, "commit", "-q", "-am", "v3")
			tip := git(t, f.repo, "rev-parse", "HEAD")
			if res := h.Event("github:deployment", ev); res.Done.Outcome == "error" {
				t.Fatalf("webhook: %v", res.Done)
			}
			if runs := h.RunEnqueued(); len(runs) != 1 || runs[0].Done.Outcome != "success" {
				t.Fatalf("job = %+v", runs)
			}
			mark := f.mark(t, 1)
			if !strings.Contains(mark, "DEPLOY_SHA="+f.main) || !strings.Contains(mark, "DEPLOY_REF=main") {
				t.Fatalf("the script was not given GitHub's commit %s of main (the tip is %s):\n%s", f.main, tip, mark)
			}
			text := h.Command("deploys", sdktest.Args{"app": "demo"}).Replies[0].Text
			if !strings.Contains(text, "#1 deploy main@"+f.main[:7]+" to staging") || !strings.Contains(text, "success") {
				t.Fatalf("deploys = %q, want main@%s deployed", text, f.main[:7])
			}
		})
	}
}

func TestEnvironmentsChimaMustNotDeployToAreRefusedOnEveryPath(t *testing.T) {
	const app = `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["staging", "production"],
		"default_environment": "staging", "protected_environments": ["production"], "approvers": ["release-managers"]}}`
	tests := []struct {
		name string
		// chat: the deploy is asked in chat (and must ask for approval);
		// otherwise a GitHub deployment made outside chat to env is
		// delivered and its job must refuse.
		chat bool
		env  string
		want string
	}{
		{"deploy in chat to a protected environment asks for approval first", true, "production", ""},
		{"GitHub deployment made outside chat to a protected environment", false, "production",
			"production is a protected environment of demo: deploys to it need an approval in chat"},
		{"GitHub deployment made outside chat to an environment the app doesn't have", false, "edge", `demo has no environment "edge"; its environments: staging, production`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, gh, h := githubFixtureWith(t, app)
			if tt.chat {
				res := h.Command("deploy", deployArgs("demo", "main", tt.env))
				need := res.ApprovalNeeded
				if need == nil || !slices.Equal(need.Options.Approvers, []string{"release-managers"}) || need.Options.Reason != "production is a protected environment of demo" {
					t.Fatalf("deploy to a protected environment = %+v (errors %v); want it to ask release-managers for approval", need, res.Errors)
				}
			} else {
				h.Event("github:deployment", externalDeploymentEvent(t, 777, "main", f.main, tt.env))
				if runs := h.RunEnqueued(); len(runs) != 1 || runs[0].Done.Outcome == "success" {
					t.Fatalf("job = %+v, want it to fail", runs)
				}
				if _, err := os.Stat(filepath.Join(f.marks, "1")); err == nil {
					t.Fatal("the script ran")
				}
				if got := gh.states(777); got != "error" {
					t.Fatalf("GitHub statuses = %q, want error", got)
				}
				text := h.Command("deploys", sdktest.Args{"app": "demo"}).Replies[0].Text
				if !strings.Contains(text, ": error (") || !strings.Contains(text, tt.want) {
					t.Fatalf("deploys = %q, want an error saying %q", text, tt.want)
				}
			}
			if n := len(gh.created); n != 0 {
				t.Fatalf("%d GitHub deployments created", n)
			}
		})
	}
}

// newDeployment is a deployment of demo as cmdDeploy makes it.
func newDeployment(ref, env string) *Deployment {
	return &Deployment{App: "demo", Env: env, Ref: ref, Task: "deploy", User: "tester", State: StateQueued,
		Notify: Target{Adapter: "test", Room: "test"}, CreatedAt: time.Now()}
}

func TestDeploymentsThatCannotStartAreRecordedAsErrors(t *testing.T) {
	tests := []struct {
		name   string
		github bool
		start  func(t *testing.T, d *deployer, gh *fakeGitHub, c *sdk.Context) error
		want   string
	}{
		{"queueing fails: the command's context ended after the deployment was recorded", false,
			func(t *testing.T, d *deployer, gh *fakeGitHub, c *sdk.Context) error {
				dep := newDeployment("main", "staging")
				if err := d.records.create(c, dep); err != nil {
					t.Error(err)
				}
				cc, cancel := cancelled(c)
				cancel()
				_, err := d.queue(cc, dep)
				return err
			}, "context canceled"},
		{"the GitHub call fails: the command's context ended while it waited", true,
			func(t *testing.T, d *deployer, gh *fakeGitHub, c *sdk.Context) error {
				cc, cancel := cancelled(c)
				defer cancel()
				gh.mu.Lock()
				gh.onCreate = func(r *http.Request) {
					cancel()
					// Answer only once the client gave up (the server
					// notices a closed connection once the body is read).
					_, _ = io.Copy(io.Discard, r.Body)
					select {
					case <-r.Context().Done():
					case <-time.After(10 * time.Second):
					}
				}
				gh.mu.Unlock()
				a, _ := d.app("demo")
				return d.start(cc, a, newDeployment("main", "staging"))
			}, "Could not reach GitHub to deploy oursky/demo"},
		{"GitHub refuses it", true,
			func(t *testing.T, d *deployer, gh *fakeGitHub, c *sdk.Context) error {
				gh.mu.Lock()
				gh.answer, gh.body = http.StatusNotFound, `{"message":"Not Found"}`
				gh.mu.Unlock()
				a, _ := d.app("demo")
				return d.start(c, a, newDeployment("main", "staging"))
			}, "GitHub answered 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f *fixture
			var gh *fakeGitHub
			var p *probe
			if tt.github {
				f, gh = githubFake(t, githubApp)
				p = f.probe(t, &deployer{}, f.githubSettings(gh)...)
			} else {
				f = newFixture(t, "")
				p = f.probe(t, &deployer{})
			}
			var err error
			p.run(t, func(c *sdk.Context) { err = tt.start(t, p.d, gh, c) })
			if err == nil {
				t.Fatal("the deployment started")
			}
			text := p.Command("deploys", sdktest.Args{"app": "demo"}).Replies[0].Text
			if !strings.Contains(text, "#1 deploy main to staging by tester") || !strings.Contains(text, ": error (") || !strings.Contains(text, tt.want) {
				t.Fatalf("deploys = %q, want #1 recorded as an error saying %q (the start failed with %v)", text, tt.want, err)
			}
			if n := len(p.Host.Enqueued()); n != 0 {
				t.Fatalf("%d jobs queued", n)
			}
		})
	}
}

func TestGitHubModeWithoutARefDeploysTheRepositorysDefaultBranch(t *testing.T) {
	tests := []struct {
		name       string
		apps       string
		repoAnswer int
		want       string // the ref of the GitHub deployment, or
		refusal    string // the refusal
		asked      int    // GET /repos/oursky/demo requests
	}{
		{"GitHub's default branch, not main", githubApp, 0, "master", "", 1},
		{"default_ref: GitHub is not asked", strings.Replace(githubApp, `"auto_merge": true`, `"auto_merge": true, "default_ref": "feature-1"`, 1), 0, "feature-1", "", 0},
		{"GitHub can't say: refused, not main", githubApp, http.StatusNotFound, "", "Could not ask GitHub for the default branch of oursky/demo: GitHub answered 404", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, gh, h := githubFixtureWith(t, tt.apps)
			gh.mu.Lock()
			gh.repoAnswer = tt.repoAnswer
			gh.mu.Unlock()
			res := h.Command("deploy", deployArgs("demo", "", "staging"))
			gh.mu.Lock()
			created, asked := gh.created, gh.repoGets
			gh.mu.Unlock()
			if asked != tt.asked {
				t.Errorf("GitHub was asked for the repository %d times, want %d", asked, tt.asked)
			}
			if tt.refusal != "" {
				if msg := userError(res); !strings.Contains(msg, tt.refusal) || len(created) != 0 {
					t.Fatalf("refusal = %q with %d deployments created, want %q and none", msg, len(created), tt.refusal)
				}
				return
			}
			if len(created) != 1 || created[0].GetRef() != tt.want {
				t.Fatalf("GitHub deployments = %+v, want one of %s", created, tt.want)
			}
			if want := "created GitHub deployment 1001 of demo/" + tt.want + " to staging"; !strings.Contains(res.Text(), want) {
				t.Fatalf("reply = %q %v, want %q", res.Text(), res.Errors, want)
			}
		})
	}
}

func TestGitHubDeploymentEventNamingAnotherDeploymentIsIgnored(t *testing.T) {
	// A payload copied from one of Chima's deployments into another GitHub
	// deployment must not redirect the first: not its commit (what runs),
	// nor its statuses.
	f, gh, h := githubFixture(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	h.Event("github:deployment", gh.deploymentEvent(t, 0))
	var ev github.DeploymentEvent
	if err := json.Unmarshal(gh.deploymentEvent(t, 0), &ev); err != nil {
		t.Fatal(err)
	}
	ev.Deployment.ID, ev.Deployment.SHA = github.Int64(2002), github.String(f.feature)
	raw, _ := json.Marshal(ev)
	h.Event("github:deployment", raw)
	if n := len(h.Host.Enqueued()); n != 1 {
		t.Fatalf("%d jobs queued, want the first deployment's only", n)
	}
	h.RunEnqueued()
	if mark := f.mark(t, 1); !strings.Contains(mark, "DEPLOY_SHA="+f.main) {
		t.Fatalf("deployment #1 ran another commit:\n%s", mark)
	}
	if got, other := gh.states(1001), gh.states(2002); got != "in_progress,success" || other != "" {
		t.Fatalf("statuses: %q on GitHub deployment 1001, %q on 2002; want them all on 1001", got, other)
	}
}

func TestGitHubDeploymentMadeOutsideChatIsAnnouncedInItsRoomOnTheDefaultAdapter(t *testing.T) {
	app := `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["staging"], "allowed_rooms": ["deployment"]}}`
	f, gh := githubFake(t, app)
	h := f.harness(t, append(f.githubSettings(gh), "chima_adapters", "shell", "chima_default_adapter", "shell")...)
	if res := h.Event("github:deployment", externalDeploymentEvent(t, 556, "main", f.main, "staging")); res.Done.Outcome != "" {
		t.Fatalf("webhook: %v", res.Done)
	}
	if q := h.Host.Enqueued(); len(q) != 1 || q[0].Notify.Adapter != "shell" || q[0].Notify.Room != "deployment" {
		t.Fatalf("enqueued = %+v, want its notify room shell:deployment", q)
	}
	if runs := h.RunEnqueued(); len(runs) != 1 || runs[0].Done.Outcome != "success" {
		t.Fatalf("job = %+v", runs)
	}
	var heard []string
	for _, p := range h.Host.Posts() {
		if p.Target.Adapter == "shell" && p.Target.Room == "deployment" {
			heard = append(heard, p.Output.Text)
		}
	}
	if len(heard) == 0 || !strings.Contains(strings.Join(heard, "\n"), "Deployed demo/main") {
		t.Fatalf("shell:deployment heard %q", heard)
	}
}

func TestNotifyRoomsThatNoAdapterCanReachStopThePluginFromStarting(t *testing.T) {
	app := `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["staging"], "notify_rooms": ["deployment"]}}`
	f := newFixture(t, app)
	err := configured(&deployer{}, f.settings("chima_adapters", "mattermost,slack", "chima_default_adapter", ""))
	if err == nil || !strings.Contains(err.Error(), `apps.json: demo.notify_rooms[0]: "deployment" names no chat adapter`) {
		t.Fatalf("configure = %v", err)
	}
}

// appFixture is githubFixture signed in as a GitHub App's installation
// instead of a token; key turns the fake's key into the one the plugin is
// given (nil: that one).
func appFixture(t *testing.T, key func(real []byte) []byte) (*fixture, *fakeGitHub, *sdktest.Harness) {
	f, gh := githubFake(t, githubApp)
	pemKey := gh.installApp(4242, 77)
	if key != nil {
		pemKey = key(pemKey)
	}
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("GITHUB_APP_PRIVATE_KEY", string(pemKey))
	return f, gh, f.harness(t, append(f.githubSettings(gh), "github_app_id", "4242", "github_installation_id", "77")...)
}

func TestGitHubAppModeDeploysWithTheInstallationsToken(t *testing.T) {
	f, gh, h := appFixture(t, nil)
	res := h.Command("deploy", deployArgs("demo", "main", "staging"))
	if !strings.Contains(res.Text(), "created GitHub deployment 1001 of demo/main to staging") {
		t.Fatalf("reply = %q %v", res.Text(), res.Errors)
	}
	h.Event("github:deployment", gh.deploymentEvent(t, 0))
	if runs := h.RunEnqueued(); len(runs) != 1 || runs[0].Done.Outcome != "success" {
		t.Fatalf("job = %+v", runs)
	}
	if !strings.Contains(f.mark(t, 1), "DEPLOY_SHA="+f.main) {
		t.Fatal("the job did not deploy GitHub's commit")
	}
	if got := gh.states(1001); got != "in_progress,success" {
		t.Fatalf("statuses = %s", got)
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	if len(gh.installTokens) != 1 {
		t.Errorf("%d installation tokens issued; one is kept for the whole deploy", len(gh.installTokens))
	}
	want := []string{
		"POST /repos/oursky/demo/deployments token ghs_installation1",
		"POST /repos/oursky/demo/deployments/1001/statuses token ghs_installation1",
		"POST /repos/oursky/demo/deployments/1001/statuses token ghs_installation1",
	}
	if !slices.Equal(gh.auths, want) {
		t.Errorf("calls and their Authorization:\n%s\nwant\n%s", strings.Join(gh.auths, "\n"), strings.Join(want, "\n"))
	}
}

func TestAWrongGitHubAppIsAClearChatErrorAndDeploysNothing(t *testing.T) {
	other := func([]byte) []byte {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	}
	_, gh, h := appFixture(t, other)
	res := h.Command("deploy", deployArgs("demo", "main", "staging"))
	msg := userError(res)
	want := "GitHub gave the GitHub App no installation token for the deployment of oursky/demo (401 A JSON web token could not be decoded): check github_app_id and that the secret GITHUB_APP_PRIVATE_KEY is a private key of that app."
	if msg != want {
		t.Fatalf("message = %q, want %q", msg, want)
	}
	if strings.Contains(res.Text()+msg, "PRIVATE KEY-----") {
		t.Errorf("the key is quoted: %q", msg)
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	if len(gh.created) != 0 || len(gh.auths) != 0 || len(h.Host.Enqueued()) != 0 {
		t.Errorf("deployed anyway: %d deployments, calls %q, %d jobs", len(gh.created), gh.auths, len(h.Host.Enqueued()))
	}
}

func TestATokenAndAGitHubAppAtOnceIsASettingsProblem(t *testing.T) {
	f, gh := githubFake(t, githubApp)
	t.Setenv("GITHUB_APP_PRIVATE_KEY", string(gh.installApp(4242, 77)))
	resp, err := sdk.NewServer(newPlugin(&deployer{}).spec(), nil, nil).Validate(context.Background(), &pluginv1.ValidateRequest{
		Settings: f.settings(append(f.githubSettings(gh), "github_app_id", "4242", "github_installation_id", "77")...)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range resp.GetProblems() {
		got = append(got, p.GetKey()+": "+p.GetMessage())
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "github_app_id: a GitHub App and the secret GITHUB_TOKEN are both configured") {
		t.Fatalf("problems = %q", got)
	}
}
