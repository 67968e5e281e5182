package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"
)

// webhookBot is a running `chima run` with the console, the HTTP server, the
// GitHub webhook and the deploy plugin in GitHub mode, whose app announces
// in its bare allowed room "deployment".
type webhookBot struct {
	*console
	cfg     string
	hookURL string
	secret  string
	sha     string
	gh      *githubAPI
}

func startWebhookBot(t *testing.T) *webhookBot {
	t.Helper()
	repo, _, sha := gitRepo(t)
	const secret = "flood test secret"
	gh := newGitHubAPI(t, sha, secret)
	addr := freePort(t)
	cfg, _, _ := deployConfig(t, fmt.Sprintf("http:\n  addr: %s\nwebhooks:\n  github: {secret_env: CHIMA_TEST_HOOK_SECRET}\n  retry: {attempts: 2, backoff: 50ms}\n", addr),
		`{"demo": {"provider": "shell", "repository": "oursky/demo",
		"environments": ["edge"], "allowed_rooms": ["deployment"]}}`,
		[]string{"secrets: {GITHUB_TOKEN: CHIMA_TEST_GITHUB_TOKEN}"},
		"github_api_url: "+gh.srv.URL+"/", "github_clone_url: "+repo)
	t.Setenv("CHIMA_TEST_HOOK_SECRET", secret)
	t.Setenv("CHIMA_TEST_GITHUB_TOKEN", "gh-token")
	w := &webhookBot{console: startConsole(t, cfg), cfg: cfg, hookURL: "http://" + addr + "/webhooks/github", secret: secret, sha: sha, gh: gh}
	// The bot is up once its HTTP server answers.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot's HTTP server never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return w
}

