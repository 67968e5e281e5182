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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/events"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// newReceiver returns a GitHub receiver storing into a real store through a
// real queue whose subscribers of every event are plugins (default
// {"deploy"}; pass none for []string{}). The queue does not run: what it
// stored is read back from the store.
func newReceiver(t testing.TB, secret string, plugins ...string) (*GitHub, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "chima.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if plugins == nil {
		plugins = []string{"deploy"}
	}
	q := events.New(events.Options{Store: st, Subscribers: func(string) []string { return plugins }, Ready: func() []string { return nil }})
	return &GitHub{Secret: []byte(secret), Queue: q}, st
}

// noPlugins subscribes nobody.
var noPlugins = []string{}

// handings returns the stored handings of delivery id, by plugin.
func handings(t *testing.T, st *store.Store, id string) []store.EventDelivery {
	t.Helper()
	all, err := st.ListEventDeliveries(context.Background(), store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.EventDelivery
	for _, e := range all {
		if e.DeliveryID == id {
			out = append(out, e)
		}
	}
	return out
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

func TestGitHubDeliveriesAreVerifiedStoredAndQueued(t *testing.T) {
	secret, ds := deliveries(t)
	for _, d := range ds {
		t.Run(d.Name, func(t *testing.T) {
			g, st := newReceiver(t, secret)
			resp := send(t, g, d)
			event, id := d.Headers["X-GitHub-Event"], d.Headers["X-GitHub-Delivery"]
			switch {
			case strings.Contains(d.Name, "signature"):
				if resp.Code != http.StatusUnauthorized {
					t.Fatalf("forged delivery: %d", resp.Code)
				}
				if _, err := st.GetDelivery(context.Background(), "github", id); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("forged delivery recorded: %v", err)
				}
			case event == "ping":
				if resp.Code != http.StatusOK || len(handings(t, st, id)) != 0 {
					t.Fatalf("ping: %d %s", resp.Code, resp.Body)
				}
			default:
				if resp.Code != http.StatusAccepted {
					t.Fatalf("%s: %d %s", d.Name, resp.Code, resp.Body)
				}
				got, err := st.GetDelivery(context.Background(), "github", id)
				if err != nil || got.State != store.DeliveryReceived || !json.Valid(got.Payload) || got.Headers["X-GitHub-Event"] != event {
					t.Fatalf("recorded delivery = %+v, %v", got, err)
				}
				h := handings(t, st, id)
				if len(h) != 1 || h[0].Plugin != "deploy" || h[0].State != store.EventPending || h[0].Event != event {
					t.Fatalf("handings = %+v, want one pending for deploy", h)
				}
			}
		})
	}
}

func TestRedeliveryIsAcknowledgedAndNotQueuedAgain(t *testing.T) {
	secret, ds := deliveries(t)
	g, st := newReceiver(t, secret)
	for i, want := range []int{http.StatusAccepted, http.StatusOK, http.StatusOK} {
		if resp := send(t, g, ds[0]); resp.Code != want {
			t.Fatalf("delivery %d: %d, want %d", i, resp.Code, want)
		}
	}
	if h := handings(t, st, ds[0].Headers["X-GitHub-Delivery"]); len(h) != 1 || h[0].Attempts != 0 {
		t.Fatalf("handings = %+v, want one, never attempted", h)
	}
}

// GitHub's delivery page shows the answer: it names the plugins the
// delivery is queued for, in English.
func TestAStoredDeliveryAnswersWhichPluginsItIsQueuedFor(t *testing.T) {
	secret, ds := deliveries(t)
	tests := []struct {
		name    string
		plugins []string
		code    int
		want    string
	}{
		{"no plugin", noPlugins, http.StatusOK, "received: no plugin takes this event\n"},
		{"one plugin", nil, http.StatusAccepted, "queued for 1 plugin: deploy\n"},
		{"two plugins", []string{"deploy", "cistatus"}, http.StatusAccepted, "queued for 2 plugins: cistatus, deploy\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newReceiver(t, secret, tt.plugins...)
			resp := send(t, g, ds[0])
			if resp.Code != tt.code || resp.Body.String() != tt.want {
				t.Fatalf("answered %d %q, want %d %q", resp.Code, resp.Body, tt.code, tt.want)
			}
		})
	}
}

// blockingDeliverer takes an event only once let is closed.
type blockingDeliverer struct {
	got chan string
	let chan struct{}
}

func (b *blockingDeliverer) DeliverEvent(ctx context.Context, plugin string, ev *pluginv1.WebhookEvent) error {
	b.got <- ev.GetDeliveryId()
	select {
	case <-b.let:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestADeliveryIsAnsweredWithoutWaitingForThePlugins(t *testing.T) {
	const secret = "s3cret"
	st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "chima.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := &blockingDeliverer{got: make(chan string, 4), let: make(chan struct{})}
	q := events.New(events.Options{Store: st, Deliver: d,
		Subscribers: func(string) []string { return []string{"slow"} }, Ready: func() []string { return []string{"slow"} }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { close(d.let); cancel(); <-done }()
	g := &GitHub{Secret: []byte(secret), Queue: q}

	// The first is taken by the plugin, which does not answer.
	w := httptest.NewRecorder()
	g.ServeHTTP(w, signed(secret, `{"n":1}`, "push", "slow-1"))
	if w.Code != http.StatusAccepted {
		t.Fatalf("first delivery answered %d %s", w.Code, w.Body)
	}
	if id := <-d.got; id != "slow-1" {
		t.Fatalf("plugin got %s", id)
	}
	// The next is answered while the plugin still holds the first.
	w = httptest.NewRecorder()
	g.ServeHTTP(w, signed(secret, `{"n":2}`, "push", "slow-2"))
	if w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), "queued for 1 plugin: slow") {
		t.Fatalf("delivery beside a busy plugin answered %d %s", w.Code, w.Body)
	}
}

func TestMalformedJSONWithAValidSignatureIsRefusedAndNotKept(t *testing.T) {
	const secret = "s3cret"
	body := `{"deployment": {"id": 4242,`
	g, st := newReceiver(t, secret)
	req := signed(secret, body, "deployment", "bad-json-1")
	w := httptest.NewRecorder()
	g.ServeHTTP(w, req)
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "not valid JSON") {
		t.Fatalf("malformed JSON answered %d %s", w.Code, w.Body)
	}
	if _, err := st.GetDelivery(context.Background(), "github", "bad-json-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("malformed delivery recorded: %v", err)
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
	g, st := newReceiver(t, "")
	if resp := send(t, g, ds[0]); resp.Code != http.StatusUnauthorized || len(handings(t, st, ds[0].Headers["X-GitHub-Delivery"])) != 0 {
		t.Fatalf("%d", resp.Code)
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
	g, _ := newReceiver(t, secret)
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
	g, _ := newReceiver(t, "s3cret")
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
	g, _ := newReceiver(t, secret)
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
