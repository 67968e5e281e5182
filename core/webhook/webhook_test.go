package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// recorder is a Dispatcher and Deliveries that remembers what it saw.
type recorder struct {
	mu     sync.Mutex
	events []*pluginv1.WebhookEvent
	seen   map[string]bool
	fail   int // dispatches to fail before succeeding
}

func (r *recorder) DispatchEvent(_ context.Context, ev *pluginv1.WebhookEvent) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.fail > 0 {
		r.fail--
		return 0, errors.New("plugin restarting")
	}
	return 1, nil
}

func (r *recorder) ForgetDelivery(_ context.Context, source, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.seen, source+"/"+id)
	return nil
}

func (r *recorder) SeenDelivery(_ context.Context, source, id string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	k := source + "/" + id
	s := r.seen[k]
	r.seen[k] = true
	return s, nil
}

type delivery struct {
	Name     string            `json:"name"`
	Method   string            `json:"method"`
	BodyFile string            `json:"body_file"`
	Headers  map[string]string `json:"headers"`
	Expect   string            `json:"expect"`
}

// deliveries loads GitHub's real payloads with their signed headers.
func deliveries(t *testing.T) (string, []delivery) {
	t.Helper()
	b, err := os.ReadFile("testdata/github/requests.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Secret   string     `json:"secret"`
		Requests []delivery `json:"requests"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Secret, f.Requests
}

func send(t *testing.T, h http.Handler, d delivery) *httptest.ResponseRecorder {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata/github", d.BodyFile))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(d.Method, "/webhooks/github", strings.NewReader(string(body)))
	for k, v := range d.Headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestGitHubDeliveriesAreVerifiedAndDispatched(t *testing.T) {
	secret, ds := deliveries(t)
	for _, d := range ds {
		t.Run(d.Name, func(t *testing.T) {
			rec := &recorder{}
			g := &GitHub{Secret: []byte(secret), Deliveries: rec, Dispatch: rec}
			resp := send(t, g, d)
			event := d.Headers["X-GitHub-Event"]
			switch {
			case strings.Contains(d.Name, "signature"):
				if resp.Code != http.StatusUnauthorized || len(rec.events) != 0 || len(rec.seen) != 0 {
					t.Fatalf("forged delivery: %d, %d events dispatched", resp.Code, len(rec.events))
				}
			case event == "ping":
				if resp.Code != http.StatusOK || len(rec.events) != 0 {
					t.Fatalf("ping: %d %s", resp.Code, resp.Body)
				}
			default:
				if resp.Code != http.StatusAccepted || len(rec.events) != 1 {
					t.Fatalf("%s: %d %s", d.Name, resp.Code, resp.Body)
				}
				ev := rec.events[0]
				if ev.Type != "github:"+event || ev.DeliveryId != d.Headers["X-GitHub-Delivery"] || !json.Valid(ev.Payload) {
					t.Fatalf("event = %s %s valid=%v", ev.Type, ev.DeliveryId, json.Valid(ev.Payload))
				}
			}
		})
	}
}

func TestRedeliveryIsAcknowledgedAndDroppedOnce(t *testing.T) {
	secret, ds := deliveries(t)
	rec := &recorder{}
	g := &GitHub{Secret: []byte(secret), Deliveries: rec, Dispatch: rec}
	for i, want := range []int{http.StatusAccepted, http.StatusOK, http.StatusOK} {
		if resp := send(t, g, ds[0]); resp.Code != want {
			t.Fatalf("delivery %d: %d, want %d", i, resp.Code, want)
		}
	}
	if len(rec.events) != 1 {
		t.Fatalf("dispatched %d times", len(rec.events))
	}
}

func TestDeliveryWhoseHandlingFailedIsHandledWhenRedelivered(t *testing.T) {
	secret, ds := deliveries(t)
	rec := &recorder{fail: 1}
	g := &GitHub{Secret: []byte(secret), Deliveries: rec, Dispatch: rec}
	if resp := send(t, g, ds[0]); resp.Code != http.StatusInternalServerError {
		t.Fatalf("failed handling answered %d", resp.Code)
	}
	if resp := send(t, g, ds[0]); resp.Code != http.StatusAccepted {
		t.Fatalf("redelivery answered %d %s", resp.Code, resp.Body)
	}
	if len(rec.events) != 2 {
		t.Fatalf("dispatched %d times, want 2", len(rec.events))
	}
}

func TestWithoutASecretEveryDeliveryIsRefused(t *testing.T) {
	_, ds := deliveries(t)
	rec := &recorder{}
	if resp := send(t, &GitHub{Deliveries: rec, Dispatch: rec}, ds[0]); resp.Code != http.StatusUnauthorized || len(rec.events) != 0 {
		t.Fatalf("%d, %d events", resp.Code, len(rec.events))
	}
}

func TestVerifySignatureMatchesGitHubsDocumentedVector(t *testing.T) {
	secret := []byte("It's a Secret to Everybody")
	cases := []struct {
		name, body, header string
		ok                 bool
	}{
		{"documented vector", "Hello, World!", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", true},
		{"one byte changed", "Hello, World?", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", false},
		{"sha1 header only", "Hello, World!", "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", false},
		{"not hex", "Hello, World!", "sha256=zz", false},
		{"empty", "Hello, World!", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := VerifySignature(secret, []byte(c.body), c.header); got != c.ok {
				t.Fatalf("VerifySignature = %v", got)
			}
		})
	}
}

func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		VerifySignature([]byte("secret"), body, header) // must not panic
	})
}
