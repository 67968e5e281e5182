// Package webhook receives webhooks, verifies them and hands them to the
// durable event queue (core/events), which delivers them to the plugins
// that subscribed to their event type.
//
// A stranger cannot flood it: the bytes of bodies read before their
// signature is checked are bounded by a budget shared by every request
// (Budget), and a request that does not fit in time is answered 503 with
// Retry-After, unread. A request whose signature does not verify is answered
// 401 and nothing else happens.
//
// It loses nothing and keeps GitHub waiting for nothing: a verified delivery
// is stored (payload, headers and all, with one pending handing per
// subscribed plugin) and then answered 202 at once; the plugins get it from
// the queue, with retries. A redelivery is acknowledged (200) and not handed
// again to a plugin that took it; one whose handing ended failed is handed
// it again. A delivery that could not be stored is answered 503, so that
// GitHub's redelivery brings it again.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/core/store"
)

// MaxBody is the largest body accepted: GitHub caps payloads at 25 MB.
const MaxBody = 25 << 20

// DefaultBudget is the default bound on the bytes of bodies being read
// before their signature is checked: one payload of GitHub's largest size
// with a little room beside it, or many of the small ones GitHub usually
// sends. Freed bodies stay in the heap until the garbage collector runs, so
// the bot's memory may grow by about twice the budget under a flood; the
// e2e flood test measures it (at most 64 MiB is allowed).
const DefaultBudget = MaxBody + 1<<20

// DefaultBudgetWait is how long a request waits for room in the budget
// before it is answered 503. GitHub gives up on a delivery after 10s.
const DefaultBudgetWait = 5 * time.Second

// Receiver stores a verified delivery for the plugins subscribed to it:
// *events.Queue.
type Receiver interface {
	Receive(ctx context.Context, d store.Delivery) (store.Receipt, error)
}

// GitHub receives GitHub webhooks at one URL (POST /webhooks/github).
type GitHub struct {
	// Secret is the hook's secret. Required: without it every delivery is
	// refused, since anyone could forge one.
	Secret []byte
	// Queue stores deliveries for the plugins. Required: without it
	// nothing could be acknowledged honestly, and every delivery is
	// answered 503.
	Queue  Receiver
	Logger *slog.Logger
	// Timeout bounds storing a delivery, which happens before the answer
	// (GitHub waits 10s); default 5s.
	Timeout time.Duration
	// Budget bounds the bytes of bodies being read before their signature
	// is checked, across all requests at once: DefaultBudget when 0. It
	// must hold MaxBody, or the largest payloads are never accepted.
	Budget *Budget
	// BudgetWait is how long a request waits for room in the budget;
	// DefaultBudgetWait when 0.
	BudgetWait time.Duration
}

// VerifySignature checks a GitHub X-Hub-Signature-256 header value
// ("sha256=<hex>") against body, in constant time.
func VerifySignature(secret, body []byte, header string) bool {
	if len(secret) == 0 {
		return false
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

func (g *GitHub) log() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

// ServeHTTP verifies, records and dispatches one delivery.
func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	delivery := r.Header.Get("X-GitHub-Delivery")
	event := r.Header.Get("X-GitHub-Event")
	body, release, status, msg := g.readBody(w, r)
	if status != 0 {
		if status == http.StatusServiceUnavailable {
			g.log().Warn("github webhook deferred: too many bodies being read", "delivery", delivery, "event", event, "remote", r.RemoteAddr)
		}
		http.Error(w, msg, status)
		return
	}
	verified := VerifySignature(g.Secret, body, r.Header.Get("X-Hub-Signature-256"))
	// From here the body is either GitHub's or garbage: it leaves the
	// budget of unverified bytes.
	release()
	if !verified {
		// Say nothing about why: a forger learns nothing.
		g.log().Warn("github webhook refused: bad or missing signature", "delivery", delivery, "event", event, "remote", r.RemoteAddr)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if event == "" || delivery == "" {
		http.Error(w, "missing X-GitHub-Event or X-GitHub-Delivery", http.StatusBadRequest)
		return
	}
	payload, err := jsonPayload(r.Header.Get("Content-Type"), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	log := g.log().With("delivery", delivery, "event", event)
	if event == "ping" {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "pong\n")
		return
	}
	if !json.Valid(payload) {
		// Nothing could ever decode it: it is not kept, and GitHub's page
		// says why.
		log.Warn("github webhook refused: the payload is not valid JSON")
		http.Error(w, "the payload is not valid JSON", http.StatusUnprocessableEntity)
		return
	}
	if g.Queue == nil {
		log.Error("github webhook refused: no event queue to keep it in")
		http.Error(w, "could not record delivery", http.StatusServiceUnavailable)
		return
	}
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	// The write does not stop when GitHub hangs up: a delivery half
	// recorded would be worse than a late answer.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
	defer cancel()
	headers := make(map[string]string, len(keptHeaders))
	for _, h := range keptHeaders {
		if v := r.Header.Get(h); v != "" {
			headers[h] = v
		}
	}
	rc, err := g.Queue.Receive(ctx, store.Delivery{
		Source: "github", ID: delivery, Event: event, Payload: payload, Headers: headers,
	})
	if err != nil {
		log.Error("record webhook delivery", "error", err)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "could not record delivery", http.StatusServiceUnavailable)
		return
	}
	status, answer := receiptAnswer(rc)
	log.Info("github webhook received", "new", rc.New, "queued_for", rc.Queued)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer+"\n")
}

