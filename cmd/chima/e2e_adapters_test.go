package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"
	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/slacktest"

	"github.com/chimaops/chima/adapters/mattermost/mmtest"
	"github.com/chimaops/chima/sdk/sdktest"
)

// The adapters end-to-end tests run one built `chima run` with four
// adapters at once — the console on a pipe, Slack over the Events API
// against a local Slack Web API, the real Mattermost 6.7.2 when
// CHIMA_MATTERMOST_ENV names its env file, and generic webhooks — and the
// real hello and deploy plugins.

// Identities of the fake Slack workspace.
const (
	e2eSlackToken   = "xoxb-e2e-bot-token"
	e2eSlackSecret  = "e2e-signing-secret-8f742231b10e"
	e2eSlackBotID   = "UBOTE2E001"
	e2eSlackBotBot  = "BBOTE2E001"
	e2eSlackUser    = "UALICE0001"
	e2eSlackChannel = "C0DEPLOY01"
	e2eHookSecret   = "e2e hook secret"
	// e2eGuard bounds every wait of these tests; it asserts no duration.
	e2eGuard = 30 * time.Second
)

// slackCall is one Web API call the bot made, as received.
type slackCall struct {
	Method string
	Form   url.Values
	TS     string // the ts the fake gave a posted message
}

// shown is what a person sees of a posted or updated message: its text and
// the text of its blocks.
func (c slackCall) shown() string {
	s := c.Form.Get("text")
	if raw := c.Form.Get("blocks"); raw != "" {
		var bs slackgo.Blocks
		if err := json.Unmarshal([]byte(raw), &bs); err == nil {
			for _, b := range bs.BlockSet {
				switch b := b.(type) {
				case *slackgo.HeaderBlock:
					s += "\n" + b.Text.Text
				case *slackgo.SectionBlock:
					if b.Text != nil {
						s += "\n" + b.Text.Text
					}
					for _, f := range b.Fields {
						s += "\n" + f.Text
					}
				case *slackgo.RichTextBlock, *slackgo.ContextBlock:
					j, _ := json.Marshal(b)
					s += "\n" + string(j)
				}
			}
		}
	}
	return s
}

// buttons returns the Block Kit buttons of the call's message.
func (c slackCall) buttons() []*slackgo.ButtonBlockElement {
	var bs slackgo.Blocks
	if err := json.Unmarshal([]byte(c.Form.Get("blocks")), &bs); err != nil {
		return nil
	}
	var out []*slackgo.ButtonBlockElement
	for _, b := range bs.BlockSet {
		if a, ok := b.(*slackgo.ActionBlock); ok && a.Elements != nil {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slackgo.ButtonBlockElement); ok {
					out = append(out, btn)
				}
			}
		}
	}
	return out
}

// slackAPI is a local Slack Web API built on slack-go's slacktest server,
// with handlers of its own for what the bot calls (slacktest's auth.test,
// chat.postMessage and users.info do not know this workspace, and it has
// no chat.update); it records each call's form.
type slackAPI struct {
	srv *slacktest.Server

	mu    sync.Mutex
	calls []slackCall
	tsSeq int64
}

func newSlackAPI(t *testing.T) *slackAPI {
	f := &slackAPI{tsSeq: time.Now().Unix() * 1e6}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", f.handle("auth.test", func(url.Values) any {
			return map[string]any{"ok": true, "url": "https://e2e.slack.com/", "team": "E2E", "team_id": "T0E2E00001",
				"user": "chima", "user_id": e2eSlackBotID, "bot_id": e2eSlackBotBot}
		}))
		c.Handle("/chat.postMessage", f.handle("chat.postMessage", func(v url.Values) any {
			return map[string]any{"ok": true, "channel": v.Get("channel"), "ts": v.Get("ts")}
		}))
		c.Handle("/chat.update", f.handle("chat.update", func(v url.Values) any {
			return map[string]any{"ok": true, "channel": v.Get("channel"), "ts": v.Get("ts"), "text": v.Get("text")}
		}))
		c.Handle("/conversations.info", f.handle("conversations.info", func(v url.Values) any {
			ch := slackgo.Channel{}
			ch.ID, ch.Name, ch.IsChannel, ch.IsMember = v.Get("channel"), "deployment", true, true
			return map[string]any{"ok": true, "channel": ch}
		}))
		c.Handle("/users.info", f.handle("users.info", func(v url.Values) any {
			name := "alice"
			if v.Get("user") == e2eSlackBotID {
				name = "chima"
			}
			return map[string]any{"ok": true, "user": slackgo.User{ID: v.Get("user"), Name: name, RealName: name,
				Profile: slackgo.UserProfile{DisplayName: name}}}
		}))
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

