package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

// git runs git in dir with no user or system configuration.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// fixture is a real git repository whose script/deploy records what it was
// given in marks/, and an apps file for it.
type fixture struct {
	repo, marks, appsFile, workspace string
	main, feature                    string // commit SHAs
}

const deployScript = `#!/bin/sh
echo "deploying $DEPLOY_REF ($DEPLOY_SHA) to $DEPLOY_ENV as $DEPLOY_USER"
env | grep '^DEPLOY' | sort > "%s/$DEPLOYMENT_ID"
if [ -f fail ]; then echo "something broke" >&2; exit 3; fi
echo done
`

func newFixture(t testing.TB, appJSON string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{repo: filepath.Join(dir, "repo"), marks: filepath.Join(dir, "marks"), workspace: filepath.Join(dir, "ws")}
	for _, d := range []string{f.repo, f.marks} {
		if err := os.MkdirAll(filepath.Join(d, "script"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, f.repo, "init", "-q")
	write(t, filepath.Join(f.repo, "script/deploy"), fmt.Sprintf(deployScript, f.marks), 0o755)
	write(t, filepath.Join(f.repo, "README"), "v1\n", 0o644)
	git(t, f.repo, "add", ".")
	git(t, f.repo, "commit", "-q", "-m", "v1")
	f.main = git(t, f.repo, "rev-parse", "HEAD")
	git(t, f.repo, "checkout", "-q", "-b", "feature-1")
	write(t, filepath.Join(f.repo, "README"), "v2\n", 0o644)
	git(t, f.repo, "commit", "-q", "-am", "v2")
	f.feature = git(t, f.repo, "rev-parse", "HEAD")
	git(t, f.repo, "checkout", "-q", "-b", "broken")
	write(t, filepath.Join(f.repo, "fail"), "x\n", 0o644)
	git(t, f.repo, "add", "fail")
	git(t, f.repo, "commit", "-q", "-m", "broken")
	git(t, f.repo, "checkout", "-q", "main")
	if appJSON == "" {
		appJSON = `{"demo": {"provider": "shell", "repository": %q, "environments": ["staging", "production"],
			"default_environment": "staging", "allowed_rooms": ["test", "deployment"],
			"environment_urls": {"staging": "https://staging.example.com"}}}`
	}
	f.appsFile = filepath.Join(dir, "apps.json")
	if strings.Contains(appJSON, "%q") {
		appJSON = fmt.Sprintf(appJSON, f.repo)
	}
	write(t, f.appsFile, appJSON, 0o644)
	return f
}

func write(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) mark(t *testing.T, id int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.marks, fmt.Sprint(id)))
	if err != nil {
		t.Fatalf("deployment %d did not run the script: %v", id, err)
	}
	return string(b)
}

func (f *fixture) harness(t *testing.T, extra ...string) *sdktest.Harness {
	t.Helper()
	return sdktest.New(t, newPlugin(&deployer{}).spec(), f.settings(extra...))
}

// settings are the plugin's settings for the fixture, plus extra name/value
// pairs.
func (f *fixture) settings(extra ...string) map[string]string {
	settings := map[string]string{
		"apps_file": f.appsFile, "workspace_dir": f.workspace,
		// Not the default on /dev/shm: every test would leave its
		// installation's folder there.
		"checkout_dir":   filepath.Join(f.workspace, "..", "checkouts"),
		"chima_base_url": "http://chima.test", "chima_bot_name": "chima",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		settings[extra[i]] = extra[i+1]
	}
	return settings
}

// probe is a harness whose plugin, d, also has a test:probe command that
// runs a test's function with a real Context (the FakeHost behind it): for
// what chat can't reach, such as a context that ends half-way.
type probe struct {
	*sdktest.Harness
	d *deployer

	mu   sync.Mutex
	fn   func(c *sdk.Context)
	done chan struct{}
}

func (f *fixture) probe(t *testing.T, d *deployer, extra ...string) *probe {
	t.Helper()
	p := &probe{d: d, done: make(chan struct{}, 1)}
	spec := newPlugin(d).spec()
	spec.Commands = append(spec.Commands, sdk.Command{Name: "test:probe", Run: func(c *sdk.Context) error {
		p.mu.Lock()
		fn := p.fn
		p.mu.Unlock()
		fn(c)
		p.done <- struct{}{}
		return nil
	}})
	p.Harness = sdktest.New(t, spec, f.settings(extra...))
	return p
}

