package main

// What a new user found still broken, trying the built bot by hand; each
// test here reproduces one such finding through the binary.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// The router lower-cases a command keyword and a help topic before it
// quotes them back, so a secret typed as one must be masked in that case
// too: in chat, in the audit log, in the store and in the log.
func TestSecretTypedAsACommandOrHelpTopicIsMaskedInAnyCase(t *testing.T) {
	raw := make([]byte, 6)
	_, _ = rand.Read(raw)
	secret := "QA-Secret-" + strings.ToUpper(hex.EncodeToString(raw))
	t.Setenv("CHIMA_QA_SECRET", secret)
	dir := t.TempDir()
	cfg := healthConfig(t, dir, "", "", "    secrets: {HELLO_TOKEN: CHIMA_QA_SECRET}\n")
	c := startRecordedConsole(t, cfg, "--log-level", "debug")

	c.say(t, "chima "+secret)
	c.expect(t, "I don't know the command")
	c.say(t, "chima help "+secret)
	c.expect(t, "I have no help about")
	time.Sleep(100 * time.Millisecond) // let the audit writer write its batch
	running := readStore(t, dir)
	c.quit(t)

	audit, _, code := chima(t, "audit", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("audit (exit %d):\n%s", code, audit)
	}
	if !strings.Contains(c.stdout.String(), `command "[redacted]"`) || !strings.Contains(c.stdout.String(), `help about "[redacted]"`) {
		t.Errorf("the replies do not quote the masked secret:\n%s", c.stdout.String())
	}
	places := map[string]string{"console output": c.stdout.String(), "bot's log (stderr)": c.stderr.String(), "chima audit --json": audit}
	for when, files := range map[string]map[string]string{"while running": running, "after exit": readStore(t, dir)} {
		for name, b := range files {
			places[name+" "+when] = b
		}
	}
	lower := strings.ToLower(secret)
	for name, text := range places {
		if i := strings.Index(strings.ToLower(text), lower); i >= 0 {
			t.Errorf("%s holds the secret: …%q…", name, text[max(i-80, 0):min(i+len(secret)+20, len(text))])
		}
	}
}

