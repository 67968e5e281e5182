package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/plugins/cistatus/ghfake"
)

// gitRepo makes a real repository with a deploy script that records its
// environment into marks/<deployment id>.
func gitRepo(t *testing.T) (repo, marks, sha string) {
	t.Helper()
	dir := t.TempDir()
	repo, marks = filepath.Join(dir, "repo"), filepath.Join(dir, "marks")
	for _, d := range []string{filepath.Join(repo, "script"), marks} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf("#!/bin/sh\necho \"deploying $DEPLOY_SHA to $DEPLOY_ENV\"\nenv | grep ^DEPLOY | sort > %s/$DEPLOYMENT_ID\nif [ -f slow ]; then sleep 600; fi\n", marks)
	if err := os.WriteFile(filepath.Join(repo, "script/deploy"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := gitIn(t, repo, dir)
	run("init", "-q")
	run("add", ".")
	run("commit", "-q", "-m", "v1")
	sha = run("rev-parse", "HEAD")
	// Branch v2 has another commit (for rollback); branch slow deploys for
	// ten minutes (for cancel).
	run("checkout", "-q", "-b", "v2")
	run("commit", "-q", "--allow-empty", "-m", "v2")
	run("checkout", "-q", "-b", "slow")
	if err := os.WriteFile(filepath.Join(repo, "slow"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "slow")
	run("commit", "-q", "-m", "slow")
	run("checkout", "-q", "main")
	return repo, marks, sha
}

// gitIn returns a runner of real git in repo, with none of the developer's
// configuration (HOME is home): it returns trimmed output and fails t on error.
func gitIn(t testing.TB, repo, home string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = repo
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
}

// signedDelivery is GitHub's POST of a webhook delivery of body to url, signed
// with secret as GitHub signs it (X-Hub-Signature-256).
func signedDelivery(url, secret, event, id string, body []byte) (*http.Request, error) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return req, nil
}

// githubAPI is a local fake of GitHub's REST API that speaks go-github's
// types: it creates deployments, records statuses, and, like GitHub, then
// delivers a signed deployment webhook to the bot.
type githubAPI struct {
	t       *testing.T
	srv     *httptest.Server
	sha     string
	secret  string
	hookURL string

	// authorized says whether a request's Authorization header may create
	// deployments: the token gh-token unless a test says otherwise.
	authorized func(header string) bool
	// apps, when set, issues the installation tokens of GitHub Apps
	// (POST /app/installations/{id}/access_tokens is handed to it).
	apps *httptest.Server

	mu       sync.Mutex
	statuses []string
	logURL   string
	made     int64 // deployments created: their ids are 4242, 4243, …
}

func newGitHubAPI(t *testing.T, sha, secret string) *githubAPI {
	g := &githubAPI{t: t, sha: sha, secret: secret, authorized: func(h string) bool { return h == "Bearer gh-token" }}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", func(w http.ResponseWriter, r *http.Request) {
		if g.apps == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		target, _ := url.Parse(g.apps.URL)
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	})
	mux.HandleFunc("POST /repos/oursky/demo/deployments", func(w http.ResponseWriter, r *http.Request) {
		var req github.DeploymentRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !g.authorized(r.Header.Get("Authorization")) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		payload, _ := json.Marshal(req.Payload)
		g.mu.Lock()
		id := 4242 + g.made
		g.made++
		g.mu.Unlock()
		dep := &github.Deployment{ID: github.Int64(id), SHA: github.String(g.sha), Ref: req.Ref, Task: req.Task,
			Environment: req.Environment, Payload: payload, Creator: &github.User{Login: github.String("chima")}}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(dep)
		// GitHub then tells every hook of the repository.
		go g.deliver(dep)
	})
	mux.HandleFunc("GET /repos/oursky/demo", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(github.Repository{FullName: github.String("oursky/demo"), DefaultBranch: github.String("main")})
	})
	mux.HandleFunc("POST /repos/oursky/demo/deployments/{id}/statuses", func(w http.ResponseWriter, r *http.Request) {
		if !g.authorized(r.Header.Get("Authorization")) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var req github.DeploymentStatusRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		g.mu.Lock()
		g.statuses = append(g.statuses, req.GetState())
		if req.GetLogURL() != "" {
			g.logURL = req.GetLogURL()
		}
		g.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(github.DeploymentStatus{ID: github.Int64(1), State: req.State})
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

func (g *githubAPI) deliver(dep *github.Deployment) {
	raw, err := os.ReadFile("../../core/webhook/testdata/github/deployment.json")
	if err != nil {
		g.t.Error(err)
		return
	}
	var ev github.DeploymentEvent
	_ = json.Unmarshal(raw, &ev)
	ev.Deployment = dep
	ev.Repo.FullName = github.String("oursky/demo")
	body, _ := json.Marshal(ev)
	req, err := signedDelivery(g.hookURL, g.secret, "deployment", fmt.Sprintf("d3b07384-d9a0-4c9b-8f5e-%d", dep.GetID()), body)
	if err != nil {
		g.t.Error(err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Errorf("deliver webhook: %v", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		g.t.Errorf("webhook answered %d", resp.StatusCode)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestGitHubModeDeploysEndToEndThroughTheWebhook(t *testing.T) {
	repo, marks, sha := gitRepo(t)
	const secret = "hook secret"
	gh := newGitHubAPI(t, sha, secret)
	addr := freePort(t)
	gh.hookURL = "http://" + addr + "/webhooks/github"
	dir := t.TempDir()
	appsFile := filepath.Join(dir, "apps.json")
	if err := os.WriteFile(appsFile, []byte(`{"demo": {"provider": "shell", "repository": "oursky/demo",
		"environments": ["edge"], "environment_urls": {"edge": "https://edge.example.com"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`http:
  addr: %s
webhooks:
  github: {secret_env: CHIMA_TEST_HOOK_SECRET}
`, addr))
	b, _ := os.ReadFile(cfg)
	text := strings.Replace(string(b), "roles:", fmt.Sprintf(`  - name: deploy
    path: %s
    secrets: {GITHUB_TOKEN: CHIMA_TEST_GITHUB_TOKEN}
    settings:
      apps_file: %s
      workspace_dir: %s
      checkout_dir: %s
      github_api_url: %s/
      github_clone_url: %s
roles:`, filepath.Join(binDir, "plugins/deploy"), appsFile, filepath.Join(dir, "ws"), filepath.Join(dir, "checkouts"), gh.srv.URL, repo), 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHIMA_TEST_HOOK_SECRET", secret)
	t.Setenv("CHIMA_TEST_GITHUB_TOKEN", "gh-token")

	c := startConsole(t, cfg)
	c.say(t, "chima deploy demo to edge")
	c.expect(t, "created GitHub deployment 4242 of demo/main to edge")
	c.expect(t, "is deploying demo/main to edge (#1)")
	c.expect(t, "Deployed demo/main ("+sha[:7]+") to edge in")
	mark, err := os.ReadFile(filepath.Join(marks, "1"))
	if err != nil || !strings.Contains(string(mark), "DEPLOY_SHA="+sha) {
		t.Fatalf("script marks: %q %v", mark, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		gh.mu.Lock()
		states, logURL := strings.Join(gh.statuses, ","), gh.logURL
		gh.mu.Unlock()
		if states == "in_progress,success" {
			// The log link GitHub shows serves the deploy's output.
			resp, err := http.Get(logURL)
			if err != nil {
				t.Fatal(err)
			}
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(body.String(), "deploying "+sha+" to edge") {
				t.Fatalf("log page %s: %d %q", logURL, resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses = %s", states)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A forged webhook is refused and changes nothing.
	resp, err := http.Post(gh.hookURL, "application/json", strings.NewReader(`{"deployment":{"id":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged webhook answered %d", resp.StatusCode)
	}
}

func TestGitHubModeAsAGitHubAppSignsInAgainAfterIdleAndAKill9(t *testing.T) {
	repo, _, sha := gitRepo(t)
	const secret = "hook secret"
	gh := newGitHubAPI(t, sha, secret)
	// ghfake issues the installation tokens, checking the app's JWT
	// against its public key; the deployments accept only those tokens.
	apps := ghfake.New(t.Cleanup, "")
	key := apps.InstallApp(4242, 77)
	gh.apps = apps.Server
	gh.authorized = func(h string) bool { return strings.HasPrefix(h, "token ghs_") }
	addr := freePort(t)
	gh.hookURL = "http://" + addr + "/webhooks/github"
	dir := t.TempDir()
	appsFile := filepath.Join(dir, "apps.json")
	if err := os.WriteFile(appsFile, []byte(`{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["edge"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf("http:\n  addr: %s\nwebhooks:\n  github: {secret_env: CHIMA_TEST_HOOK_SECRET}\n", addr))
	b, _ := os.ReadFile(cfg)
	text := strings.Replace(string(b), "roles:", fmt.Sprintf(`  - name: deploy
    path: %s
    secrets: {GITHUB_APP_PRIVATE_KEY: CHIMA_TEST_APP_KEY}
    settings:
      apps_file: %s
      workspace_dir: %s
      checkout_dir: %s
      github_api_url: %s/
      github_clone_url: %s
      github_app_id: 4242
      github_installation_id: 77
roles:`, filepath.Join(binDir, "plugins/deploy"), appsFile, filepath.Join(dir, "ws"), filepath.Join(dir, "checkouts"), gh.srv.URL, repo), 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHIMA_TEST_HOOK_SECRET", secret)
	t.Setenv("CHIMA_TEST_APP_KEY", string(key))

	deploy := func(c *console, id int) {
		t.Helper()
		c.say(t, "chima deploy demo to edge")
		c.expect(t, fmt.Sprintf("created GitHub deployment %d of demo/main to edge", id))
		c.expect(t, "Deployed demo/main ("+sha[:7]+") to edge in")
	}
	c := startConsole(t, cfg)
	deploy(c, 4242)
	// Past go-plugin's 5 s broker timeout: the idle plugin still signs in
	// with the token it has.
	time.Sleep(6 * time.Second)
	deploy(c, 4243)
	if n := apps.TokenExchanges(); n != 1 {
		t.Errorf("%d installation tokens for two deploys; want one, kept", n)
	}
	// A kill -9 loses the token with the plugin's memory (it is never
	// stored): the restarted bot signs in again and deploys as before.
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c = startConsole(t, cfg)
	deploy(c, 4244)
	if n := apps.TokenExchanges(); n != 2 {
		t.Errorf("%d installation tokens after the restart; want a second one", n)
	}
}

func TestLocalModeDeployFlowOnTheConsole(t *testing.T) {
	repo, marks, sha := gitRepo(t)
	dir := t.TempDir()
	appsFile := filepath.Join(dir, "apps.json")
	if err := os.WriteFile(appsFile, []byte(fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q,
		"environments": ["staging", "production"], "default_environment": "staging"}}`, repo)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "")
	b, _ := os.ReadFile(cfg)
	text := strings.Replace(string(b), "roles:", fmt.Sprintf(`  - name: deploy
    path: %s
    settings: {apps_file: %s, workspace_dir: %s, checkout_dir: %s}
roles:
  deployer: {users: ["shell:bob"], permissions: ["deploy", "deploy:*"]}`, filepath.Join(binDir, "plugins/deploy"), appsFile, filepath.Join(dir, "ws"), filepath.Join(dir, "checkouts")), 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startConsole(t, cfg)

	c.say(t, "chima deploy demo/main to staging")
	c.expect(t, "Deployment #1: demo/main to staging queued")
	c.expect(t, "Deployed demo/main ("+sha[:7]+") to staging in")
	if _, err := os.Stat(filepath.Join(marks, "1")); err != nil {
		t.Fatal("the script did not run")
	}

	// A long deploy, a second one queued behind it, then cancel the first.
	c.say(t, "chima deploy demo/slow to staging")
	c.expect(t, "is deploying demo/slow to staging (#2)")
	c.say(t, "chima deploy demo/v2")
	c.expect(t, "Deployment #3: demo/v2 to staging queued, behind 1 other deployment")
	c.say(t, "chima deploys demo")
	c.expect(t, "#3 deploy v2 to staging by alice")
	c.say(t, "chima deploy:cancel 2")
	c.expect(t, "Deployment #2 of demo/slow")
	c.expect(t, "Deployed demo/v2")

	c.say(t, "chima rollback demo in staging")
	c.expect(t, "Rolling demo in staging back from v2@")
	c.expect(t, "Deployed demo/"+sha[:7]+" to staging in") // a rollback names its commit once, short

	c.say(t, "chima deploy:lock demo in production release freeze")
	c.expect(t, "Locked demo in production: release freeze")
	c.say(t, "/user bob")
	c.say(t, "chima where can I deploy demo")
	c.expect(t, "locked by alice since")
	c.say(t, "chima deploy:unlock demo in production")
	c.expect(t, "only they (or an admin) can unlock it")
	c.say(t, "/user alice")
	c.say(t, "chima deploy:unlock demo in production")
	c.expect(t, "Unlocked demo in production")
	c.say(t, "chima deploy demo to staging; rm -rf /")
	c.expect(t, "I didn't understand")
}

func TestDeployRunningWhenTheBotStopsIsRecordedAsInterrupted(t *testing.T) {
	repo, marks, _ := gitRepo(t)
	cfg, _, _ := deployConfig(t, "", fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"]}}`, repo), nil)
	c := startConsole(t, cfg)
	c.say(t, "chima deploy demo/slow")
	c.expect(t, "is deploying demo/slow to staging (#1)")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(marks, "1")); err == nil {
			break // the script runs (and sleeps)
		}
		if time.Now().After(deadline) {
			t.Fatal("the deploy script never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "interrupted: Chima stopped while it ran")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("chima run after SIGTERM: %v", err)
	}
	// The next bot knows how the deployment ended and can deploy again.
	c = startConsole(t, cfg)
	c.say(t, "chima deploys demo")
	c.expect(t, "#1 deploy slow@")
	c.say(t, "chima deploy:status 1")
	c.expect(t, "error")
	c.say(t, "chima deploy demo/main")
	c.expect(t, "Deployed demo/main")
}
