package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

const (
	ciSecret     = "ci-hmac-secret-3f9a"
	bearerSecret = "bearer-token-77c1"
)

// bot plays the core: it records each message and answers "pong: <text>" to
// the message's room and thread, as a reply of the router would.
type bot struct {
	a    *Adapter
	mu   sync.Mutex
	msgs []chat.Message
	got  chan chat.Message
	// answers is how many replies each message gets (default 1).
	answers int
	// delay comes before the replies, so that concurrent requests overlap.
	delay time.Duration
}

func (b *bot) HandleMessage(ctx context.Context, m chat.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.got <- m
	n := b.answers
	if n == 0 {
		n = 1
	}
	go func() {
		time.Sleep(b.delay)
		for i := range n {
			text := "pong: " + m.Text
			if i > 0 {
				text += " (" + strconv.Itoa(i) + ")"
			}
			if _, err := b.a.Send(ctx, chat.MessageRef{Adapter: m.Ref.Adapter, Room: m.Ref.Room, ThreadID: m.Ref.ThreadID}, chat.Output{Text: text}); err != nil {
				b.a.log.Error("test bot: send failed", "error", err)
			}
		}
	}()
}

func (b *bot) HandleInteraction(context.Context, chat.Interaction) {}

func (b *bot) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// runAdapter builds the adapter from c, runs it with a bot, and mounts its
// routes.
func runAdapter(t *testing.T, c Config, env map[string]string) (*Adapter, *bot, *httptest.Server) {
	t.Helper()
	a, err := New(testSetup(env, nil), c)
	if err != nil {
		t.Fatal(err)
	}
	b := &bot{a: a, got: make(chan chat.Message, 100)}
	srv := mount(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx, b); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return a, b, srv
}

func inboundConfig() (Config, map[string]string) {
	quick := 100 * time.Millisecond
	return Config{Inbound: []HookConfig{
			{Name: "ci", SecretEnv: "CI_SECRET", Room: "deployment", User: "ci-bot", Quiet: quick, Wait: chattest.Guard},
			{Name: "tok", SecretEnv: "TOK_SECRET", Auth: "bearer", Quiet: quick, Wait: chattest.Guard},
		}}, map[string]string{
			"CI_SECRET": ciSecret, "TOK_SECRET": bearerSecret,
		}
}

type request struct {
	path    string
	body    string
	headers map[string]string
}

func (rq request) do(t *testing.T, base string) (int, Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+rq.path, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range rq.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r Response
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("response %q: %v", raw, err)
		}
	}
	return resp.StatusCode, r
}

func signed(body string) map[string]string {
	return map[string]string{SignatureHeader: Sign([]byte(ciSecret), []byte(body), 0)}
}

func signedAt(body string, ts time.Time) map[string]string {
	return map[string]string{
		SignatureHeader: Sign([]byte(ciSecret), []byte(body), ts.Unix()),
		TimestampHeader: strconv.FormatInt(ts.Unix(), 10),
	}
}

