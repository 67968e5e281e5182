package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// recorder is a Dispatcher that remembers what it saw. Each plugin of
// plugins takes an event unless fail or refuse says otherwise.
type recorder struct {
	mu      sync.Mutex
	events  []*pluginv1.WebhookEvent
	asked   []string       // plugins asked, in order, across events
	plugins []string       // subscribed plugins; default {"deploy"}
	fail    map[string]int // plugin → dispatches to fail before succeeding
	refuse  map[string]string
}

func (r *recorder) DispatchEvent(_ context.Context, ev *pluginv1.WebhookEvent, done []string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	plugins := r.plugins
	if plugins == nil {
		plugins = []string{"deploy"}
	}
	var handled []string
	var errs []error
	for _, p := range plugins {
		if slices.Contains(done, p) {
			continue
		}
		r.asked = append(r.asked, p)
		switch {
		case r.refuse[p] != "":
			errs = append(errs, &RefusedError{Plugin: p, Reason: r.refuse[p]})
		case r.fail[p] > 0:
			r.fail[p]--
			errs = append(errs, errors.New("plugin "+p+": restarting"))
		default:
			handled = append(handled, p)
		}
	}
	return handled, errors.Join(errs...)
}

func newReceiver(t *testing.T, secret string, rec *recorder) (*GitHub, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "chima.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &GitHub{Secret: []byte(secret), Deliveries: st, Dispatch: rec}, st
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
			g, st := newReceiver(t, secret, rec)
			resp := send(t, g, d)
			event := d.Headers["X-GitHub-Event"]
			switch {
			case strings.Contains(d.Name, "signature"):
				if resp.Code != http.StatusUnauthorized || len(rec.events) != 0 {
					t.Fatalf("forged delivery: %d, %d events dispatched", resp.Code, len(rec.events))
				}
				if _, err := st.GetDelivery(context.Background(), "github", d.Headers["X-GitHub-Delivery"]); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("forged delivery recorded: %v", err)
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
				got, err := st.GetDelivery(context.Background(), "github", ev.DeliveryId)
				if err != nil || got.State != store.DeliveryHandled || !slices.Equal(got.HandledBy, []string{"deploy"}) {
					t.Fatalf("recorded delivery = %+v, %v", got, err)
				}
			}
		})
	}
}

func TestRedeliveryIsAcknowledgedAndDroppedOnce(t *testing.T) {
	secret, ds := deliveries(t)
	rec := &recorder{}
	g, _ := newReceiver(t, secret, rec)
	for i, want := range []int{http.StatusAccepted, http.StatusOK, http.StatusOK} {
		if resp := send(t, g, ds[0]); resp.Code != want {
			t.Fatalf("delivery %d: %d, want %d", i, resp.Code, want)
		}
	}
	if len(rec.events) != 1 {
		t.Fatalf("dispatched %d times", len(rec.events))
	}
}

func TestADeliveryNotHandledIsNeverAcknowledgedAndItsRedeliveryIsHandled(t *testing.T) {
	secret, ds := deliveries(t)
	tests := []struct {
		name   string
		rec    *recorder
		first  int      // status of the first delivery
		asked  []string // plugins asked over both deliveries
		second int      // status of the redelivery
	}{
		{
			name: "a plugin that could not be asked", rec: &recorder{fail: map[string]int{"deploy": 1}},
			first: http.StatusServiceUnavailable, asked: []string{"deploy", "deploy"}, second: http.StatusAccepted,
		},
		{
			name: "a plugin that refused the payload", rec: &recorder{refuse: map[string]string{"deploy": "decode deployment event"}},
			first: http.StatusUnprocessableEntity, asked: []string{"deploy", "deploy"}, second: http.StatusUnprocessableEntity,
		},
		{
			name:  "one plugin of two failed: only it is asked again",
			rec:   &recorder{plugins: []string{"cistatus", "deploy"}, fail: map[string]int{"deploy": 1}},
			first: http.StatusServiceUnavailable, asked: []string{"cistatus", "deploy", "deploy"}, second: http.StatusAccepted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, st := newReceiver(t, secret, tt.rec)
			resp := send(t, g, ds[0])
			if resp.Code != tt.first {
				t.Fatalf("first delivery answered %d %s, want %d", resp.Code, resp.Body, tt.first)
			}
			got, err := st.GetDelivery(context.Background(), "github", ds[0].Headers["X-GitHub-Delivery"])
			if err != nil || got.State != store.DeliveryFailed || got.LastError == "" || len(got.Payload) == 0 {
				t.Fatalf("after a failure the delivery is recorded as %+v, %v", got, err)
			}
			if resp := send(t, g, ds[0]); resp.Code != tt.second {
				t.Fatalf("redelivery answered %d %s, want %d", resp.Code, resp.Body, tt.second)
			}
			if !slices.Equal(tt.rec.asked, tt.asked) {
				t.Fatalf("plugins asked: %v, want %v", tt.rec.asked, tt.asked)
			}
		})
	}
}