// run runs fn in the plugin, with the Context of a command, and returns
// when it has. fn runs on another goroutine: it reports with t.Error, not
// t.Fatal.
func (p *probe) run(t *testing.T, fn func(c *sdk.Context)) {
	t.Helper()
	p.mu.Lock()
	p.fn = fn
	p.mu.Unlock()
	if res := p.Command("test:probe", nil); res.Done.Outcome == "error" {
		t.Fatalf("probe: %v", res.Done)
	}
	<-p.done
}

// cancelled returns a copy of c whose context is cancelled when cancel is
// called, the way a job's is by deploy:cancel or a command's by its timeout.
func cancelled(c *sdk.Context) (cc *sdk.Context, cancel context.CancelFunc) {
	copied := *c
	ctx, cancel := context.WithCancel(c.Context)
	copied.Context = ctx
	return &copied, cancel
}

// logLink is the log page of deployment id as deploy:status links it: the
// path and query, to fetch with h.HTTP.
func logLink(t *testing.T, h *sdktest.Harness, id int) string {
	t.Helper()
	res := h.Command("deploy:status", sdktest.Args{"id": fmt.Sprint(id)})
	if len(res.Replies) != 1 {
		t.Fatalf("deploy:status %d = %v %v", id, res.Replies, res.Errors)
	}
	for _, f := range res.Replies[0].Fields {
		if f.Title == "Log" {
			path, ok := strings.CutPrefix(f.Value, "http://chima.test")
			if !ok {
				t.Fatalf("log link %q is not under the base URL", f.Value)
			}
			return path
		}
	}
	t.Fatalf("deploy:status %d has no log link: %v", id, res.Replies[0])
	return ""
}

// deployArgs are the parsed arguments of a deploy command, as the host's
// router hands them over.
func deployArgs(app, ref, env string) sdktest.Args {
	return sdktest.Args{"task": "deploy", "force": "false", "app": app, "ref": ref, "env": env}
}

// posted joins the text of everything the plugin posted.
func posted(h *sdktest.Harness) string {
	var parts []string
	for _, p := range h.Host.Posts() {
		o := p.Output
		parts = append(parts, strings.TrimSpace(o.Title+" "+o.Text+" "+o.Code))
		for _, f := range o.Fields {
			parts = append(parts, f.Title+": "+f.Value)
		}
	}
	return strings.Join(parts, "\n")
}

func userError(res sdktest.Result) string {
	if len(res.Errors) == 0 {
		return ""
	}
	return res.Errors[0].Summary
}

func TestDeployRunsTheAppsScriptOnTheExactCommitAndReportsSuccess(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	res := h.Command("deploy", deployArgs("demo", "main", "staging"))
	if !strings.Contains(res.Text(), "Deployment #1: demo/main to staging queued") {
		t.Fatalf("reply = %q %v", res.Text(), res.Errors)
	}
	jobs := h.RunEnqueued()
	if len(jobs) != 1 || jobs[0].Done.Outcome != "success" {
		t.Fatalf("job = %+v", jobs)
	}
	mark := f.mark(t, 1)
	for _, want := range []string{"DEPLOY_ENV=staging", "DEPLOY_REF=main", "DEPLOY_SHA=" + f.main, "DEPLOY_TASK=deploy", "DEPLOY_USER=tester"} {
		if !strings.Contains(mark, want) {
			t.Errorf("script environment lacks %s:\n%s", want, mark)
		}
	}
	out := posted(h)
	for _, want := range []string{"Tester is deploying demo/main to staging (#1)", "Deployed demo/main (" + f.main[:7] + ") to staging in", "https://staging.example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("posts lack %q:\n%s", want, out)
		}
	}
	if log := h.Host.Log("deployments/1"); !strings.Contains(log, "deploying main ("+f.main+") to staging") {
		t.Errorf("log = %q", log)
	}
	if page := h.HTTP(logLink(t, h, 1)); page.Status != 200 || !strings.Contains(string(page.Body), "done") ||
		strings.Contains(string(page.Body), "omitted") {
		t.Errorf("log page = %d %q", page.Status, page.Body)
	}
	if page := h.HTTP("/deployments/99/log"); page.Status != 404 {
		t.Errorf("unknown deployment's log page = %d", page.Status)
	}
}