func TestInbound(t *testing.T) {
	ping := `{"text": "ping"}`
	now := time.Now()
	tests := []struct {
		name      string
		req       request
		wantCode  int
		wantReply string // "" when nothing may run
		wantRoom  string
		wantUser  string
	}{
		{"a good HMAC signature runs the text and answers with the reply", request{"/hooks/ci", ping, signed(ping)}, 200, "pong: ping", "deployment", "ci-bot"},
		{"a signed timestamp within five minutes is taken", request{"/hooks/ci", ping, signedAt(ping, now.Add(-4*time.Minute))}, 200, "pong: ping", "deployment", "ci-bot"},
		{"the body's room and user win over the hook's", request{"/hooks/ci", `{"room":"ops","user":"alice","text":"ping"}`, signed(`{"room":"ops","user":"alice","text":"ping"}`)}, 200, "pong: ping", "ops", "alice"},
		{"a good bearer token runs the text", request{"/hooks/tok", ping, map[string]string{"Authorization": "Bearer " + bearerSecret}}, 200, "pong: ping", "tok", "tok"},
		{"a wrong signature is 401", request{"/hooks/ci", ping, map[string]string{SignatureHeader: Sign([]byte("guess"), []byte(ping), 0)}}, 401, "", "", ""},
		{"a missing signature is 401", request{"/hooks/ci", ping, nil}, 401, "", "", ""},
		{"a signature of another body is 401", request{"/hooks/ci", ping, signed(`{"text": "pong"}`)}, 401, "", "", ""},
		{"a stale timestamp is 401", request{"/hooks/ci", ping, signedAt(ping, now.Add(-6*time.Minute))}, 401, "", "", ""},
		{"a timestamp not covered by the signature is 401", request{"/hooks/ci", ping, map[string]string{SignatureHeader: Sign([]byte(ciSecret), []byte(ping), 0), TimestampHeader: strconv.FormatInt(now.Unix(), 10)}}, 401, "", "", ""},
		{"a wrong bearer token is 401", request{"/hooks/tok", ping, map[string]string{"Authorization": "Bearer nope"}}, 401, "", "", ""},
		{"an HMAC signature on a bearer hook is 401", request{"/hooks/tok", ping, map[string]string{SignatureHeader: Sign([]byte(bearerSecret), []byte(ping), 0)}}, 401, "", "", ""},
		{"malformed JSON is 400", request{"/hooks/ci", `{"text": `, signed(`{"text": `)}, 400, "", "", ""},
		{"a body that is not an object is 400", request{"/hooks/ci", `["ping"]`, signed(`["ping"]`)}, 400, "", "", ""},
		{"missing text is 400", request{"/hooks/ci", `{"room":"ops"}`, signed(`{"room":"ops"}`)}, 400, "", "", ""},
		{"an unknown hook is 404", request{"/hooks/nope", ping, signed(ping)}, 404, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, env := inboundConfig()
			_, b, srv := runAdapter(t, c, env)
			code, resp := tc.req.do(t, srv.URL)
			if code != tc.wantCode {
				t.Fatalf("status %d (%+v), want %d", code, resp, tc.wantCode)
			}
			if tc.wantReply == "" {
				if n := b.count(); n != 0 {
					t.Errorf("the bot got %d messages from a refused request", n)
				}
				return
			}
			if resp.Text != tc.wantReply || len(resp.Replies) != 1 || resp.Replies[0].Output.Text != tc.wantReply {
				t.Errorf("response %+v, want the one reply %q", resp, tc.wantReply)
			}
			m := <-b.got
			if m.Ref.Adapter != "hooks" || m.Ref.Room != tc.wantRoom || m.User.ID != tc.wantUser || m.Text != "ping" || !m.Mentioned || m.Ref.MessageID != resp.ID {
				t.Errorf("the bot got %+v, want room %q, user %q, text ping, mentioned, id %q", m, tc.wantRoom, tc.wantUser, resp.ID)
			}
		})
	}
}

func TestInboundOversizedBodyIs413(t *testing.T) {
	c, env := inboundConfig()
	_, b, srv := runAdapter(t, c, env)
	body := `{"text": "` + strings.Repeat("x", MaxBody) + `"}`
	if code, _ := (request{"/hooks/ci", body, signed(body)}).do(t, srv.URL); code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", code)
	}
	if b.count() != 0 {
		t.Error("an oversized body reached the bot")
	}
}

