package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

const tokenInURL = "XXSECRETXXTOKEN"

// notifierAdapter builds an adapter with one notifier "ops" posting to url,
// logging to logs.
func notifierAdapter(t *testing.T, url string, logs *logBuffer, nc NotifierConfig) *Adapter {
	t.Helper()
	nc.Name, nc.URLEnv = "ops", "OPS_URL"
	if nc.Backoff == 0 {
		nc.Backoff = time.Millisecond
	}
	var w io.Writer
	if logs != nil {
		w = logs
	}
	a, err := New(testSetup(map[string]string{"OPS_URL": url, "OPS_AUTH": "Bearer " + tokenInURL + "-header"}, w), Config{Notifiers: []NotifierConfig{nc}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNotifierDelivery(t *testing.T) {
	tests := []struct {
		name         string
		script       []int
		attempts     int
		wantErr      bool
		wantTries    int
		wantReceived bool
	}{
		{"a 2xx is delivered once", nil, 0, false, 1, true},
		{"5xx answers are retried until one is taken", []int{500, 503}, 0, false, 3, true},
		{"retries stop after the attempts", []int{500, 502, 503}, 3, true, 3, false},
		{"a 4xx is not retried", []int{400}, 0, true, 1, false},
		{"a redirect is not followed", []int{302}, 0, true, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.script...)
			logs := &logBuffer{}
			a := notifierAdapter(t, rc.url("/hook/"+tokenInURL), logs, NotifierConfig{Attempts: tc.attempts})
			_, err := a.Send(context.Background(), chat.MessageRef{Room: "ops"}, chat.Text("deployed"))
			if (err != nil) != tc.wantErr {
				t.Fatalf("Send: %v, want error %v", err, tc.wantErr)
			}
			if got := rc.attempts(); got != tc.wantTries {
				t.Errorf("the receiver saw %d attempts, want %d", got, tc.wantTries)
			}
			if got := len(rc.got); (got == 1) != tc.wantReceived || got > 1 {
				t.Errorf("the receiver took %d posts", got)
			}
			st := a.Stats()
			if tc.wantReceived && st.Delivered != 1 || !tc.wantReceived && st.Failed != 1 {
				t.Errorf("Stats() = %+v", st)
			}
			if leak := containsAny(logs.String()+errString(err), tokenInURL, rc.srv.URL); leak != "" {
				t.Errorf("the logs or the error hold %q:\n%s\n%v", leak, logs, err)
			}
		})
	}
}

func TestNotifierRateLimitIsRetryAfterError(t *testing.T) {
	rc := newReceiver(t, http.StatusTooManyRequests)
	rc.retryAfter = "7"
	a := notifierAdapter(t, rc.url("/hook"), nil, NotifierConfig{})
	_, err := a.Send(context.Background(), chat.MessageRef{Room: "ops"}, chat.Text("x"))
	var ra *chat.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 7*time.Second {
		t.Fatalf("Send: %v, want a RetryAfterError of 7s", err)
	}
	if rc.attempts() != 1 || len(rc.got) != 0 {
		t.Errorf("the receiver saw %d attempts and took %d, want one refused", rc.attempts(), len(rc.got))
	}
}

func TestNotifierTimeoutIsRetried(t *testing.T) {
	release := make(chan struct{})
	var slow atomic.Bool
	slow.Store(true)
	rc := newReceiver(t)
	inner := rc.srv.Config.Handler
	rc.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.CompareAndSwap(true, false) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		inner.ServeHTTP(w, r)
	})
	defer close(release)
	a := notifierAdapter(t, rc.url("/hook"), nil, NotifierConfig{Timeout: 50 * time.Millisecond})
	if _, err := a.Send(context.Background(), chat.MessageRef{Room: "ops"}, chat.Text("x")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := len(rc.got); got != 1 {
		t.Errorf("the receiver took %d posts, want 1", got)
	}
}

func TestSecretsStayOutOfLogsAndErrors(t *testing.T) {
	rc := newReceiver(t)
	url := rc.url("/hook/" + tokenInURL)
	rc.srv.Close() // connection refused
	logs := &logBuffer{}
	a := notifierAdapter(t, url, logs, NotifierConfig{Attempts: 2, SecretHeaders: map[string]string{"Authorization": "OPS_AUTH"}})
	_, err := a.Send(context.Background(), chat.MessageRef{Room: "ops"}, chat.Text("x"))
	if err == nil {
		t.Fatal("Send to a closed receiver succeeded")
	}
	if leak := containsAny(logs.String()+err.Error(), tokenInURL, "/hook/"); leak != "" {
		t.Errorf("the logs or the error hold %q:\n%s\n%v", leak, logs, err)
	}
	t.Run("a URL that is not http names its variable, not its value", func(t *testing.T) {
		_, err := New(testSetup(map[string]string{"OPS_URL": "ftp://x/" + tokenInURL}, nil), Config{Notifiers: []NotifierConfig{{Name: "ops", URLEnv: "OPS_URL"}}})
		if err == nil || strings.Contains(err.Error(), tokenInURL) || !strings.Contains(err.Error(), "OPS_URL") {
			t.Errorf("New: %v", err)
		}
	})
}