func TestDeployRefusesBadRequestsWithAClearMessage(t *testing.T) {
	f := newFixture(t, `{"demo": {"provider": "shell", "repository": %q, "environments": ["staging", "production"],
		"allowed_rooms": ["test"]}, "other": {"provider": "shell", "repository": "/nonexistent", "environments": ["edge"], "allowed_rooms": ["elsewhere"]}}`)
	h := f.harness(t)
	cases := []struct {
		name string
		args sdktest.Args
		want string
	}{
		{"unknown app", deployArgs("project-y", "", ""), "never heard of project-y; known apps: demo, other"},
		{"no environment and several: ask, never production", deployArgs("demo", "main", ""), "staging"},
		{"an environment the app doesn't have", deployArgs("demo", "main", "edge"), "edge"},
		{"a room that is not allowed", deployArgs("other", "main", "edge"), "elsewhere"},
		{"shell metacharacters in the ref", deployArgs("demo", "main;rm${IFS}-rf", "staging"), "ref"},
		{"a ref that looks like an option", deployArgs("demo", "--upload-pack=evil", "staging"), "ref"},
		{"a ref climbing out", deployArgs("demo", "../../etc", "staging"), "ref"},
		{"bad hosts", sdktest.Args{"task": "deploy", "force": "false", "app": "demo", "ref": "main", "env": "staging", "hosts": "web1;reboot"}, "host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := h.Command("deploy", c.args)
			if msg := userError(res); !strings.Contains(msg, c.want) {
				t.Fatalf("refusal = %q, want it to mention %q", msg, c.want)
			}
		})
	}
	if n := len(h.Host.Enqueued()); n != 0 {
		t.Fatalf("%d jobs were enqueued for refused deploys", n)
	}
	if res := h.Command("deploy", deployArgs("demo", "main", "")); !strings.Contains(userError(res), "production") {
		// The question lists the environments; it must not have picked one.
		t.Fatalf("ambiguous env answer = %q", userError(res))
	}
}

func TestLockedEnvironmentRefusesOthersAndSaysWhoWhyAndSince(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.User = &sdk.User{ID: "alice"}
	if res := h.Command("deploy:lock", sdktest.Args{"app": "demo", "env": "staging", "reason": "testing the migration"}); !strings.Contains(res.Text(), "Locked demo in staging") {
		t.Fatalf("lock: %q %v", res.Text(), res.Errors)
	}
	h.User = &sdk.User{ID: "bob"}
	res := h.Command("deploy", deployArgs("demo", "main", "staging"))
	if msg := userError(res); !strings.Contains(msg, "locked by alice since") || !strings.Contains(msg, "testing the migration") {
		t.Fatalf("bob's deploy: %q", msg)
	}
	if msg := userError(h.Command("deploy:unlock", sdktest.Args{"app": "demo", "env": "staging"})); !strings.Contains(msg, "only they") {
		t.Fatalf("bob's unlock: %q", msg)
	}
	where := h.Command("where", sdktest.Args{"app": "demo"})
	if len(where.Replies) != 1 {
		t.Fatalf("where replied %d times", len(where.Replies))
	}
	var fields []string
	for _, f := range where.Replies[0].Fields {
		fields = append(fields, f.Title+": "+f.Value)
	}
	if !strings.Contains(strings.Join(fields, "\n"), "locked by alice") {
		t.Fatalf("where = %q", fields)
	}
	h.User = &sdk.User{ID: "alice"}
	// Automation running as alice (an auto-deploy, a schedule) does not
	// hold her lock: the lock is there to keep the robots off too.
	for _, by := range []string{"cistatus", "chima"} {
		if msg := userError(h.TriggeredCommand(by, "deploy", deployArgs("demo", "main", "staging"))); !strings.Contains(msg, "locked by alice since") {
			t.Fatalf("a deploy %s ran as alice passed her lock: %q", by, msg)
		}
	}
	if res := h.Command("deploy", deployArgs("demo", "main", "staging")); userError(res) != "" {
		t.Fatalf("the lock holder's own deploy was refused: %v", res.Errors)
	}
	if res := h.Command("deploy:unlock", sdktest.Args{"app": "demo", "env": "staging"}); !strings.Contains(res.Text(), "Unlocked demo in staging") {
		t.Fatalf("unlock: %q", res.Text())
	}
}