// GitHub's delivery page shows the answer: it names the plugins that took
// the delivery, in English, the ones of an earlier attempt included.
func TestAHandledDeliveryAnswersWhichPluginsTookIt(t *testing.T) {
	secret, ds := deliveries(t)
	tests := []struct {
		name string
		rec  *recorder
		want []string // answers to the delivery and, when it failed, its redelivery
	}{
		{"no plugin", &recorder{plugins: []string{}}, []string{"handled: no plugin takes this event\n"}},
		{"one plugin", &recorder{}, []string{"handled by 1 plugin: deploy\n"}},
		{"two plugins", &recorder{plugins: []string{"cistatus", "deploy"}}, []string{"handled by 2 plugins: cistatus, deploy\n"}},
		{
			"one of two took it on the redelivery",
			&recorder{plugins: []string{"cistatus", "deploy"}, fail: map[string]int{"deploy": 1}},
			[]string{"", "handled by 2 plugins: cistatus, deploy\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newReceiver(t, secret, tt.rec)
			for i, want := range tt.want {
				resp := send(t, g, ds[0])
				if want == "" {
					continue // the failed attempt; its answer is tested above
				}
				if resp.Code != http.StatusAccepted || resp.Body.String() != want {
					t.Fatalf("delivery %d answered %d %q, want 202 %q", i+1, resp.Code, resp.Body, want)
				}
			}
		})
	}
}

func TestMalformedJSONWithAValidSignatureIsRecordedAsFailed(t *testing.T) {
	const secret = "s3cret"
	body := `{"deployment": {"id": 4242,`
	rec := &recorder{}
	g, st := newReceiver(t, secret, rec)
	for range 2 {
		req := signed(secret, body, "deployment", "bad-json-1")
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "not valid JSON") {
			t.Fatalf("malformed JSON answered %d %s", w.Code, w.Body)
		}
	}
	got, err := st.GetDelivery(context.Background(), "github", "bad-json-1")
	if err != nil || got.State != store.DeliveryFailed || got.Attempts != 2 || string(got.Payload) != body {
		t.Fatalf("recorded as %+v, %v", got, err)
	}
	if len(rec.events) != 0 {
		t.Fatalf("%d malformed events dispatched", len(rec.events))
	}
}

// signed builds a GitHub delivery of body signed with secret.
func signed(secret, body, event, id string) *http.Request {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return req
}

func TestWithoutASecretEveryDeliveryIsRefused(t *testing.T) {
	_, ds := deliveries(t)
	rec := &recorder{}
	g, _ := newReceiver(t, "", rec)
	if resp := send(t, g, ds[0]); resp.Code != http.StatusUnauthorized || len(rec.events) != 0 {
		t.Fatalf("%d, %d events", resp.Code, len(rec.events))
	}
}

// blockingBody is a request body that yields its bytes only once let is
// closed, as a slow sender's would.
type blockingBody struct {
	r   io.Reader
	let chan struct{}
}

func (b *blockingBody) Read(p []byte) (int, error) {
	<-b.let
	return b.r.Read(p)
}

func TestUnverifiedBodiesStayWithinTheBudget(t *testing.T) {
	const secret = "s3cret"
	budget := NewBudget(MaxBody + 1<<20)
	g, _ := newReceiver(t, secret, &recorder{})
	g.Budget, g.BudgetWait = budget, 100*time.Millisecond

	// A sender of a 24 MiB body holds its bytes while it sends.
	big := &blockingBody{r: strings.NewReader(strings.Repeat("x", 24<<20)), let: make(chan struct{})}
	letGo := sync.OnceFunc(func() { close(big.let) })
	t.Cleanup(letGo) // a failing test must not leave the handler blocked
	req := httptest.NewRequest(http.MethodPost, "/webhooks/github", big)
	req.ContentLength = 24 << 20
	req.Header.Set("X-Hub-Signature-256", "sha256=00")
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		done <- w.Code
	}()
	for budget.InUse() != 24<<20 {
		time.Sleep(time.Millisecond)
	}

	// Another large one does not fit beside it: 503, Retry-After, unread.
	req2 := httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader(strings.Repeat("y", 3<<20)))
	req2.ContentLength = 3 << 20
	w := httptest.NewRecorder()
	g.ServeHTTP(w, req2)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("body past the budget answered %d (Retry-After %q)", w.Code, w.Header().Get("Retry-After"))
	}
	// A small signed delivery still fits beside it and is handled.
	w = httptest.NewRecorder()
	g.ServeHTTP(w, signed(secret, `{"zen":"ok"}`, "push", "small-1"))
	if w.Code != http.StatusAccepted {
		t.Fatalf("small delivery beside a large one answered %d %s", w.Code, w.Body)
	}

	letGo()
	if code := <-done; code != http.StatusUnauthorized {
		t.Fatalf("forged large body answered %d", code)
	}
	if n := budget.InUse(); n != 0 {
		t.Fatalf("%d bytes still taken from the budget after every request ended", n)
	}
}

func TestBodySizeIsCheckedBeforeAnythingIsRead(t *testing.T) {
	g, _ := newReceiver(t, "s3cret", &recorder{})
	tests := []struct {
		name   string
		length int64
		want   int
	}{
		{"larger than GitHub's cap", MaxBody + 1, http.StatusRequestEntityTooLarge},
		{"of no declared length", -1, http.StatusLengthRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &blockingBody{r: strings.NewReader("{}"), let: make(chan struct{})} // never yields
			req := httptest.NewRequest(http.MethodPost, "/webhooks/github", body)
			req.ContentLength = tt.length
			w := httptest.NewRecorder()
			g.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("answered %d, want %d", w.Code, tt.want)
			}
		})
	}
}

func TestABodyOfGitHubsLargestSizeIsAccepted(t *testing.T) {
	const secret = "s3cret"
	g, _ := newReceiver(t, secret, &recorder{})
	body := `{"pad":"` + strings.Repeat("x", MaxBody-len(`{"pad":""}`)) + `"}`
	w := httptest.NewRecorder()
	g.ServeHTTP(w, signed(secret, body, "push", "largest-1"))
	if w.Code != http.StatusAccepted {
		t.Fatalf("a %d-byte delivery answered %d %s", len(body), w.Code, w.Body)
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
