package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// approvalsConfig is writeConfig with the deploy plugin and the app demo,
// whose production is protected: release-managers (bob) approve its
// deploys. alice is an admin; extra is appended to the config.
func approvalsConfig(t *testing.T, extra string) (cfg, marks, sha string) {
	t.Helper()
	repo, marks, sha := gitRepo(t)
	dir := t.TempDir()
	appsFile := filepath.Join(dir, "apps.json")
	if err := os.WriteFile(appsFile, []byte(fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q,
		"environments": ["staging", "production"], "default_environment": "staging",
		"protected_environments": ["production"], "approvers": ["release-managers"]}}`, repo)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = writeConfig(t, extra)
	b, _ := os.ReadFile(cfg)
	text := strings.Replace(string(b), "roles:", fmt.Sprintf(`  - name: deploy
    path: %s
    settings: {apps_file: %s, workspace_dir: %s, checkout_dir: %s}
people:
  alice: [shell:alice]
  bob: [shell:bob]
roles:
  release-managers: {people: [bob]}`, filepath.Join(binDir, "plugins/deploy"), appsFile, filepath.Join(dir, "ws"), filepath.Join(dir, "checkouts")), 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, marks, sha
}

func TestAProtectedEnvironmentDeployEndToEndOnTheConsole(t *testing.T) {
	cfg, marks, sha := approvalsConfig(t, "")
	c := startConsole(t, cfg)

	c.say(t, "chima deploy demo/main to production")
	c.expect(t, "Approval needed (request 1)")
	c.expect(t, "alice asks to run deploy demo/main to production: production is a protected environment of demo.")
	c.expect(t, "[Approve] type: chima approve 1")
	c.expect(t, "[Deny] type: chima deny 1 <reason>")
	c.say(t, "chima approvals")
	c.expect(t, "#1 deploy demo/main to production asked by alice in shell:general, 0 of 1 approvals from release-managers")

	// alice cannot approve her own deploy.
	c.say(t, "chima approve 1")
	c.expect(t, "You cannot approve your own request.")
	if _, err := os.Stat(filepath.Join(marks, "1")); err == nil {
		t.Fatal("the deploy ran before its approval")
	}

	c.say(t, "/user bob")
	c.say(t, "chima approve 1")
	c.expect(t, "bob approved request 1; running deploy demo/main to production for alice.")
	c.expect(t, "Deployment #1: demo/main to production queued (approved by bob, request 1).")
	c.expect(t, "Deployed demo/main ("+sha[:7]+") to production in")
	mark, err := os.ReadFile(filepath.Join(marks, "1"))
	if err != nil || !strings.Contains(string(mark), "DEPLOY_ENV=production") || !strings.Contains(string(mark), "DEPLOY_USER=alice") {
		t.Fatalf("the script's environment = %q, %v; want production, deployed as alice", mark, err)
	}
	// It ran once: a second approval finds it closed.
	c.say(t, "chima approve 1")
	c.expect(t, "It is no longer open: it was approved and has run.")

	// The audit has the request, the approval and the run as alice.
	c.in.Close()
	_ = c.cmd.Wait()
	out, stderr, code := chima(t, "audit", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("chima audit: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{`"outcome": "approval"`, `approval 1 requested; approvers: release-managers`, `approval 1: approved by bob`, `approval 1: asked by alice at `} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit lacks %s:\n%s", want, out)
		}
	}
}

func TestAnApprovalRequestOutlivesARestartOfTheBot(t *testing.T) {
	cfg, _, sha := approvalsConfig(t, "")
	first := startConsole(t, cfg)
	first.say(t, "chima deploy demo/main to production")
	first.expect(t, "Approval needed (request 1)")
	first.in.Close()
	done := make(chan error, 1)
	go func() { done <- first.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the first bot did not stop at the end of its input")
	}

	second := startConsole(t, cfg)
	second.say(t, "/user bob")
	second.say(t, "chima approve 1")
	second.expect(t, "bob approved request 1; running deploy demo/main to production for alice.")
	second.expect(t, "Deployed demo/main ("+sha[:7]+") to production in")
}

func TestAPolicysWhenNamingNoArgumentOfItsCommandStopsTheStart(t *testing.T) {
	cfg, _, _ := approvalsConfig(t, `  - command: deploy
    when: {environment: [production]}
    approval: {approvers: [release-managers]}
`)
	// With no input the console ends at once: chima run stops, and says why.
	out, stderr, code := chima(t, "run", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, `chima.yaml:`) || !strings.Contains(stderr, `policies[1].when.environment: "environment" is no argument of deploy (its arguments: app, env,`) {
		t.Fatalf("chima run: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}

func TestChimaSendAsksForApprovalAndTheApprovalRunsTheDeployToItsEnd(t *testing.T) {
	cfg, marks, sha := approvalsConfig(t, "")
	out, stderr, code := chima(t, "send", "--config", cfg, "chima deploy demo/main to production")
	if code != 1 || !strings.Contains(out, "Approval needed (request 1)") {
		t.Fatalf("send the deploy: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 1 (nothing ran yet) and the ask", code, out, stderr)
	}
	if out, _, _ := chima(t, "approvals", "--config", cfg); !strings.Contains(out, `#1 pending  "deploy demo/main to production"  asked by alice in shell:general`) ||
		!strings.Contains(out, "approvers release-managers (0 of 1)") {
		t.Errorf("chima approvals =\n%s\nwant request 1 pending", out)
	}
	out, stderr, code = chima(t, "send", "--config", cfg, "--user", "bob", "chima approve 1")
	if code != 0 || !strings.Contains(out, "Deployed demo/main ("+sha[:7]+") to production in") {
		t.Fatalf("send the approval: exit %d, stdout:\n%s\nstderr:\n%s\nwant the deploy run to its end", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(marks, "1")); err != nil {
		t.Fatal("the script did not run")
	}
	if out, _, _ := chima(t, "approvals", "--config", cfg); !strings.Contains(out, "No command is waiting for approval.") {
		t.Errorf("chima approvals after the approval =\n%s", out)
	}
	if out, _, _ := chima(t, "approvals", "--config", cfg, "--all"); !strings.Contains(out, "#1 done") || !strings.Contains(out, "    bob approved at ") {
		t.Errorf("chima approvals --all =\n%s\nwant request 1 done, approved by bob", out)
	}
}