func TestDeploysQueueBehindEachOtherAndRunInOrder(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	second := h.Command("deploy", deployArgs("demo", "feature-1", "staging"))
	if !strings.Contains(second.Text(), "behind 1 other deployment of demo in staging.") {
		t.Fatalf("second deploy = %q", second.Text())
	}
	third := h.Command("deploy", deployArgs("demo", "main", "staging"))
	if !strings.Contains(third.Text(), "behind 2 other deployments of demo in staging.") {
		t.Fatalf("third deploy = %q", third.Text())
	}
	list := h.Command("deploys", sdktest.Args{"app": "demo"})
	if text := list.Replies[0].Text; !strings.Contains(text, "#2 deploy feature-1 to staging by Tester") || !strings.Contains(text, "queued") {
		t.Fatalf("deploys = %q", text)
	}
	h.RunEnqueued()
	if !strings.Contains(f.mark(t, 2), "DEPLOY_SHA="+f.feature) || !strings.Contains(f.mark(t, 1), "DEPLOY_SHA="+f.main) {
		t.Fatal("deployments ran the wrong commits")
	}
	text := h.Command("deploys", sdktest.Args{"app": "demo", "env": "staging"}).Replies[0].Text
	if !strings.Contains(text, "#2 deploy feature-1@"+f.feature[:7]) || !strings.Contains(text, "success in") {
		t.Fatalf("deploys after = %q", text)
	}
}

func TestFailedDeployReportsTheLogTailAndLink(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "broken", "staging"))
	res := h.RunEnqueued()
	if res[0].Done.Outcome != "failure" {
		t.Fatalf("outcome = %q", res[0].Done.Outcome)
	}
	out := posted(h)
	for _, want := range []string{"Deployment #1 of demo/broken", "failed after", "something broke", "Full log: http://chima.test/deployments/1/log?token="} {
		if !strings.Contains(out, want) {
			t.Errorf("posts lack %q:\n%s", want, out)
		}
	}
	status := h.Command("deploy:status", sdktest.Args{"id": "1"})
	if o := status.Replies[0]; !strings.Contains(o.Text, "failure") || !strings.Contains(o.Code, "something broke") {
		t.Fatalf("status = %v", o)
	}
}

func TestRollbackRedeploysThePreviousSuccessfulCommit(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	if msg := userError(h.Command("rollback", sdktest.Args{"app": "demo", "env": "staging"})); !strings.Contains(msg, "Nothing to roll back to") {
		t.Fatalf("rollback with no history: %q", msg)
	}
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	h.Command("deploy", deployArgs("demo", "feature-1", "staging"))
	h.RunEnqueued()
	res := h.Command("rollback", sdktest.Args{"app": "demo", "env": "staging"})
	if !strings.Contains(res.Text(), "back from feature-1@"+f.feature[:7]+" (#2) to main@"+f.main[:7]+" (#1)") {
		t.Fatalf("rollback = %q %v", res.Text(), res.Errors)
	}
	h.RunEnqueued()
	if !strings.Contains(f.mark(t, 3), "DEPLOY_SHA="+f.main) {
		t.Fatal("rollback did not deploy the previous commit")
	}
}

func TestCancelStopsAQueuedDeployment(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	res := h.Command("deploy:cancel", sdktest.Args{"id": "1"})
	if !strings.Contains(res.Text(), "cancelled before it started") {
		t.Fatalf("cancel = %q %v", res.Text(), res.Errors)
	}
	h.RunEnqueued() // nothing left to run
	if _, err := os.Stat(filepath.Join(f.marks, "1")); err == nil {
		t.Fatal("a cancelled deployment ran")
	}
	if msg := userError(h.Command("deploy:cancel", sdktest.Args{"id": "1"})); !strings.Contains(msg, "already ended") {
		t.Fatalf("second cancel: %q", msg)
	}
}

func TestInterruptedDeploymentIsMarkedErrored(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	job := h.Host.Enqueued()[0]
	res := h.JobInterrupted(&sdk.Job{JobID: 1, Kind: "deploy", Payload: job.Payload})
	if res.Done.Outcome == "error" {
		t.Fatalf("event failed: %v", res.Done)
	}
	text := h.Command("deploys", sdktest.Args{"app": "demo"}).Replies[0].Text
	if !strings.Contains(text, "error") || !strings.Contains(text, "interrupted: Chima stopped while it ran") {
		t.Fatalf("deploys = %q", text)
	}
}