func TestVerify(t *testing.T) {
	h := &hook{name: "ci", secret: []byte(ciSecret)}
	body := []byte(`{"text":"x"}`)
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name    string
		headers map[string]string
		ok      bool
	}{
		{"body signature", map[string]string{SignatureHeader: Sign([]byte(ciSecret), body, 0)}, true},
		{"timestamped signature", map[string]string{SignatureHeader: Sign([]byte(ciSecret), body, now.Unix()), TimestampHeader: strconv.FormatInt(now.Unix(), 10)}, true},
		{"a timestamp five minutes ahead is taken", map[string]string{SignatureHeader: Sign([]byte(ciSecret), body, now.Unix()+300), TimestampHeader: strconv.FormatInt(now.Unix()+300, 10)}, true},
		{"a timestamp too far ahead is refused", map[string]string{SignatureHeader: Sign([]byte(ciSecret), body, now.Unix()+301), TimestampHeader: strconv.FormatInt(now.Unix()+301, 10)}, false},
		{"a malformed timestamp is refused", map[string]string{SignatureHeader: Sign([]byte(ciSecret), body, 0), TimestampHeader: "yesterday"}, false},
		{"a signature without its prefix is refused", map[string]string{SignatureHeader: strings.TrimPrefix(Sign([]byte(ciSecret), body, 0), "sha256=")}, false},
		{"a signature that is not hex is refused", map[string]string{SignatureHeader: "sha256=zz"}, false},
		{"no signature is refused", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/hooks/ci", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			err := h.verify(r, body, now)
			if tc.ok && err != nil {
				t.Errorf("verify: %v", err)
			}
			if !tc.ok {
				if !errors.Is(err, chat.ErrUnauthorized) {
					t.Errorf("verify returned %v, want chat.ErrUnauthorized", err)
				}
				if err != nil && strings.Contains(err.Error(), ciSecret) {
					t.Errorf("the error %q holds the secret", err)
				}
			}
		})
	}
	t.Run("a hook requiring timestamps refuses a body signature", func(t *testing.T) {
		strict := &hook{name: "ci", secret: []byte(ciSecret), requireTS: true}
		r := httptest.NewRequest(http.MethodPost, "/hooks/ci", nil)
		r.Header.Set(SignatureHeader, Sign([]byte(ciSecret), body, 0))
		if err := strict.verify(r, body, now); !errors.Is(err, chat.ErrUnauthorized) {
			t.Errorf("verify returned %v, want chat.ErrUnauthorized", err)
		}
	})
}

func TestDuplicateDeliveryIsHandledOnce(t *testing.T) {
	for _, header := range []string{DeliveryHeader, IdempotencyHeader} {
		t.Run(header, func(t *testing.T) {
			c, env := inboundConfig()
			_, b, srv := runAdapter(t, c, env)
			body := `{"text": "deploy"}`
			h := signed(body)
			h[header] = "delivery-1"
			code, first := (request{"/hooks/ci", body, h}).do(t, srv.URL)
			if code != 200 || first.Duplicate || first.Text != "pong: deploy" {
				t.Fatalf("first delivery: %d %+v", code, first)
			}
			code, second := (request{"/hooks/ci", body, h}).do(t, srv.URL)
			if code != 200 || !second.Duplicate || second.ID != first.ID || len(second.Replies) != 0 {
				t.Errorf("second delivery: %d %+v, want 200, duplicate of %q and no replies", code, second, first.ID)
			}
			h[header] = "delivery-2"
			if code, third := (request{"/hooks/ci", body, h}).do(t, srv.URL); code != 200 || third.Duplicate {
				t.Errorf("another delivery: %d %+v", code, third)
			}
			if n := b.count(); n != 2 {
				t.Errorf("the bot got %d messages, want 2", n)
			}
		})
	}
}

func TestConcurrentRequestsOfOneRoomGetTheirOwnReplies(t *testing.T) {
	c, env := inboundConfig()
	_, b, srv := runAdapter(t, c, env)
	b.answers = 2
	b.delay = 20 * time.Millisecond
	var wg sync.WaitGroup
	const n = 4
	resps := make([]Response, n)
	for i := range n {
		wg.Go(func() {
			body := `{"room": "ops", "text": "req ` + strconv.Itoa(i) + `"}`
			code, r := (request{"/hooks/ci", body, signed(body)}).do(t, srv.URL)
			if code != 200 {
				t.Errorf("request %d: status %d", i, code)
			}
			resps[i] = r
		})
	}
	wg.Wait()
	for i, r := range resps {
		want := "pong: req " + strconv.Itoa(i)
		if len(r.Replies) != 2 || r.Replies[0].Output.Text != want || r.Replies[1].Output.Text != want+" (1)" {
			t.Errorf("request %d got %+v, want its own two replies %q", i, r.Replies, want)
		}
	}
}