func TestNotifierHeadersAndTemplate(t *testing.T) {
	rc := newReceiver(t)
	a := notifierAdapter(t, rc.url("/hook"), nil, NotifierConfig{
		Headers:       map[string]string{"X-Team": "ops"},
		SecretHeaders: map[string]string{"Authorization": "OPS_AUTH"},
		Template:      `{"msg": {{json .Text}}, "room": {{json .Room}}, "bot": {{json .Bot}}, "md": {{json (markdown .Markup)}}}`,
	})
	if _, err := a.Send(context.Background(), chat.MessageRef{Room: "ops", ThreadID: "t1"}, chat.Text(`**"done"** <x>`)); err != nil {
		t.Fatal(err)
	}
	p := waitPost(t, rc)
	var got map[string]string
	if err := json.Unmarshal(p.Body, &got); err != nil {
		t.Fatalf("the template made %s: %v", p.Body, err)
	}
	want := map[string]string{"msg": `"done" <x>`, "room": "ops", "bot": "chima", "md": `**"done"** <x>`}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if p.Header.Get("X-Team") != "ops" || p.Header.Get("Authorization") != "Bearer "+tokenInURL+"-header" || p.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", p.Header)
	}
	t.Run("a template that fails is Send's error", func(t *testing.T) {
		a := notifierAdapter(t, rc.url("/hook"), nil, NotifierConfig{Template: `{{.Nope}}`})
		if _, err := a.Send(context.Background(), chat.MessageRef{Room: "ops"}, chat.Text("x")); err == nil {
			t.Error("Send succeeded")
		}
	})
}

func TestUnknownRoom(t *testing.T) {
	rc := newReceiver(t)
	a := notifierAdapter(t, rc.url("/hook"), nil, NotifierConfig{})
	for _, room := range []string{"", "teams-ops", "opsx"} {
		if _, err := a.Send(context.Background(), chat.MessageRef{Room: room}, chat.Text("x")); !errors.Is(err, chat.ErrUnknownRoom) {
			t.Errorf("Send to %q: %v, want ErrUnknownRoom", room, err)
		}
	}
}

// TestPresetShapes checks each preset's body for every golden output against
// the shape its service documents.
func TestPresetShapes(t *testing.T) {
	a := notifierAdapter(t, "https://example.com/x", nil, NotifierConfig{})
	for name, render := range presets {
		for _, c := range chattest.GoldenCases() {
			t.Run(name+"/"+c.Name, func(t *testing.T) {
				body, err := render(a.templateData(chat.MessageRef{Adapter: "hooks", Room: "ops", MessageID: "m1"}, degradeButtons(c.Out), ""))
				if err != nil {
					t.Fatal(err)
				}
				var v map[string]any
				if err := json.Unmarshal(body, &v); err != nil {
					t.Fatalf("not a JSON object: %v\n%s", err, body)
				}
				if why := checkShape(name, v); why != "" {
					t.Errorf("%s\n%s", why, body)
				}
			})
		}
	}
}

func checkShape(preset string, v map[string]any) string {
	str := func(m map[string]any, k string) (string, bool) { s, ok := m[k].(string); return s, ok }
	switch preset {
	case "slack", "mattermost":
		if s, ok := str(v, "text"); !ok || s == "" {
			return "text must be a non-empty string"
		}
		if ats, ok := v["attachments"]; ok {
			for _, at := range ats.([]any) {
				if _, ok := str(at.(map[string]any), "fallback"); !ok {
					return "every attachment needs a fallback"
				}
			}
		}
	case "discord":
		content, _ := str(v, "content")
		embeds, _ := v["embeds"].([]any)
		if content == "" && len(embeds) == 0 {
			return "content or embeds are required"
		}
		if len([]rune(content)) > 2000 {
			return "content is over 2,000 characters"
		}
		for _, e := range embeds {
			fields, _ := e.(map[string]any)["fields"].([]any)
			for _, f := range fields {
				fm := f.(map[string]any)
				if n, _ := str(fm, "name"); n == "" {
					return "embed field names must not be empty"
				}
				if n, _ := str(fm, "value"); n == "" {
					return "embed field values must not be empty"
				}
			}
		}
	case "teams":
		if s, _ := str(v, "type"); s != "message" {
			return `type must be "message"`
		}
		ats, _ := v["attachments"].([]any)
		if len(ats) != 1 {
			return "one attachment"
		}
		at := ats[0].(map[string]any)
		if s, _ := str(at, "contentType"); s != "application/vnd.microsoft.card.adaptive" {
			return "the attachment must be an Adaptive Card"
		}
		card := at["content"].(map[string]any)
		if s, _ := str(card, "type"); s != "AdaptiveCard" {
			return "content.type must be AdaptiveCard"
		}
		if s, _ := str(card, "version"); s == "" {
			return "the card needs a version"
		}
		if body, _ := card["body"].([]any); len(body) == 0 {
			return "the card needs a body"
		}
	case "flowdock":
		if s, _ := str(v, "event"); s != "message" {
			return `event must be "message"`
		}
		if s, _ := str(v, "content"); s == "" {
			return "content is required"
		}
	case "campfire":
		m, _ := v["message"].(map[string]any)
		if m == nil {
			return "message is required"
		}
		if s, _ := str(m, "body"); s == "" {
			return "message.body is required"
		}
		if s, _ := str(m, "type"); s != "TextMessage" && s != "PasteMessage" {
			return "message.type must be TextMessage or PasteMessage"
		}
	case "json":
		if s, _ := str(v, "text"); s == "" {
			return "text is required"
		}
	}
	return ""
}
