package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// TestConformance runs the suite once per preset: notifier rooms "general"
// and "random" post with that preset to a local receiver, and the peer
// speaks through a signed inbound hook whose replies go to the receiver too.
func TestConformance(t *testing.T) {
	for _, preset := range []string{"json", "slack", "mattermost", "discord", "teams", "flowdock", "campfire"} {
		t.Run(preset, func(t *testing.T) {
			chattest.RunConformance(t, chattest.Harness{
				New:    func(t *testing.T) (chat.Adapter, chattest.Peer) { return newPeer(t, preset) },
				Golden: filepath.Join("testdata", "golden", preset),
			})
		})
	}
}

// peer plays a webhook caller and the receivers of the adapter's posts.
type peer struct {
	preset string
	srv    *httptest.Server
	posts  chan chattest.PeerMessage

	mu    sync.Mutex
	base  string
	raw   map[string][]byte
	limit time.Duration // the next post is answered 429 when > 0
}

var (
	_ chattest.RoutePeer     = (*peer)(nil)
	_ chattest.MentionPeer   = (*peer)(nil)
	_ chattest.RateLimitPeer = (*peer)(nil)
	_ chattest.GoldenPeer    = (*peer)(nil)
)

func newPeer(t *testing.T, preset string) (*Adapter, *peer) {
	p := &peer{preset: preset, posts: make(chan chattest.PeerMessage, 1024), raw: map[string][]byte{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.receive))
	t.Cleanup(p.srv.Close)
	off := false
	c := Config{
		Inbound: []HookConfig{{
			Name: "chat", SecretEnv: "CHAT_SECRET", Reply: "outbound", Mention: &off,
			OutboundURLEnv: "CHAT_OUT", OutboundPreset: preset,
		}},
		Notifiers: []NotifierConfig{
			{Name: "general", Preset: preset, URLEnv: "GENERAL_URL", Backoff: 10 * time.Millisecond},
			{Name: "random", Preset: preset, URLEnv: "RANDOM_URL", Backoff: 10 * time.Millisecond},
		},
	}
	a, err := New(testSetup(map[string]string{
		"CHAT_SECRET": ciSecret,
		"CHAT_OUT":    p.srv.URL + "/out/T0/secret-out",
		"GENERAL_URL": p.srv.URL + "/general/T0/secret-general",
		"RANDOM_URL":  p.srv.URL + "/random/T0/secret-random",
	}, nil), c)
	if err != nil {
		t.Fatal(err)
	}
	a.idPrefix = "t-" // ids the golden files can name
	return a, p
}

// receive is every receiver: it answers 429 once after LimitNext, and
// otherwise records the post as the service would show it.
func (p *peer) receive(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	limit := p.limit
	p.limit = 0
	p.mu.Unlock()
	if limit > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(limit/time.Second)))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if !json.Valid(body) {
		http.Error(w, "invalid JSON", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(MessageIDHeader)
	p.mu.Lock()
	p.raw[id] = body
	p.mu.Unlock()
	p.posts <- chattest.PeerMessage{Room: r.Header.Get(RoomHeader), Thread: r.Header.Get(ThreadHeader), ID: id, Text: shown(p.preset, body)}
}

// shown is the text a service shows for a body of preset.
func shown(preset string, body []byte) string {
	var b struct {
		Text        string `json:"text"`
		Content     string `json:"content"`
		Attachments []struct {
			Fields []struct {
				Title, Value string
			} `json:"fields"`
			Content struct {
				Body []struct {
					Type, Text string
					Facts      []struct{ Title, Value string }
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
		Embeds []struct {
			Title  string
			Fields []struct{ Name, Value string }
		} `json:"embeds"`
		Message struct {
			Body string `json:"body"`
		} `json:"message"`
	}
	_ = json.Unmarshal(body, &b)
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	switch preset {
	case "json":
		add(b.Text)
	case "slack", "mattermost":
		add(b.Text)
		for _, at := range b.Attachments {
			for _, f := range at.Fields {
				add(f.Title + ": " + f.Value)
			}
		}
	case "discord":
		add(b.Content)
		for _, e := range b.Embeds {
			add(e.Title)
			for _, f := range e.Fields {
				add(f.Name + ": " + f.Value)
			}
		}
	case "teams":
		for _, at := range b.Attachments {
			for _, el := range at.Content.Body {
				add(el.Text)
				for _, f := range el.Facts {
					add(f.Title + ": " + f.Value)
				}
			}
		}
	case "flowdock":
		add(b.Content)
	case "campfire":
		add(b.Message.Body)
	}
	return strings.Join(parts, "\n")
}

func (p *peer) Mounted(_ *testing.T, base string) {
	p.mu.Lock()
	p.base = base
	p.mu.Unlock()
}

func (p *peer) RoomID(_ *testing.T, name string) string { return name }
func (p *peer) UserID(_ *testing.T, name string) string { return name }

func (p *peer) Say(t *testing.T, room, user, thread, text string) {
	t.Helper()
	p.post(t, map[string]any{"room": room, "user": user, "thread": thread, "text": text})
}

func (p *peer) SayMention(t *testing.T, room, user, text string) {
	t.Helper()
	p.post(t, map[string]any{"room": room, "user": user, "text": text, "mention": true})
}

// post sends a signed inbound request to the hook.
func (p *peer) post(t *testing.T, v map[string]any) {
	t.Helper()
	p.mu.Lock()
	base := p.base
	p.mu.Unlock()
	if base == "" {
		t.Fatal("the suite did not mount the adapter's routes")
	}
	body, _ := json.Marshal(v)
	ts := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, base+"/hooks/chat", bytes.NewReader(body))
	req.Header.Set(SignatureHeader, Sign([]byte(ciSecret), body, ts))
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST the hook: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		t.Fatalf("POST the hook: status %d: %s", resp.StatusCode, raw)
	}
}

func (p *peer) Said(t *testing.T) chattest.PeerMessage {
	t.Helper()
	select {
	case m := <-p.posts:
		return m
	case <-time.After(chattest.Guard):
		t.Fatalf("no post reached a receiver within %s", chattest.Guard)
		return chattest.PeerMessage{}
	}
}

func (p *peer) Edited(t *testing.T) chattest.PeerMessage {
	t.Fatal("the webhook adapter cannot edit")
	return chattest.PeerMessage{}
}

func (p *peer) LimitNext(_ *testing.T, after time.Duration) {
	p.mu.Lock()
	p.limit = after
	p.mu.Unlock()
}

var ids = regexp.MustCompile(`t-[0-9]+`)

func (p *peer) Raw(t *testing.T, msg chattest.PeerMessage) []byte {
	t.Helper()
	p.mu.Lock()
	body := p.raw[msg.ID]
	p.mu.Unlock()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("post %s: %v", msg.ID, err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return ids.ReplaceAll(b.Bytes(), []byte("<id>"))
}