// keptHeaders are the request headers stored with a delivery and handed to
// plugins.
var keptHeaders = []string{"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID",
	"X-GitHub-Hook-Installation-Target-Type", "X-GitHub-Hook-Installation-Target-ID", "User-Agent"}

// receiptAnswer is the status and what GitHub's delivery page shows of a
// stored delivery: 202 and the plugins it is queued for, or 200 when no
// plugin is to get it (now).
func receiptAnswer(rc store.Receipt) (int, string) {
	plugins := func() string {
		if len(rc.Queued) == 1 {
			return "1 plugin: " + rc.Queued[0]
		}
		return fmt.Sprintf("%d plugins: %s", len(rc.Queued), strings.Join(rc.Queued, ", "))
	}
	switch {
	case rc.New && len(rc.Queued) == 0:
		return http.StatusOK, "received: no plugin takes this event"
	case rc.New:
		return http.StatusAccepted, "queued for " + plugins()
	case len(rc.Queued) > 0:
		return http.StatusAccepted, "redelivery queued again for the " + plugins() + " (its handing had failed)"
	}
	return http.StatusOK, "already received: not handed again"
}

// readBody reads the body within the budget of unverified bytes; the caller
// calls release once the body is verified or dropped. It returns a status
// and message instead when the body is too large, has no declared length,
// or cannot get room in the budget in time.
func (g *GitHub) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), status int, msg string) {
	n := r.ContentLength
	switch {
	case n > MaxBody:
		return nil, nil, http.StatusRequestEntityTooLarge, "body too large"
	case n < 0:
		// GitHub always says how long its body is. Without that, the
		// budget would have to assume the largest for every request.
		return nil, nil, http.StatusLengthRequired, "Content-Length required"
	}
	budget := g.Budget
	if budget == nil {
		budget = defaultBudget
	}
	wait := g.BudgetWait
	if wait <= 0 {
		wait = DefaultBudgetWait
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	if !budget.Acquire(ctx, n) {
		// The body stays unread: the server closes the connection
		// rather than drain it.
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return nil, nil, http.StatusServiceUnavailable, "too many webhook bodies in flight; try again later"
	}
	release = sync.OnceFunc(func() { budget.Release(n) })
	// Exactly the declared size, read once: no buffer growth, no copy.
	body = make([]byte, n)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		release()
		return nil, nil, http.StatusBadRequest, "body shorter than its Content-Length or unreadable"
	}
	return body, release, 0, ""
}

// jsonPayload returns the JSON document of a delivery, which GitHub sends
// either as the body or, for form-encoded hooks, as the payload field.
func jsonPayload(contentType string, body []byte) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		p := vals.Get("payload")
		if p == "" {
			return nil, errors.New("form body has no payload field")
		}
		return []byte(p), nil
	case "application/json", "":
		return body, nil
	default:
		return nil, fmt.Errorf("unsupported content type %q", mt)
	}
}
