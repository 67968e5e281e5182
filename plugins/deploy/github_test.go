package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v57/github"

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
}

func newFakeGitHub(t *testing.T, shas map[string]string) *fakeGitHub {
	g := &fakeGitHub{t: t, statuses: map[int64][]github.DeploymentStatusRequest{}, nextID: 1000, shas: shas}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /repos/{owner}/{repo}/deployments", g.createDeployment)
	mux.HandleFunc("POST /repos/{owner}/{repo}/deployments/{id}/statuses", g.createStatus)
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGitHub) auth(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer test-token" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return false
	}
	return true
}

func (g *fakeGitHub) createDeployment(w http.ResponseWriter, r *http.Request) {
	if !g.auth(w, r) {
		return
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

func githubFixture(t *testing.T) (*fixture, *fakeGitHub, *sdktest.Harness) {
	f := newFixture(t, `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["staging", "production"],
		"default_environment": "staging", "required_contexts": ["ci/build"], "auto_merge": true,
		"environment_urls": {"staging": "https://staging.example.com"}}}`)
	gh := newFakeGitHub(t, map[string]string{"main": f.main, "feature-1": f.feature})
	t.Setenv("GITHUB_TOKEN", "test-token") // the harness runs the plugin in-process
	h := f.harness(t, "github_api_url", gh.srv.URL+"/", "github_clone_url", f.repo)
	return f, gh, h
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
	if ev.Done.GetOutcome() == "error" {
		t.Fatalf("webhook: %v", ev.Done)
	}
	runs := h.RunEnqueued()
	if len(runs) != 1 || runs[0].Done.GetOutcome() != "success" {
		t.Fatalf("job = %+v", runs)
	}
	if !strings.Contains(f.mark(t, 1), "DEPLOY_SHA="+f.main) {
		t.Fatal("the job did not deploy GitHub's commit")
	}
	if got := gh.states(1001); got != "in_progress,success" {
		t.Fatalf("statuses = %s", got)
	}
	st := gh.statuses[1001][1]
	if st.GetLogURL() != "http://chima.test/deployments/1/log" || st.GetEnvironmentURL() != "https://staging.example.com" {
		t.Fatalf("status urls = %q %q", st.GetLogURL(), st.GetEnvironmentURL())
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