// config validate counts in English, finds a plugin that reads no settings
// (hello) valid, and does not blame a current plugin's protocol version for
// having no settings check (crashy has only Configure).
func TestConfigValidateSaysWhatItCheckedPlainly(t *testing.T) {
	cfg := writeConfig(t, "")
	out, stderr, code := chima(t, "config", "validate", "--config", cfg)
	if code != 0 {
		t.Fatalf("config validate (exit %d):\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "2 plugins, 1 role, 1 policy (") {
		t.Errorf("the summary does not count in English:\n%s", out)
	}
	if !strings.Contains(stderr, "plugin crashy: not validated") || !strings.Contains(out, "settings valid: hello") {
		t.Fatalf("config validate does not say hello is valid and crashy not validated:\n%s%s", out, stderr)
	}
	if strings.Contains(stderr, "protocol minor") {
		t.Errorf("stderr blames the protocol version of a current plugin:\n%s", stderr)
	}
}

// A missing secret is named once per plugin, not "plugin x: plugin x: …".
func TestMissingSecretNamesThePluginOnce(t *testing.T) {
	t.Setenv("CHIMA_QA_UNSET", "")
	cfg := healthConfig(t, t.TempDir(), "", "", "    secrets: {HELLO_TOKEN: CHIMA_QA_UNSET}\n")
	for _, args := range [][]string{{"config", "validate"}, {"run"}} {
		_, stderr, code := chima(t, append(args, "--config", cfg)...)
		if code == 0 {
			t.Errorf("%v with an empty secret exited 0", args)
		}
		if !strings.Contains(stderr, "plugin hello: secret HELLO_TOKEN: environment variable CHIMA_QA_UNSET is empty") {
			t.Errorf("%v does not say which secret is missing:\n%s", args, stderr)
		}
		if strings.Contains(stderr, "plugin hello: plugin hello:") {
			t.Errorf("%v names the plugin twice:\n%s", args, stderr)
		}
	}
}

// An empty message is no message: it gets the usage error its help
// describes, before any plugin is started.
func TestSendWithAnEmptyMessageSaysThereIsNoMessage(t *testing.T) {
	cfg := writeConfig(t, "")
	for _, args := range [][]string{{}, {""}, {"  "}} {
		_, stderr, code := chima(t, append([]string{"send", "--config", cfg}, args...)...)
		if code != 2 || !strings.Contains(stderr, "no message to send") {
			t.Errorf("send %q: exit %d, stderr:\n%s", args, code, stderr)
		}
	}
}

// A plugin that cannot start is said once in the log and once as a
// warning, not a third time as "plugin did not start".
func TestAPluginThatCannotStartIsReportedOnceInTheLogAndOnceAsAWarning(t *testing.T) {
	dir := t.TempDir()
	cfg := healthConfig(t, dir, "", `{"demo": {"provider": "shell", "repository": "x/y", "environments": ["staging"], "notify_romos": ["x"]}}`, "")
	out, stderr, _ := chima(t, "plugins", "--config", cfg)
	if !strings.Contains(out, "notify_romos") {
		t.Fatalf("the listing does not say why deploy failed:\n%s", out)
	}
	var logged, warned int
	for _, l := range strings.Split(stderr, "\n") {
		switch {
		case !strings.Contains(l, "notify_romos"):
		case strings.HasPrefix(l, "chima: warning: plugin deploy:"):
			warned++
		case strings.Contains(l, "level=ERROR"):
			logged++
		default:
			t.Errorf("an unexpected line names the failure: %q", l)
		}
	}
	if logged != 1 || warned != 1 {
		t.Errorf("the failure is logged %d times and warned of %d times, want once each:\n%s", logged, warned, stderr)
	}
}

// When send's --timeout passes under a deploy, it says so in words, not
// "waiting for jobs of <request id>: context deadline exceeded", and fails.
func TestSendSaysItsTimeoutPassedBeforeTheDeployEnded(t *testing.T) {
	sdktest.NeedTool(t, "git")
	repo, _, _ := gitRepo(t)
	dir := t.TempDir()
	cfg := healthConfig(t, dir, "", fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"]}}`, repo), "")
	out, stderr, code := chima(t, "send", "--config", cfg, "--timeout", "3s", "chima deploy demo/slow")
	if code != 1 {
		t.Errorf("send exited %d, want 1:\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "interrupted") {
		t.Errorf("the deploy's end was not printed:\n%s", out)
	}
	if !strings.Contains(stderr, "--timeout 3s passed before the jobs the command started ended; they were interrupted") || strings.Contains(stderr, "deadline exceeded") {
		t.Errorf("stderr does not say the timeout passed:\n%s", stderr)
	}
}

// A chima command that starts the deploy plugin only to describe it
// (explain), or a second bot on the same config, used to kill the running
// bot's deploy: the second deploy plugin's sweep at start ended its
// processes ("script/deploy was killed by killed (signal 9)"), and a second
// bot marked its job interrupted. explain now leaves it alone, and a second
// run or send refuses to start on a store a bot is using.
func TestExplainOrASecondBotLeavesARunningDeployAlone(t *testing.T) {
	sdktest.NeedTool(t, "git")
	repo, marks, _ := gitRepo(t)
	dir := t.TempDir()
	cfg := healthConfig(t, dir, "", fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"]}}`, repo), "")
	c := startConsole(t, cfg)
	c.say(t, "chima deploy demo/slow")
	c.expect(t, "is deploying demo/slow to staging (#1)")
	waitFile(t, filepath.Join(marks, "1")) // the script runs, and sleeps

	if out, stderr, code := chima(t, "explain", "--config", cfg, "chima deploy demo"); code != 0 {
		t.Fatalf("explain (exit %d):\n%s%s", code, out, stderr)
	}
	for _, args := range [][]string{{"run"}, {"send", "chima deploys demo"}} {
		_, stderr, code := chima(t, append([]string{args[0], "--config", cfg}, args[1:]...)...)
		if code != 1 || !strings.Contains(stderr, "another chima run or chima send is using the store "+filepath.Join(dir, "chima.db")) {
			t.Errorf("a second %s beside the bot: exit %d, stderr:\n%s", args[0], code, stderr)
		}
	}
	c.say(t, "chima deploy:status 1")
	if line := c.expect(t, "#1 deploy slow@"); !strings.Contains(line, "running") {
		t.Fatalf("after explain and a second bot, the deploy is no longer running: %s", line)
	}
	c.say(t, "chima deploy:cancel 1")
	c.expect(t, "was cancelled")
}