func TestBotsOwnMessageIsIgnored(t *testing.T) {
	c, env := inboundConfig()
	_, b, srv := runAdapter(t, c, env)
	body := `{"user": "chima", "text": "echo"}`
	code, r := (request{"/hooks/ci", body, signed(body)}).do(t, srv.URL)
	if code != 200 || r.Ignored == "" || b.count() != 0 {
		t.Errorf("status %d, %+v, %d messages: want 200, ignored and none delivered", code, r, b.count())
	}
}

func TestReplyModes(t *testing.T) {
	for _, mode := range []string{"outbound", "both"} {
		t.Run(mode, func(t *testing.T) {
			rc := newReceiver(t)
			c := Config{Inbound: []HookConfig{{Name: "ci", SecretEnv: "S", Reply: mode, OutboundURLEnv: "OUT", Quiet: 50 * time.Millisecond, Wait: chattest.Guard}}}
			_, _, srv := runAdapter(t, c, map[string]string{"S": ciSecret, "OUT": rc.url("/out")})
			body := `{"text": "ping"}`
			code, r := (request{"/hooks/ci", body, signed(body)}).do(t, srv.URL)
			switch mode {
			case "outbound":
				if code != http.StatusAccepted || r.ID == "" || len(r.Replies) != 0 {
					t.Errorf("status %d %+v, want 202 with the id and no replies", code, r)
				}
			case "both":
				if code != 200 || r.Text != "pong: ping" {
					t.Errorf("status %d %+v, want 200 with the reply", code, r)
				}
			}
			p := waitPost(t, rc)
			var got struct {
				Text    string `json:"text"`
				ReplyTo string `json:"reply_to"`
			}
			if err := json.Unmarshal(p.Body, &got); err != nil || got.Text != "pong: ping" || got.ReplyTo != r.ID {
				t.Errorf("outbound got %s (%v), want text pong: ping in reply to %q", p.Body, err, r.ID)
			}
		})
	}
}

func TestLateReplies(t *testing.T) {
	t.Run("go to the outbound URL", func(t *testing.T) {
		rc := newReceiver(t)
		c := Config{Inbound: []HookConfig{{Name: "ci", SecretEnv: "S", OutboundURLEnv: "OUT", Quiet: 50 * time.Millisecond, Wait: chattest.Guard}}}
		a, _, srv := runAdapter(t, c, map[string]string{"S": ciSecret, "OUT": rc.url("/out")})
		body := `{"text": "deploy"}`
		_, r := (request{"/hooks/ci", body, signed(body)}).do(t, srv.URL)
		if _, err := a.Send(context.Background(), chat.MessageRef{Adapter: "hooks", Room: "ci", ThreadID: r.ID}, chat.Text("deploy finished")); err != nil {
			t.Fatal(err)
		}
		p := waitPost(t, rc)
		if !strings.Contains(string(p.Body), "deploy finished") {
			t.Errorf("outbound got %s", p.Body)
		}
	})
	t.Run("are dropped and counted without an outbound URL", func(t *testing.T) {
		c, env := inboundConfig()
		a, _, srv := runAdapter(t, c, env)
		body := `{"text": "deploy"}`
		_, r := (request{"/hooks/ci", body, signed(body)}).do(t, srv.URL)
		for _, to := range []chat.MessageRef{{Room: "deployment", ThreadID: r.ID}, {Room: "deployment"}} {
			if _, err := a.Send(context.Background(), to, chat.Text("deploy finished")); err != nil {
				t.Errorf("Send(%+v): %v", to, err)
			}
		}
		if got := a.Stats().Dropped; got != 2 {
			t.Errorf("Stats().Dropped = %d, want 2", got)
		}
	})
}

func waitPost(t *testing.T, rc *receiver) received {
	t.Helper()
	select {
	case p := <-rc.got:
		return p
	case <-time.After(chattest.Guard):
		t.Fatal("the receiver got nothing")
		return received{}
	}
}