func TestLogPageOpensOnlyWithTheTokenOfItsLink(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	h.Command("deploy", deployArgs("demo", "feature-1", "staging"))
	h.RunEnqueued()
	link1, link2 := logLink(t, h, 1), logLink(t, h, 2)
	if again := logLink(t, h, 1); again != link1 {
		t.Fatalf("the link changed: %q, then %q", link1, again)
	}
	raw, ok := h.Host.KVValue("page-secret")
	secret, err := hex.DecodeString(string(raw))
	if !ok || err != nil || len(secret) != 32 {
		t.Fatalf("page-secret = %q (%v), want 32 hex-encoded bytes", raw, err)
	}
	token := func(id int64) string { return hex.EncodeToString(logToken(secret, id)) }
	_, token2, _ := strings.Cut(link2, "?token=")
	tests := []struct {
		name   string
		path   string
		status int
	}{
		{"the link deploy:status gives", link1, 200},
		{"no token", "/deployments/1/log", 404},
		{"an empty token", "/deployments/1/log?token=", 404},
		{"another deployment's token", "/deployments/1/log?token=" + token2, 404},
		{"a made-up token", "/deployments/1/log?token=" + strings.Repeat("ab", 32), 404},
		{"a token that is not hex", "/deployments/1/log?token=not-hex", 404},
		{"a valid token for a deployment that does not exist", "/deployments/99/log?token=" + token(99), 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := h.HTTP(tt.path)
			if page.Status != tt.status {
				t.Fatalf("GET %s = %d %q, want %d", tt.path, page.Status, page.Body, tt.status)
			}
			if tt.status == 200 && !strings.Contains(string(page.Body), "deploying main ("+f.main+")") {
				t.Fatalf("GET %s = %q, want deployment 1's log", tt.path, page.Body)
			}
		})
	}
}

func TestLogPageShowsTheEndOfALongLog(t *testing.T) {
	var long strings.Builder
	for i := range 100 {
		fmt.Fprintf(&long, "line %03d\n", i) // 9 bytes a line
	}
	tests := []struct {
		name     string
		log      string
		wantHead string // the first line of the page
		want     string // the rest of the page
	}{
		{"a log within the window is served whole", long.String()[:9*10], "line 000", long.String()[:9*10]},
		// The last 100 bytes start in line 088 (at byte 800): the page
		// starts at line 089, byte 801.
		{"a longer log shows its end, from the start of a line, after a line saying what is omitted", long.String(),
			"chima: the first 801 bytes of this log are omitted; its last 99 bytes follow.", long.String()[801:]},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "")
			p := f.probe(t, &deployer{pageWindow: 100})
			id := int64(i + 1)
			var link string
			p.run(t, func(c *sdk.Context) {
				if _, err := c.AppendLog(logName(id), []byte(tt.log)); err != nil {
					t.Error(err)
				}
				link = strings.TrimPrefix(p.d.logURL(c, id), "http://chima.test")
			})
			page := p.HTTP(link)
			body := string(page.Body)
			head, _, _ := strings.Cut(body, "\n")
			if page.Status != 200 || head != tt.wantHead {
				t.Fatalf("GET %s = %d, first line %q; want 200, %q", link, page.Status, head, tt.wantHead)
			}
			if strings.HasPrefix(tt.wantHead, "chima:") {
				body = strings.TrimPrefix(body, head+"\n")
			}
			if body != tt.want {
				t.Fatalf("page body = %q, want %q", body, tt.want)
			}
		})
	}
}

func TestLogStreamKeepsTheEndOfACancelledDeploymentsOutput(t *testing.T) {
	// The host cancels a running job's context on deploy:cancel (sdktest's
	// FakeHost can only cancel queued jobs), so the stream is given a job
	// context that is cancelled half-way, as runDeploy's is.
	f := newFixture(t, "")
	p := f.probe(t, &deployer{})
	p.run(t, func(c *sdk.Context) {
		job, cancel := cancelled(c)
		defer cancel()
		log := newLogStream(job, 7)
		fmt.Fprintln(log, "step 1 of 2")
		cancel()
		fmt.Fprintln(log, "chima: deploy stopped: context canceled")
		log.Close()
	})
	got := p.Host.Log("deployments/7")
	if want := "step 1 of 2\nchima: deploy stopped: context canceled\n"; got != want {
		t.Fatalf("log = %q, want %q", got, want)
	}
}