// deliver posts a GitHub delivery of body, signed with the hook's secret,
// and returns the status and body of the answer.
func (w *webhookBot) deliver(t *testing.T, event, id string, body []byte) (int, string) {
	t.Helper()
	req, err := signedDelivery(w.hookURL, w.secret, event, id, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("deliver %s %s: %v", event, id, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(answer))
}

// procStatus reads one "kB" field of /proc/<pid>/status, in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// externalDeployment is GitHub's deployment webhook for a deployment of
// oursky/demo made on GitHub, not from chat: its payload names no bot.
func externalDeployment(t *testing.T, id int64, sha string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../core/webhook/testdata/github/deployment.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev github.DeploymentEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev.Deployment.ID, ev.Deployment.SHA, ev.Deployment.Ref = github.Int64(id), github.String(sha), github.String("main")
	ev.Deployment.Environment, ev.Deployment.Task = github.String("edge"), github.String("deploy")
	ev.Deployment.Payload = json.RawMessage(`{}`)
	ev.Deployment.Creator = &github.User{Login: github.String("octocat")}
	ev.Repo.FullName = github.String("oursky/demo")
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestWebhookIntakeHoldsUpAgainstFloodsAndLosesNothing runs one bot through
// a flood of forged 24 MiB bodies (its memory measured from /proc), then
// deliveries it must refuse, or keep until they end failed visibly, then a
// deployment made on GitHub that must reach its room.
func TestWebhookIntakeHoldsUpAgainstFloodsAndLosesNothing(t *testing.T) {
	w := startWebhookBot(t)
	pid := w.cmd.Process.Pid

	t.Run("a flood of forged 24 MiB bodies grows the bot by at most 64 MiB", func(t *testing.T) {
		const senders, size = 16, 24 << 20
		body := bytes.Repeat([]byte("x"), size)
		// Start the peak where the bot is now: writing 5 to clear_refs
		// resets VmHWM to the current RSS.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			t.Fatalf("reset the bot's peak RSS: %v", err)
		}
		before := procStatus(t, pid, "VmRSS")
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[string]int{}
		)
		client := &http.Client{Timeout: 60 * time.Second}
		for i := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, w.hookURL, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("flood-%d", i))
				req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
				outcome := "connection closed unread"
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					outcome = strconv.Itoa(resp.StatusCode)
				}
				mu.Lock()
				codes[outcome]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		peak := procStatus(t, pid, "VmHWM")
		after := procStatus(t, pid, "VmRSS")
		growth := peak - before
		t.Logf("webhook flood: %d concurrent %d MiB bodies with bad signatures: answers %v; bot RSS %.1f MiB before, peak %.1f MiB (+%.1f MiB), %.1f MiB after",
			senders, size>>20, codes, float64(before)/(1<<20), float64(peak)/(1<<20), float64(growth)/(1<<20), float64(after)/(1<<20))
		if codes["202"]+codes["200"] > 0 {
			t.Fatalf("forged deliveries were acknowledged: %v", codes)
		}
		if codes["401"] == 0 {
			t.Fatalf("no forged body was read and refused: %v", codes)
		}
		if growth > 64<<20 {
			t.Fatalf("the flood grew the bot's RSS by %.1f MiB, more than 64 MiB", float64(growth)/(1<<20))
		}
		// The bot still takes a real delivery after the flood.
		if code, answer := w.deliver(t, "push", "after-flood-1", []byte(`{"ref":"refs/heads/main"}`)); code != http.StatusAccepted {
			t.Fatalf("a signed delivery after the flood answered %d %q", code, answer)
		}
	})

	t.Run("malformed JSON is refused, every time, and not kept", func(t *testing.T) {
		for attempt := 1; attempt <= 2; attempt++ {
			code, answer := w.deliver(t, "deployment", "bad-json-1", []byte(`{"deployment": {"id": 4243,`))
			if code != http.StatusUnprocessableEntity || !strings.Contains(answer, "not valid JSON") {
				t.Fatalf("delivery %d answered %d %q, want 422 saying it is not valid JSON", attempt, code, answer)
			}
		}
	})

	t.Run("a delivery the plugin refuses is acknowledged, retried, and ends failed visibly", func(t *testing.T) {
		body := `{"deployment": "not an object", "repository": {"full_name": "oursky/demo"}}`
		if code, answer := w.deliver(t, "deployment", "bad-shape-1", []byte(body)); code != http.StatusAccepted || answer != "queued for 1 plugin: deploy" {
			t.Fatalf("delivery answered %d %q, want 202 queued for deploy", code, answer)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, _, _ := chima(t, "events", "--config", w.cfg, "--state", "failed", "--plugin", "deploy", "--json")
			var list []eventJSON
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("chima events --json: %v\n%s", err, out)
			}
			if len(list) == 1 && list[0].DeliveryID == "bad-shape-1" {
				if list[0].Attempts != 2 || !strings.Contains(list[0].LastError, "plugin deploy refused the event") {
					t.Fatalf("the failed delivery shows %+v, want 2 attempts and the plugin's refusal", list[0])
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the refused delivery never ended failed: %s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// GitHub's redelivery hands it to the plugin again.
		if code, answer := w.deliver(t, "deployment", "bad-shape-1", []byte(body)); code != http.StatusAccepted || !strings.Contains(answer, "queued again") {
			t.Fatalf("redelivery of a failed delivery answered %d %q", code, answer)
		}
	})

	t.Run("a deployment made on GitHub is announced in its room", func(t *testing.T) {
		body := externalDeployment(t, 4242, w.sha)
		if code, answer := w.deliver(t, "deployment", "gh-made-4242", body); code != http.StatusAccepted {
			t.Fatalf("deployment webhook answered %d %q", code, answer)
		}
		w.expect(t, "[deployment] chima: octocat is deploying demo/main to edge (#1)")
		w.expect(t, "[deployment] chima: Deployed demo/main ("+w.sha[:7]+") to edge")
		// Its redelivery is acknowledged and runs nothing again.
		if code, answer := w.deliver(t, "deployment", "gh-made-4242", body); code != http.StatusOK || answer != "already received: not handed again" {
			t.Fatalf("redelivery answered %d %q", code, answer)
		}
	})
}

func TestANotifyRoomNoAdapterCanReachIsReportedAtStartWithFileAndKey(t *testing.T) {
	cfg, appsFile, _ := deployConfig(t, "", `{"demo": {"provider": "shell", "repository": "oursky/demo",
		"environments": ["edge"], "notify_rooms": ["deployment", "slack:ops"]}}`, nil)
	_, stderr, _ := chima(t, "send", "--config", cfg, "chima hello world")
	want := appsFile + `: demo.notify_rooms[1]: "slack:ops": the bot runs no slack adapter (it runs shell)`
	if !strings.Contains(stderr, want) {
		t.Fatalf("stderr does not report the unreachable room:\n%s\nwant a line with:\n%s", stderr, want)
	}
	if strings.Contains(stderr, "notify_rooms[0]") {
		t.Fatalf("the bare room, which means the only adapter, was reported:\n%s", stderr)
	}
}