// handle records a call of method and answers what answer makes of its
// form; a posted message gets a fresh ts (in the form's "ts" of the
// record and the answer).
func (f *slackAPI) handle(method string, answer func(url.Values) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		v, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		for k, vs := range r.URL.Query() {
			v[k] = vs
		}
		w.Header().Set("Content-Type", "application/json")
		token := v.Get("token")
		if token == "" {
			token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		if token != e2eSlackToken {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		f.mu.Lock()
		call := slackCall{Method: method, Form: v}
		if method == "chat.postMessage" {
			f.tsSeq++
			call.TS = fmt.Sprintf("%d.%06d", f.tsSeq/1e6, f.tsSeq%1e6)
			v.Set("ts", call.TS)
		}
		f.calls = append(f.calls, call)
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(answer(v))
	}
}

// recorded returns the calls of method so far.
func (f *slackAPI) recorded(method string) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slackCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// waitCall waits for a call of method whose shown text contains every
// want and returns it.
func (f *slackAPI) waitCall(t *testing.T, method string, want ...string) slackCall {
	t.Helper()
	deadline := time.Now().Add(e2eGuard)
	for {
	next:
		for _, c := range f.recorded(method) {
			for _, w := range want {
				if !strings.Contains(c.shown(), w) {
					continue next
				}
			}
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s with %q; the bot called:\n%s", method, want, f.dump())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// count is the number of calls of method whose shown text contains want.
func (f *slackAPI) count(method, want string) int {
	n := 0
	for _, c := range f.recorded(method) {
		if strings.Contains(c.shown(), want) {
			n++
		}
	}
	return n
}

func (f *slackAPI) dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, c := range f.calls {
		fmt.Fprintf(&b, "  %s channel=%s ts=%s thread_ts=%s %q\n", c.Method, c.Form.Get("channel"), c.Form.Get("ts"), c.Form.Get("thread_ts"), c.shown())
	}
	return b.String()
}

// slackSigned is Slack's POST of body to url, signed as Slack documents
// it: X-Slack-Signature is v0=HMAC-SHA256("v0:<timestamp>:<body>") keyed
// with the signing secret.
func slackSigned(t *testing.T, url, secret, contentType string, body []byte, header http.Header) *http.Response {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: e2eGuard}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// appMention is the Events API delivery of an app_mention of the bot by
// alice in the deploy channel, typed as text after the mention, as message
// ts; it returns the body.
func appMention(t *testing.T, eventID, ts, text string) []byte {
	t.Helper()
	inner, err := json.Marshal(slackevents.AppMentionEvent{Type: string(slackevents.AppMention), User: e2eSlackUser,
		Text: "<@" + e2eSlackBotID + "> " + text, TimeStamp: ts, Channel: e2eSlackChannel, EventTimeStamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(inner)
	body, err := json.Marshal(slackevents.EventsAPICallbackEvent{Type: slackevents.CallbackEvent, TeamID: "T0E2E00001",
		APIAppID: "A0E2E00001", InnerEvent: &raw, EventID: eventID, EventTime: int(time.Now().Unix())})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// slackTS makes a message ts of now, unique by n.
func slackTS(n int) string { return fmt.Sprintf("%d.%06d", time.Now().Unix(), 100+n) }

// notifierSink is an httptest receiver of a webhook notifier's posts.
type notifierSink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts []map[string]any
}

func newNotifierSink(t *testing.T) *notifierSink {
	s := &notifierSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.posts = append(s.posts, v)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// wait waits for a post whose text contains want.
func (s *notifierSink) wait(t *testing.T, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(e2eGuard)
	for {
		s.mu.Lock()
		for _, p := range s.posts {
			if text, _ := p["text"].(string); strings.Contains(text, want) {
				s.mu.Unlock()
				return p
			}
		}
		all, _ := json.Marshal(s.posts)
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the notifier got no post with %q; it got %s", want, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// realMattermost is the real Mattermost server of CHIMA_MATTERMOST_ENV:
// alice posts there with her own token, as a person would.
type realMattermost struct {
	env   map[string]string
	alice *model.Client4
}

// loadMattermost reads the env file that real-mattermost.sh wrote and lets
// the server post integration actions to loopback; it returns nil and why
// when there is none.
func loadMattermost() (*realMattermost, string) {
	env, err := mmtest.RealEnv("MM_URL", "MM_TEAM_NAME", "MM_CHANNEL_ID", "MM_USER_ID", "MM_BOT_USER_ID", "MM_BOT_USERNAME", "MM_BOT_TOKEN", "MM_USER_TOKEN", "MM_ADMIN_USERNAME", "MM_ADMIN_PASSWORD")
	if err != nil {
		return nil, err.Error()
	}
	admin := model.NewAPIv4Client(env["MM_URL"])
	if _, _, err := admin.Login(env["MM_ADMIN_USERNAME"], env["MM_ADMIN_PASSWORD"]); err != nil {
		return nil, "admin login: " + err.Error()
	}
	// Button clicks make the server post to the bot on 127.0.0.1, which it
	// refuses unless allowed.
	allowed := "127.0.0.1 localhost"
	if _, _, err := admin.PatchConfig(&model.Config{ServiceSettings: model.ServiceSettings{AllowedUntrustedInternalConnections: &allowed}}); err != nil {
		return nil, "allowing integrations on loopback: " + err.Error()
	}
	alice := model.NewAPIv4Client(env["MM_URL"])
	alice.SetToken(env["MM_USER_TOKEN"])
	return &realMattermost{env: env, alice: alice}, ""
}

// post is alice's post of text in the deploys channel.
func (m *realMattermost) post(t *testing.T, text string) *model.Post {
	t.Helper()
	p, _, err := m.alice.CreatePost(&model.Post{ChannelId: m.env["MM_CHANNEL_ID"], Message: text})
	if err != nil {
		t.Fatalf("alice posting %q: %v", text, err)
	}
	return p
}

// mmShown is what a person sees of a post: its message and its
// attachments' text.
func mmShown(p *model.Post) string {
	s := p.Message
	for _, a := range p.Attachments() {
		s += "\n" + strings.Join([]string{a.Pretext, a.Title, a.Text, a.Fallback}, "\n")
		for _, f := range a.Fields {
			s += fmt.Sprintf("\n%s: %v", f.Title, f.Value)
		}
		for _, act := range a.Actions {
			s += "\n[" + act.Name + "]"
		}
	}
	return s
}

// botPosts returns the bot's posts in the thread rooted at root, oldest
// first.
func (m *realMattermost) botPosts(t *testing.T, root string) []*model.Post {
	t.Helper()
	pl, _, err := m.alice.GetPostThread(root, "", false)
	if err != nil {
		t.Fatalf("thread of %s: %v", root, err)
	}
	var out []*model.Post
	for _, id := range pl.Order {
		if p := pl.Posts[id]; p != nil && p.UserId == m.env["MM_BOT_USER_ID"] {
			out = append(out, p)
		}
	}
	// Order is newest first.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// waitReply waits for the bot's post in the thread of root that shows want.
func (m *realMattermost) waitReply(t *testing.T, root, want string) *model.Post {
	t.Helper()
	deadline := time.Now().Add(e2eGuard)
	for {
		var seen []string
		for _, p := range m.botPosts(t, root) {
			if strings.Contains(mmShown(p), want) {
				return p
			}
			seen = append(seen, fmt.Sprintf("%q", mmShown(p)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no post of the bot with %q in the thread of %s; it has %s", want, root, strings.Join(seen, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adaptersBot is one running `chima run` with every adapter.
type adaptersBot struct {
	*console
	stderr *syncBuf
	addr   string
	slack  *slackAPI
	sink   *notifierSink
	mm     *realMattermost // nil without a real Mattermost
	mmWhy  string
	marks  string
	sha    string
	cfg    string // the config file; start runs the bot on it
}

// adaptersSetup changes what writeAdaptersConfig writes.
type adaptersSetup struct {
	// mmURL is the Mattermost URL the bot is given ("": the server's),
	// say a proxy between bot and server.
	mmURL string
	// mmExtra are lines added to the Mattermost adapter's entry
	// ("ping_interval: 1s").
	mmExtra []string
}

// adaptersRepo is a real repository whose deploy script prints a few lines
// over a couple of seconds (so that progress is shown, then edited) and,
// on branch slow, then sleeps for ten minutes (for cancel). The script
// adds a line to marks/<deployment id> each time it starts.
func adaptersRepo(t *testing.T) (repo, marks, sha string) {
	t.Helper()
	dir := t.TempDir()
	repo, marks = filepath.Join(dir, "repo"), filepath.Join(dir, "marks")
	for _, d := range []string{filepath.Join(repo, "script"), marks} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf(`#!/bin/sh
echo started >> %s/$DEPLOYMENT_ID
echo "deploying $DEPLOY_REF to $DEPLOY_ENV"
for i in 1 2 3; do echo "step $i"; sleep 1; done
if [ -f slow ]; then echo "waiting"; sleep 600; fi
`, marks)
	if err := os.WriteFile(filepath.Join(repo, "script/deploy"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := gitIn(t, repo, dir)
	run("init", "-q")
	run("add", ".")
	run("commit", "-q", "-m", "v1")
	sha = run("rev-parse", "HEAD")
	run("checkout", "-q", "-b", "slow")
	if err := os.WriteFile(filepath.Join(repo, "slow"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "slow")
	run("commit", "-q", "-m", "slow")
	run("checkout", "-q", "main")
	return repo, marks, sha
}

// startAdaptersBot writes the config and starts the bot, then waits until
// its HTTP server answers and its Slack and Mattermost adapters are
// connected.
func startAdaptersBot(t *testing.T) *adaptersBot {
	t.Helper()
	b := writeAdaptersConfig(t, adaptersSetup{})
	b.start(t)
	return b
}

// writeAdaptersConfig makes the fakes, the repository and the config of a
// bot with every adapter, without starting it: start does, as often as a
// test likes, on the same store.
func writeAdaptersConfig(t *testing.T, setup adaptersSetup) *adaptersBot {
	t.Helper()
	sdktest.NeedTool(t, "git")
	b := &adaptersBot{addr: freePort(t), slack: newSlackAPI(t), sink: newNotifierSink(t)}
	b.mm, b.mmWhy = loadMattermost()
	repo, marks, sha := adaptersRepo(t)
	b.marks, b.sha = marks, sha

	t.Setenv("CHIMA_E2E_SLACK_TOKEN", e2eSlackToken)
	t.Setenv("CHIMA_E2E_SLACK_SECRET", e2eSlackSecret)
	t.Setenv("CHIMA_E2E_HOOK_SECRET", e2eHookSecret)
	t.Setenv("CHIMA_E2E_NOTIFY_URL", b.sink.srv.URL+"/notify")
	adapters := fmt.Sprintf(`  - name: slack
    type: slack
    bot_token_env: CHIMA_E2E_SLACK_TOKEN
    signing_secret_env: CHIMA_E2E_SLACK_SECRET
    api_url: %s
  - name: hooks
    type: webhook
    inbound: [{name: ci, secret_env: CHIMA_E2E_HOOK_SECRET}]
    notifiers: [{name: ops, preset: json, url_env: CHIMA_E2E_NOTIFY_URL}]
`, b.slack.srv.GetAPIURL())
	if b.mm != nil {
		t.Setenv("CHIMA_E2E_MM_TOKEN", b.mm.env["MM_BOT_TOKEN"])
		mmURL := b.mm.env["MM_URL"]
		if setup.mmURL != "" {
			mmURL = setup.mmURL
		}
		adapters += fmt.Sprintf(`  - name: mattermost
    type: mattermost
    url: %s
    token_env: CHIMA_E2E_MM_TOKEN
    team: %s
    actions_url: http://%s
`, mmURL, b.mm.env["MM_TEAM_NAME"], b.addr)
		for _, line := range setup.mmExtra {
			adapters += "    " + line + "\n"
		}
	}
	cfg, _, _ := deployConfig(t, fmt.Sprintf("http:\n  addr: %s\n  base_url: http://%s\n", b.addr, b.addr),
		fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging", "edge"],
		"notify_rooms": ["hooks:ops"]}}`, repo), nil)
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(text), "  - {name: shell, type: shell, room: general, user: alice}\n",
		"  - {name: shell, type: shell, room: general, user: alice}\n"+adapters, 1)
	// Roles name people by user id: the policy matches ids only.
	users := `"shell:alice", "slack:` + e2eSlackUser + `"`
	if b.mm != nil {
		users += `, "mattermost:` + b.mm.env["MM_USER_ID"] + `"`
	}
	s = strings.Replace(s, `users: ["shell:alice"]`, `users: [`+users+`]`, 1)
	if s == string(text) {
		t.Fatal("the base config changed: cannot add the adapters")
	}
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	b.cfg = cfg
	return b
}

// start starts the bot on b.cfg, with a log of its own, then waits until
// its HTTP server answers and its Slack and Mattermost adapters are
// connected. A bot started before must have ended.
func (b *adaptersBot) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "chima"), "run", "--config", b.cfg, "--log-level", "debug")
	in, err := cmd.StdinPipe() // kept open: the console runs until the end
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuf{}
	b.stderr = stderr
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("the bot's log (pid %d):\n%s", cmd.Process.Pid, stderr.String())
		}
	})
	b.console = &console{cmd: cmd, in: in, out: bufio.NewScanner(out)}

	// The HTTP server listens once the bot has started.
	deadline := time.Now().Add(e2eGuard)
	for {
		resp, err := http.Get(b.url("/healthz"))
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot's HTTP server never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.waitLog(t, "slack: connected")
	if b.mm != nil {
		// The server delivers posts to connected clients only.
		b.waitLog(t, "mattermost: websocket connected")
	}
}

// waitLog waits until the bot's log has a line with want.
func (b *adaptersBot) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(e2eGuard)
	for !strings.Contains(b.stderr.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the bot never logged %q", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// needMattermost skips (fails under CI=true) a subtest that needs the real
// Mattermost when there is none.
func (b *adaptersBot) needMattermost(t *testing.T) *realMattermost {
	t.Helper()
	if b.mm == nil {
		sdktest.Missing(t, "no real Mattermost: %s (start one with WORK=/tmp/mm-real bash /work/shared/tools/real-mattermost.sh up and set CHIMA_MATTERMOST_ENV=/tmp/mm-real/env)", b.mmWhy)
	}
	return b.mm
}

func (b *adaptersBot) url(path string) string { return "http://" + b.addr + path }

// hook posts body to the inbound hook ci, signed with secret, and returns
// the status and the decoded answer.
func (b *adaptersBot) hook(t *testing.T, secret string, body []byte) (int, map[string]any) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, b.url("/hooks/ci"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Chima-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := (&http.Client{Timeout: e2eGuard}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, v
}

func TestAdaptersAllRunInOneBotProcess(t *testing.T) {
	b := startAdaptersBot(t)
	events := b.url("/slack/events")

	t.Run("the console answers beside the other adapters", func(t *testing.T) {
		b.say(t, "chima hello console")
		b.expect(t, "Hello, console!")
	})

	t.Run("a signed Slack mention is answered in its thread, once, and a forged one is refused", func(t *testing.T) {
		ts := slackTS(1)
		body := appMention(t, "Ev0E2EHELLO1", ts, "hello e2e")
		if resp := slackSigned(t, events, e2eSlackSecret, "application/json", body, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("signed event answered %d", resp.StatusCode)
		}
		reply := b.slack.waitCall(t, "chat.postMessage", "Hello, e2e!")
		if got := reply.Form.Get("channel"); got != e2eSlackChannel {
			t.Errorf("reply posted to %q, want %q", got, e2eSlackChannel)
		}
		if got := reply.Form.Get("thread_ts"); got != ts {
			t.Errorf("reply thread_ts = %q, want the mention's ts %q", got, ts)
		}
		// Slack retries the same event (same event_id) when it thinks the
		// first delivery failed.
		retry := http.Header{"X-Slack-Retry-Num": {"1"}, "X-Slack-Retry-Reason": {"http_timeout"}}
		if resp := slackSigned(t, events, e2eSlackSecret, "application/json", body, retry); resp.StatusCode != http.StatusOK {
			t.Fatalf("retried event answered %d", resp.StatusCode)
		}
		// Forged: signed with another secret, or not signed at all.
		forged := appMention(t, "Ev0E2EFORGED", slackTS(2), "hello forged")
		if resp := slackSigned(t, events, "not the secret", "application/json", forged, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("event with a wrong signature answered %d, want 401", resp.StatusCode)
		}
		resp, err := http.Post(events, "application/json", bytes.NewReader(forged))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("unsigned event answered %d, want 401", resp.StatusCode)
		}
		// A later event from the same person in the same room is handled
		// after those: once it is answered, they would have been too.
		later := appMention(t, "Ev0E2ELATER1", slackTS(3), "hello later")
		if resp := slackSigned(t, events, e2eSlackSecret, "application/json", later, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("signed event answered %d", resp.StatusCode)
		}
		b.slack.waitCall(t, "chat.postMessage", "Hello, later!")
		if n := b.slack.count("chat.postMessage", "Hello, e2e!"); n != 1 {
			t.Errorf("the retried event was answered %d times, want once", n)
		}
		if n := b.slack.count("chat.postMessage", "forged"); n != 0 {
			t.Errorf("a forged event was answered:\n%s", b.slack.dump())
		}
	})

	t.Run("a mention on the real Mattermost is answered in its thread", func(t *testing.T) {
		mm := b.needMattermost(t)
		root := mm.post(t, "@"+mm.env["MM_BOT_USERNAME"]+" hello mattermost")
		reply := mm.waitReply(t, root.Id, "Hello, mattermost!")
		if reply.RootId != root.Id {
			t.Errorf("reply root = %q, want alice's post %q", reply.RootId, root.Id)
		}
	})

	t.Run("a signed webhook gets its reply in the response and a wrong signature is refused", func(t *testing.T) {
		body := []byte(`{"user": "carol", "room": "ci", "text": "hello webhook"}`)
		code, answer := b.hook(t, e2eHookSecret, body)
		if text, _ := answer["text"].(string); code != http.StatusOK || !strings.Contains(text, "Hello, webhook!") {
			t.Fatalf("signed hook answered %d %v, want 200 with the reply", code, answer)
		}
		forged := []byte(`{"user": "carol", "room": "ci", "text": "hello forged hook"}`)
		if code, answer := b.hook(t, "not the secret", forged); code != http.StatusUnauthorized {
			t.Fatalf("hook with a wrong signature answered %d %v, want 401", code, answer)
		}
		// The next signed request is answered with its own reply only:
		// nothing of the forged one ran.
		code, answer = b.hook(t, e2eHookSecret, []byte(`{"user": "carol", "room": "ci", "text": "hello again"}`))
		if text, _ := answer["text"].(string); code != http.StatusOK || !strings.Contains(text, "Hello, again!") || strings.Contains(text, "forged") {
			t.Fatalf("signed hook answered %d %v", code, answer)
		}
	})

	t.Run("a deploy from Slack edits one progress message, reports its end in the thread and notifies the webhook", func(t *testing.T) {
		ts := slackTS(10)
		body := appMention(t, "Ev0E2EDEPLOY", ts, "deploy demo to staging")
		if resp := slackSigned(t, events, e2eSlackSecret, "application/json", body, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("signed event answered %d", resp.StatusCode)
		}
		end := b.slack.waitCall(t, "chat.postMessage", "Deployed demo/main ("+b.sha[:7]+") to staging")
		if got := end.Form.Get("thread_ts"); got != ts {
			t.Errorf("the end was posted in thread %q, want the command's %q", got, ts)
		}
		// The progress message is posted with what the deploy said by
		// then (under load, maybe no step yet), then edited.
		const log = "chima: deployment #1 of demo/main to staging"
		progress := b.slack.waitCall(t, "chat.postMessage", log)
		if got := progress.Form.Get("thread_ts"); got != ts {
			t.Errorf("progress posted in thread %q, want the command's %q", got, ts)
		}
		if n := b.slack.count("chat.postMessage", log); n != 1 {
			t.Errorf("progress was posted %d times, want once then edited:\n%s", n, b.slack.dump())
		}
		var edits []slackCall
		for _, c := range b.slack.recorded("chat.update") {
			if c.Form.Get("ts") == progress.TS {
				edits = append(edits, c)
			}
		}
		if len(edits) == 0 || !strings.Contains(edits[len(edits)-1].shown(), "step 3") {
			t.Errorf("the progress message %s was not edited to the last step:\n%s", progress.TS, b.slack.dump())
		}
		b.sink.wait(t, "is deploying demo/main to staging")
		b.sink.wait(t, "Deployed demo/main ("+b.sha[:7]+") to staging")
	})

	t.Run("a deploy from the real Mattermost edits one progress post", func(t *testing.T) {
		mm := b.needMattermost(t)
		root := mm.post(t, "@"+mm.env["MM_BOT_USERNAME"]+" deploy demo to edge")
		progress := mm.waitReply(t, root.Id, "step 1")
		first := mmShown(progress)
		mm.waitReply(t, root.Id, "Deployed demo/main ("+b.sha[:7]+") to edge")
		got, _, err := mm.alice.GetPost(progress.Id, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.EditAt == 0 || mmShown(got) == first || !strings.Contains(mmShown(got), "step 3") {
			t.Errorf("progress post %s not edited to the last step: edit_at %d, first %q, now %q", progress.Id, got.EditAt, first, mmShown(got))
		}
		n := 0
		for _, p := range mm.botPosts(t, root.Id) {
			if strings.Contains(mmShown(p), "step ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the thread has %d progress posts, want one, edited", n)
		}
		b.sink.wait(t, "Deployed demo/main ("+b.sha[:7]+") to edge")
	})

	t.Run("the Cancel button of a deploy's progress on Slack cancels it", func(t *testing.T) {
		ts := slackTS(20)
		body := appMention(t, "Ev0E2ESLOW01", ts, "deploy demo/slow to staging")
		if resp := slackSigned(t, events, e2eSlackSecret, "application/json", body, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("signed event answered %d", resp.StatusCode)
		}
		progress := b.slack.waitCall(t, "chat.postMessage", "Deploying…", "of demo/slow to staging")
		var cancel *slackgo.ButtonBlockElement
		for _, btn := range progress.buttons() {
			if btn.Text != nil && btn.Text.Text == "Cancel" {
				cancel = btn
			}
		}
		if cancel == nil || cancel.ActionID == "" || cancel.Value == "" {
			t.Fatalf("the progress message has no Cancel button with an action id and value: %s", progress.Form.Get("blocks"))
		}
		// Alice clicks it, as Slack delivers a click: a signed form whose
		// payload is the block_actions callback.
		cb := slackgo.InteractionCallback{
			Type:      slackgo.InteractionTypeBlockActions,
			TriggerID: "trig.e2e",
			Team:      slackgo.Team{ID: "T0E2E00001"},
			User:      slackgo.User{ID: e2eSlackUser, Name: "alice"},
			Container: slackgo.Container{Type: "message", MessageTs: progress.TS, ChannelID: e2eSlackChannel, ThreadTs: ts},
			Message:   slackgo.Message{Msg: slackgo.Msg{Timestamp: progress.TS, ThreadTimestamp: ts, BotID: e2eSlackBotBot}},
			APIAppID:  "A0E2E00001",
			ActionCallback: slackgo.ActionCallbacks{BlockActions: []*slackgo.BlockAction{
				{ActionID: cancel.ActionID, BlockID: "b1", Type: "button", Value: cancel.Value, ActionTs: slackTS(21)},
			}},
		}
		cb.Channel.ID = e2eSlackChannel
		payload, err := json.Marshal(cb)
		if err != nil {
			t.Fatal(err)
		}
		form := []byte(url.Values{"payload": {string(payload)}}.Encode())
		if resp := slackSigned(t, b.url("/slack/interactive"), e2eSlackSecret, "application/x-www-form-urlencoded", form, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("signed click answered %d", resp.StatusCode)
		}
		end := b.slack.waitCall(t, "chat.postMessage", "was cancelled after")
		if got := end.Form.Get("thread_ts"); got != ts || !strings.Contains(end.shown(), "demo/slow") {
			t.Errorf("the cancel was reported as %q in thread %q, want the deploy of demo/slow in %q", end.shown(), got, ts)
		}
		// A forged click is refused.
		if resp := slackSigned(t, b.url("/slack/interactive"), "not the secret", "application/x-www-form-urlencoded", form, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a click with a wrong signature answered %d, want 401", resp.StatusCode)
		}
	})

	t.Run("the Cancel button of a deploy's progress on the real Mattermost cancels it", func(t *testing.T) {
		mm := b.needMattermost(t)
		root := mm.post(t, "@"+mm.env["MM_BOT_USERNAME"]+" deploy demo/slow to edge")
		progress := mm.waitReply(t, root.Id, "Deploying…")
		var cancel *model.PostAction
		for _, a := range progress.Attachments() {
			for _, act := range a.Actions {
				if act.Name == "Cancel" {
					cancel = act
				}
			}
		}
		if cancel == nil || cancel.Id == "" {
			t.Fatalf("the progress post has no Cancel button: %s", mmShown(progress))
		}
		// Alice presses it through the server, which posts the
		// integration request (its URL, which the server keeps from
		// clients, is the bot's actions_url) to the bot.
		if _, err := mm.alice.DoPostAction(progress.Id, cancel.Id); err != nil {
			t.Fatalf("alice pressing Cancel: %v", err)
		}
		mm.waitReply(t, root.Id, "was cancelled after")
	})

	t.Run("healthz answers 200 while every adapter runs", func(t *testing.T) {
		if code, body := healthz(t, b.addr); code != http.StatusOK {
			t.Fatalf("/healthz = %d %q", code, body)
		}
	})

	t.Run("SIGTERM stops the bot cleanly and leaves no plugin process", func(t *testing.T) {
		plugins := childPIDs(t, b.cmd.Process.Pid)
		if len(plugins) == 0 {
			t.Fatal("no plugin process runs")
		}
		if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, _ = io.Copy(io.Discard, scannerRest(b.out))
			done <- b.cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("chima run after SIGTERM: %v", err)
			}
		case <-time.After(e2eGuard):
			t.Fatal("chima run did not stop on SIGTERM")
		}
		waitGone(t, plugins)
	})
}