func TestDeployWithoutARefDeploysTheRepositorysDefaultBranch(t *testing.T) {
	const localApp = `{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"]}}`
	tests := []struct {
		name    string
		apps    string
		setup   func(t *testing.T, f *fixture)
		queued  string // the reply, or
		refusal string // the refusal
	}{
		{"the repository's default branch", localApp,
			func(t *testing.T, f *fixture) { git(t, f.repo, "symbolic-ref", "HEAD", "refs/heads/feature-1") },
			"Deployment #1: demo/feature-1 to staging queued", ""},
		{"a repository with no default branch: apps.FallbackRef", localApp,
			func(t *testing.T, f *fixture) {
				// A detached HEAD at a commit of no branch: the mirror's
				// HEAD is detached too.
				git(t, f.repo, "checkout", "-q", "--detach")
				git(t, f.repo, "commit", "-q", "--allow-empty", "-m", "detached")
			},
			"Deployment #1: demo/main to staging queued", ""},
		{"a repository that can't be read: refused with the reason, not main",
			`{"demo": {"provider": "shell", "repository": "/nonexistent/repo", "environments": ["staging"]}}`, nil,
			"", "Could not find the default branch of demo's repository"},
		{"default_ref: the repository is not asked",
			`{"demo": {"provider": "shell", "repository": "/nonexistent/repo", "environments": ["staging"], "default_ref": "feature-1"}}`, nil,
			"Deployment #1: demo/feature-1 to staging queued", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.apps)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			h := f.harness(t)
			res := h.Command("deploy", deployArgs("demo", "", "staging"))
			if tt.refusal != "" {
				if msg := userError(res); !strings.Contains(msg, tt.refusal) {
					t.Fatalf("refusal = %q, want it to contain %q", msg, tt.refusal)
				}
				if n := len(h.Host.Enqueued()); n != 0 {
					t.Fatalf("a refused deploy queued %d jobs", n)
				}
				return
			}
			if !strings.Contains(res.Text(), tt.queued) {
				t.Fatalf("reply = %q %v, want %q", res.Text(), res.Errors, tt.queued)
			}
		})
	}
}

func TestStartingThePluginRemovesCheckoutsACrashedProcessLeft(t *testing.T) {
	f := newFixture(t, "")
	checkouts := filepath.Join(t.TempDir(), "checkouts")
	leftover := filepath.Join(checkouts, "repo-0123456789ab-42")
	if err := os.MkdirAll(filepath.Join(leftover, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.harness(t, "checkout_dir", checkouts)
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("left-over checkout still there after start: %v", err)
	}
}

// The thread's progress message is edited one last time when the
// deployment ends, so it shows the last lines of output and no longer says
// "Deploying…", whenever the end came between two progress ticks.
func TestProgressInTheThreadEndsWithTheLastLinesOfOutput(t *testing.T) {
	f := newFixture(t, "")
	git(t, f.repo, "checkout", "-q", "-b", "slowish", "main")
	write(t, filepath.Join(f.repo, "script/deploy"), "#!/bin/sh\necho first step\nsleep 1\necho last step\n", 0o755)
	git(t, f.repo, "commit", "-q", "-am", "slowish")
	git(t, f.repo, "checkout", "-q", "main")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "slowish", "staging"))
	res := h.RunEnqueued()
	if len(res) != 1 || len(res[0].Progress) == 0 {
		t.Fatalf("the deployment showed no progress: %+v", res)
	}
	progress := res[0].Progress
	final := progress[len(progress)-1].Output
	// A tick shows the first step while the script sleeps; under load
	// the first tick may come before the script printed anything.
	shown := false
	for _, p := range progress[:len(progress)-1] {
		o := p.Output
		shown = shown || o.Title == "Deploying…" && strings.Contains(o.Code, "first step")
	}
	if !shown {
		t.Fatalf("no progress said Deploying… with the first step before the end: %+v", progress)
	}
	if final.Title != "Output" || !strings.Contains(final.Code, "last step") {
		t.Fatalf("the progress message ends as %q %q, want the title Output and the last line", final.Title, final.Code)
	}
}

