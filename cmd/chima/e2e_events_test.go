package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// eventsBed is a running `chima run` with the console, the HTTP server, the
// GitHub webhook and crashy, which takes github:push: it appends
// "<delivery> <attempt>" to log for each it takes, refuses those whose
// payload says {"fail": true}, and cannot start while the file down exists.
type eventsBed struct {
	*console
	cfg, base, secret string
	log, down         string
}

func startEventsBed(t *testing.T) *eventsBed {
	t.Helper()
	dir := t.TempDir()
	addr := freePort(t)
	b := &eventsBed{base: "http://" + addr, secret: "events test secret",
		log: filepath.Join(dir, "events.log"), down: filepath.Join(dir, "down")}
	cfg := fmt.Sprintf(`bot:
  name: chima
  prefix: "!"
adapters:
  - {name: shell, type: shell, room: general, user: alice}
store:
  path: %s
http:
  addr: %s
webhooks:
  github: {secret_env: CHIMA_TEST_HOOK_SECRET}
  retry: {attempts: 3, backoff: 50ms, max_backoff: 100ms}
plugins:
  - name: crashy
    path: %s
    max_restarts: 3
    settings: {events_log: %q, down_while: %q}
roles:
  admin: {users: ["shell:alice"], permissions: ["*"]}
`, filepath.Join(dir, "chima.db"), addr, filepath.Join(binDir, "plugins/crashy"), b.log, b.down)
	b.cfg = filepath.Join(dir, "chima.yaml")
	if err := os.WriteFile(b.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHIMA_TEST_HOOK_SECRET", b.secret)
	b.console = startConsole(t, b.cfg)
	b.waitPlugin(t, "running")
	return b
}

// plugin returns crashy's entry of /plugins.
func (b *eventsBed) plugin(t *testing.T) (state string, pid int) {
	t.Helper()
	resp, err := http.Get(b.base + "/plugins")
	if err != nil {
		return "", 0 // not up yet
	}
	defer resp.Body.Close()
	var list []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		PID   int    `json:"pid"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		if p.Name == "crashy" {
			return p.State, p.PID
		}
	}
	return "", 0
}

func (b *eventsBed) waitPlugin(t *testing.T, want string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, pid := b.plugin(t)
		if st == want {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("crashy is %q, never %s", st, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deliver posts a signed GitHub push delivery and returns the answer.
func (b *eventsBed) deliver(t *testing.T, id, body string) (int, string) {
	t.Helper()
	req, err := signedDelivery(b.base+"/webhooks/github", b.secret, "push", id, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("deliver %s: %v", id, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(answer))
}

// taken returns the lines crashy logged: "<delivery> <attempt>".
func (b *eventsBed) taken(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(b.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// events runs `chima events --json` with args.
func (b *eventsBed) events(t *testing.T, args ...string) []eventJSON {
	t.Helper()
	out, stderr, code := chima(t, append([]string{"events", "--config", b.cfg, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("chima events: exit %d: %s", code, stderr)
	}
	var list []eventJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("chima events --json: %v\n%s", err, out)
	}
	return list
}

// waitEvent waits until `chima events` shows delivery id in state.
func (b *eventsBed) waitEvent(t *testing.T, id, state string) eventJSON {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, e := range b.events(t) {
			if e.DeliveryID == id && e.State == state {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("chima events never showed %s %s: %+v", id, state, b.events(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric returns the value of one sample line of /metrics, "" when absent.
func (b *eventsBed) metric(t *testing.T, sample string) string {
	t.Helper()
	resp, err := http.Get(b.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// TestAWebhookForAPluginThatIsDownIsAnsweredAtOnceAndDeliveredWhenItIsBack
// kills crashy with kill -9 and keeps it from starting again; a signed push
// that arrives meanwhile is answered 202 and handed to crashy once it is
// back, once, also when GitHub delivers it again. A push crashy always
// refuses ends failed, in `chima events` and in /metrics.
func TestAWebhookForAPluginThatIsDownIsAnsweredAtOnceAndDeliveredWhenItIsBack(t *testing.T) {
	b := startEventsBed(t)
	_, pid := b.plugin(t)
	if err := os.WriteFile(b.down, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b.waitPlugin(t, "failed")

	code, answer := b.deliver(t, "push-while-down", `{"ref":"refs/heads/main"}`)
	if code != http.StatusAccepted || answer != "queued for 1 plugin: crashy" {
		t.Fatalf("a push for a plugin that is down was answered %d %q, want 202 queued", code, answer)
	}
	if e := b.waitEvent(t, "push-while-down", "pending"); e.Attempts != 0 || e.Event != "github:push" {
		t.Fatalf("while crashy is down, chima events shows %+v, want pending with no attempt", e)
	}
	if got := b.taken(t); got != nil {
		t.Fatalf("crashy took %v while it was down", got)
	}

	if err := os.Remove(b.down); err != nil {
		t.Fatal(err)
	}
	e := b.waitEvent(t, "push-while-down", "handled")
	if e.Attempts != 1 || e.FinishedAt == "" || e.LastError != "" {
		t.Fatalf("chima events shows %+v, want handled at the first attempt", e)
	}
	if got := b.taken(t); len(got) != 1 || got[0] != "push-while-down 1" {
		t.Fatalf("crashy took %v, want the push once, as attempt 1", got)
	}

	// GitHub delivers it again: acknowledged, not handed twice.
	code, answer = b.deliver(t, "push-while-down", `{"ref":"refs/heads/main"}`)
	if code != http.StatusOK || !strings.Contains(answer, "already received") {
		t.Fatalf("the redelivery was answered %d %q", code, answer)
	}
	// A delivery that fails is tried 3 times (webhooks.retry) and ends
	// failed; the redelivery above was not handed over meanwhile.
	if code, answer := b.deliver(t, "push-refused", `{"fail":true}`); code != http.StatusAccepted {
		t.Fatalf("a push to refuse was answered %d %q", code, answer)
	}
	failed := b.waitEvent(t, "push-refused", "failed")
	if failed.Attempts != 3 || !strings.Contains(failed.LastError, "refused on purpose") {
		t.Fatalf("chima events shows %+v, want failed after 3 attempts, saying why", failed)
	}
	if got := b.taken(t); len(got) != 1 {
		t.Fatalf("crashy took %v, want the first push only, once", got)
	}
	if only := b.events(t, "--state", "failed"); len(only) != 1 || only[0].DeliveryID != "push-refused" {
		t.Fatalf("chima events --state failed = %+v", only)
	}
	if got := b.metric(t, `chima_event_deliveries_total{outcome="failed",plugin="crashy"}`); got != "1" {
		t.Fatalf("/metrics: failed deliveries = %q, want 1", got)
	}
	if got := b.metric(t, `chima_event_deliveries_total{outcome="handled",plugin="crashy"}`); got != "1" {
		t.Fatalf("/metrics: handled deliveries = %q, want 1", got)
	}
	if got := b.metric(t, `chima_event_deliveries_pending`); got != "0" {
		t.Fatalf("/metrics: pending deliveries = %q, want 0", got)
	}
	// The table says the same, for people.
	out, _, _ := chima(t, "events", "--config", b.cfg)
	for _, want := range []string{"push-while-down", "github:push", "handled", "push-refused", "failed", "refused on purpose"} {
		if !strings.Contains(out, want) {
			t.Fatalf("chima events does not show %q:\n%s", want, out)
		}
	}
	// Each attempt is in the audit log, by the delivery it came from.
	audit, _, _ := chima(t, "audit", "--config", b.cfg, "--json", "--limit", "50")
	for _, want := range []string{`"via": "webhook github:push-while-down"`, `"via": "webhook github:push-refused"`, `"outcome": "retrying"`, `"outcome": "failed"`} {
		if !strings.Contains(audit, want) {
			t.Fatalf("chima audit lacks %s:\n%s", want, audit)
		}
	}
}

// TestBotKilledMidDeployHasTheDeployPluginToldThroughTheJobInterruptedCall
// kills the bot with kill -9 under a deploy. The deploy plugin no longer
// subscribes to the old chima:job_interrupted event: the next bot tells it
// through the JobInterrupted call, and its message reaches the thread and
// the app's notify room.
func TestBotKilledMidDeployHasTheDeployPluginToldThroughTheJobInterruptedCall(t *testing.T) {
	b := newCrashBed(t)
	c := startConsole(t, b.cfg)
	b.startSlowDeploy(t, c)
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	b.waitNoMarked(t, "after the bot was killed")

	c = startConsole(t, b.cfg)
	c.expect(t, "Deployment #1 of demo/slow")
	line := c.expect(t, "[ops] chima: Deployment #1 of demo/slow")
	if !strings.Contains(line, "interrupted by restart") {
		t.Fatalf("the notify room was told %q, want it to say the deploy was interrupted by restart", line)
	}
}

func TestEventsRefusesAnUnknownStateOrSinceAndSaysSoWhenNothingMatches(t *testing.T) {
	cfg := writeConfig(t, "")
	for _, args := range [][]string{{"--state", "lost"}, {"--since", "yesterday"}} {
		_, stderr, code := chima(t, append([]string{"events", "--config", cfg}, args...)...)
		if code == 0 || !strings.Contains(stderr, args[0]) {
			t.Fatalf("chima events %v: exit %d, stderr %q; want a usage error naming %s", args, code, stderr, args[0])
		}
	}
	out, stderr, code := chima(t, "events", "--config", cfg)
	if code != 0 || !strings.Contains(out, "No webhook deliveries match.") {
		t.Fatalf("chima events on an empty store: exit %d, %q %q", code, out, stderr)
	}
}
