package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

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
	settings := map[string]string{
		"apps_file": f.appsFile, "workspace_dir": f.workspace,
		"chima_base_url": "http://chima.test", "chima_bot_name": "chima",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		settings[extra[i]] = extra[i+1]
	}
	return sdktest.New(t, newPlugin(&deployer{}).spec(), settings)
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
		o := p.GetOutput()
		parts = append(parts, strings.TrimSpace(o.GetTitle()+" "+o.GetText()+" "+o.GetCode()))
		for _, f := range o.GetFields() {
			parts = append(parts, f.GetTitle()+": "+f.GetValue())
		}
	}
	return strings.Join(parts, "\n")
}

func userError(res sdktest.Result) string {
	if len(res.Errors) == 0 {
		return ""
	}
	return res.Errors[0].GetSummary()
}

func TestDeployRunsTheAppsScriptOnTheExactCommitAndReportsSuccess(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	res := h.Command("deploy", deployArgs("demo", "main", "staging"))
	if !strings.Contains(res.Text(), "Deployment #1: demo/main to staging queued") {
		t.Fatalf("reply = %q %v", res.Text(), res.Errors)
	}
	jobs := h.RunEnqueued()
	if len(jobs) != 1 || jobs[0].Done.GetOutcome() != "success" {
		t.Fatalf("job = %+v", jobs)
	}
	mark := f.mark(t, 1)
	for _, want := range []string{"DEPLOY_ENV=staging", "DEPLOY_REF=main", "DEPLOY_SHA=" + f.main, "DEPLOY_TASK=deploy", "DEPLOY_USER=tester"} {
		if !strings.Contains(mark, want) {
			t.Errorf("script environment lacks %s:\n%s", want, mark)
		}
	}
	out := posted(h)
	for _, want := range []string{"tester is deploying demo/main to staging (#1)", "Deployed demo/main (" + f.main[:7] + ") to staging in", "https://staging.example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("posts lack %q:\n%s", want, out)
		}
	}
	if log := h.Host.Log("deployments/1"); !strings.Contains(log, "deploying main ("+f.main+") to staging") {
		t.Errorf("log = %q", log)
	}
	if page := h.HTTP("/deployments/1/log"); page.GetStatus() != 200 || !strings.Contains(string(page.GetBody()), "done") {
		t.Errorf("log page = %d %q", page.GetStatus(), page.GetBody())
	}
	if page := h.HTTP("/deployments/99/log"); page.GetStatus() != 404 {
		t.Errorf("unknown deployment's log page = %d", page.GetStatus())
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
	h.User = &pluginv1.User{Id: "alice"}
	if res := h.Command("deploy:lock", sdktest.Args{"app": "demo", "env": "staging", "reason": "testing the migration"}); !strings.Contains(res.Text(), "Locked demo in staging") {
		t.Fatalf("lock: %q %v", res.Text(), res.Errors)
	}
	h.User = &pluginv1.User{Id: "bob"}
	res := h.Command("deploy", deployArgs("demo", "main", "staging"))
	if msg := userError(res); !strings.Contains(msg, "locked by alice since") || !strings.Contains(msg, "testing the migration") {
		t.Fatalf("bob's deploy: %q", msg)
	}
	if msg := userError(h.Command("deploy:unlock", sdktest.Args{"app": "demo", "env": "staging"})); !strings.Contains(msg, "only they") {
		t.Fatalf("bob's unlock: %q", msg)
	}
	where := h.Command("where", sdktest.Args{"app": "demo"})
	if len(where.Replies) != 1 || !strings.Contains(fmt.Sprint(where.Replies[0].GetFields()), "locked by alice") {
		t.Fatalf("where = %v", where.Replies)
	}
	h.User = &pluginv1.User{Id: "alice"}
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
	if !strings.Contains(second.Text(), "behind 1 other deployment") {
		t.Fatalf("second deploy = %q", second.Text())
	}
	list := h.Command("deploys", sdktest.Args{"app": "demo"})
	if text := list.Replies[0].GetText(); !strings.Contains(text, "#2 deploy feature-1 to staging by tester") || !strings.Contains(text, "queued") {
		t.Fatalf("deploys = %q", text)
	}
	h.RunEnqueued()
	if !strings.Contains(f.mark(t, 2), "DEPLOY_SHA="+f.feature) || !strings.Contains(f.mark(t, 1), "DEPLOY_SHA="+f.main) {
		t.Fatal("deployments ran the wrong commits")
	}
	text := h.Command("deploys", sdktest.Args{"app": "demo", "env": "staging"}).Replies[0].GetText()
	if !strings.Contains(text, "#2 deploy feature-1@"+f.feature[:7]) || !strings.Contains(text, "success in") {
		t.Fatalf("deploys after = %q", text)
	}
}

func TestFailedDeployReportsTheLogTailAndLink(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "broken", "staging"))
	res := h.RunEnqueued()
	if res[0].Done.GetOutcome() != "failure" {
		t.Fatalf("outcome = %q", res[0].Done.GetOutcome())
	}
	out := posted(h)
	for _, want := range []string{"Deployment #1 of demo/broken", "failed after", "something broke", "Full log: http://chima.test/deployments/1/log"} {
		if !strings.Contains(out, want) {
			t.Errorf("posts lack %q:\n%s", want, out)
		}
	}
	status := h.Command("deploy:status", sdktest.Args{"id": "1"})
	if o := status.Replies[0]; !strings.Contains(o.GetText(), "failure") || !strings.Contains(o.GetCode(), "something broke") {
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
	res := h.Event("chima:job_interrupted", mustMarshalJob(t, &pluginv1.JobRequest{JobId: 1, Kind: "deploy", Payload: job.GetPayload()}))
	if res.Done.GetOutcome() == "error" {
		t.Fatalf("event failed: %v", res.Done)
	}
	text := h.Command("deploys", sdktest.Args{"app": "demo"}).Replies[0].GetText()
	if !strings.Contains(text, "error") || !strings.Contains(text, "interrupted: Chima stopped while it ran") {
		t.Fatalf("deploys = %q", text)
	}
}

func mustMarshalJob(t *testing.T, j *pluginv1.JobRequest) []byte {
	t.Helper()
	b, err := proto.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