func TestADeployToAProtectedEnvironmentWaitsForApprovalAndThenRuns(t *testing.T) {
	f := newFixture(t, `{"demo": {"provider": "shell", "repository": %q, "environments": ["staging", "production"],
		"default_environment": "staging", "protected_environments": ["production"]}}`)
	h := f.harness(t)
	res := h.Command("deploy", deployArgs("demo", "main", "production"))
	if need := res.ApprovalNeeded; need == nil || len(need.Options.Approvers) != 0 || need.Options.Reason != "production is a protected environment of demo" {
		t.Fatalf("deploy to production = %+v (errors %v); want approval asked of chima.yaml's approvers (none named)", need, res.Errors)
	}
	if len(h.Host.Enqueued()) != 0 {
		t.Fatal("a deploy was queued before its approval")
	}
	approval := &sdk.Approval{ID: 7, Requester: "tester", Approvers: []string{"bob"}}
	res = h.ApprovedCommand("deploy", deployArgs("demo", "main", "production"), approval)
	if !strings.Contains(res.Text(), "Deployment #1: demo/main to production queued (approved by bob, request 7).") || res.ApprovalNeeded != nil {
		t.Fatalf("approved deploy = %q (asked again: %v); want it queued, naming the approval", res.Text(), res.ApprovalNeeded)
	}
	if jobs := h.RunEnqueued(); len(jobs) != 1 || jobs[0].Done.Outcome != "success" {
		t.Fatalf("job = %+v", jobs)
	}
	if !strings.Contains(f.mark(t, 1), "DEPLOY_ENV=production") {
		t.Error("the script did not deploy to production")
	}

	// A rollback in production asks too, once there is one to make.
	res = h.ApprovedCommand("deploy", deployArgs("demo", "feature-1", "production"), approval)
	h.RunEnqueued()
	if res = h.Command("rollback", sdktest.Args{"app": "demo", "env": "production"}); res.ApprovalNeeded == nil {
		t.Fatalf("rollback in production = %q %v; want it to ask for approval", res.Text(), res.Errors)
	}
	res = h.ApprovedCommand("rollback", sdktest.Args{"app": "demo", "env": "production"}, approval)
	if !strings.Contains(res.Text(), "Rolling demo in production back") {
		t.Fatalf("approved rollback = %q %v", res.Text(), res.Errors)
	}
}

func TestAPersonHoldsOneLockFromEveryChatTheySpeakFrom(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	aliceOnSlack := &sdk.User{ID: "U024BE7LH", Name: "Alice", Person: "alice"}
	aliceOnConsole := &sdk.User{ID: "alice", Name: "alice", Person: "alice"}
	h.User = aliceOnSlack
	if res := h.Command("deploy:lock", sdktest.Args{"app": "demo", "env": "staging", "reason": "migrating"}); !strings.Contains(res.Text(), "Locked demo in staging") {
		t.Fatalf("lock: %q %v", res.Text(), res.Errors)
	}
	resp, _ := h.Host.Locks(context.Background(), &pluginv1.LocksRequest{})
	if locks := resp.GetLocks(); len(locks) != 1 || locks[0].GetOwner() != "alice" {
		t.Fatalf("locks = %v; want one held by the person alice", locks)
	}
	h.User = &sdk.User{ID: "bob"}
	if msg := userError(h.Command("deploy", deployArgs("demo", "main", "staging"))); !strings.Contains(msg, "locked by alice since") {
		t.Fatalf("bob's deploy: %q", msg)
	}
	h.User = aliceOnConsole
	if res := h.Command("deploy", deployArgs("demo", "main", "staging")); userError(res) != "" {
		t.Fatalf("alice's deploy from her other account was refused: %v", res.Errors)
	}
	h.RunEnqueued()
	if !strings.Contains(f.mark(t, 1), "DEPLOY_SHA="+f.main) {
		t.Fatal("alice's deployment did not run past her own lock")
	}
	if res := h.Command("deploy:unlock", sdktest.Args{"app": "demo", "env": "staging"}); !strings.Contains(res.Text(), "Unlocked demo in staging.") {
		t.Fatalf("unlock from her other account: %q %v", res.Text(), res.Errors)
	}
}

func TestLockedByPassesOnlyTheLocksOwnNamedHolder(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, owner, user string
		passes            bool
	}{
		{"the holder", "alice", "alice", true},
		{"someone else", "alice", "bob", false},
		{"automation (no user)", "alice", "", false},
		{"automation on a lock with no owner", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lockedBy(&sdk.LockInfo{Owner: tt.owner, AcquiredAt: now}, tt.user, now)
			if (got == "") != tt.passes {
				t.Fatalf("lockedBy(owner %q, user %q) = %q; want passes=%v", tt.owner, tt.user, got, tt.passes)
			}
		})
	}
}
