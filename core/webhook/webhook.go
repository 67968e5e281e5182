// Package webhook receives webhooks, verifies them, records them durably and
// hands them to the plugins that subscribed to their event type.
//
// A stranger cannot flood it: the bytes of bodies read before their
// signature is checked are bounded by a budget shared by every request
// (Budget), and a request that does not fit in time is answered 503 with
// Retry-After, unread. A request whose signature does not verify is answered
// 401 and nothing else happens.
//
// It loses nothing: a verified delivery is recorded (payload and all) before
// any plugin sees it, and marked handled only once every subscribed plugin
// took it. A delivery a plugin refused or failed on stays recorded as failed
// and is answered with an error, so that its redelivery is handled again,
// by the plugins that did not take it yet. A redelivery of a handled one is
// acknowledged and dropped.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
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

// Dispatcher hands a verified event to the plugins subscribed to its type.
type Dispatcher interface {
	// DispatchEvent hands ev to every subscribed plugin not in done (those
	// took it already) and returns the plugins that took it now. A plugin
	// that refused the event or failed on it is not among them, and err
	// says why: a *RefusedError for a plugin that answered it would not
	// handle it, any other error for a plugin that could not be asked.
	DispatchEvent(ctx context.Context, ev *pluginv1.WebhookEvent, done []string) (handled []string, err error)
}

// RefusedError is a plugin's refusal of an event it was handed (a payload it
// could not decode, say): asking it again with the same payload will not
// help, though a redelivery is still handled again.
type RefusedError struct {
	// Plugin is the plugin that refused the event.
	Plugin string
	// Reason is the plugin's own words.
	Reason string
}

// Error says which plugin refused the event, and why.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("plugin %s refused the event: %s", e.Plugin, e.Reason)
}

// Deliveries records deliveries durably before they are handled, so that a
// delivery is never lost and a redelivery is handled once.
type Deliveries interface {
	// ClaimDelivery records d and claims its handling for lease; see
	// store.Store.ClaimDelivery.
	ClaimDelivery(ctx context.Context, d store.Delivery, lease time.Duration) (store.Delivery, store.Claim, error)
	// FinishDelivery ends the claim: handled when failure is empty,
	// failed otherwise; handledBy are the plugins that took it.
	FinishDelivery(ctx context.Context, source, id string, handledBy []string, failure string) error
}

// GitHub receives GitHub webhooks at one URL (POST /webhooks/github).
type GitHub struct {
	// Secret is the hook's secret. Required: without it every delivery is
	// refused, since anyone could forge one.
	Secret []byte
	// Deliveries records deliveries. Required: without it nothing could
	// be acknowledged honestly, and every delivery is answered 503.
	Deliveries Deliveries
	Dispatch   Dispatcher
	Logger     *slog.Logger
	// Timeout bounds the plugins' handling, which happens before the answer
	// so that an acknowledged delivery is never lost (GitHub waits 10s).
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
	if g.Deliveries == nil {
		log.Error("github webhook refused: no delivery record to keep it in")
		http.Error(w, "could not record delivery", http.StatusServiceUnavailable)
		return
	}
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 8 * time.Second
	}
	// Neither the recording nor the handling stops when GitHub hangs up:
	// an outcome half written would be worse than a late one.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), timeout)
	defer cancel()
	headers := map[string]string{}
	for _, h := range []string{"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID", "X-GitHub-Hook-Installation-Target-Type", "X-GitHub-Hook-Installation-Target-ID", "User-Agent"} {
		if v := r.Header.Get(h); v != "" {
			headers[h] = v
		}
	}
	// The claim outlives the handling's timeout, so that a redelivery
	// racing a slow handling is not handled twice at once.
	lease := 2 * timeout
	rec, claim, err := g.Deliveries.ClaimDelivery(ctx, store.Delivery{
		Source: "github", ID: delivery, Event: event, Payload: payload, Headers: headers,
	}, lease)
	if err != nil {
		log.Error("record webhook delivery", "error", err)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "could not record delivery", http.StatusServiceUnavailable)
		return
	}
	switch claim {
	case store.ClaimHandled:
		log.Info("github webhook redelivery dropped")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "already handled\n")
		return
	case store.ClaimBusy:
		log.Info("github webhook redelivery while the delivery is being handled")
		w.Header().Set("Retry-After", strconv.Itoa(int(lease.Seconds())))
		http.Error(w, "this delivery is being handled; ask again later", http.StatusConflict)
		return
	}
	handled, failure, status := g.dispatch(ctx, &pluginv1.WebhookEvent{
		Type: "github:" + event, DeliveryId: delivery, Payload: payload, Headers: headers,
	}, rec.HandledBy)
	if err := g.Deliveries.FinishDelivery(context.WithoutCancel(ctx), "github", delivery, handled, failure); err != nil {
		log.Error("record webhook delivery outcome", "error", err, "handled_by", handled, "failure", failure)
		w.Header().Set("Retry-After", "5")
		http.Error(w, "could not record the delivery's outcome", http.StatusServiceUnavailable)
		return
	}
	if failure != "" {
		log.Warn("github webhook not handled; a redelivery will be", "error", failure, "attempt", rec.Attempts, "handled_by", handled)
		answer := "not handled: " + failure
		if status == http.StatusServiceUnavailable {
			// What broke inside the bot is for its log, not for
			// whoever reads GitHub's delivery page.
			w.Header().Set("Retry-After", "10")
			answer = "not handled: a plugin could not take it now (the bot's log says why); redeliver it later"
		}
		http.Error(w, answer, status)
		return
	}
	log.Info("github webhook handled", "plugins", handled, "attempt", rec.Attempts)
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, handledAnswer(append(slices.Clip(rec.HandledBy), handled...))+"\n")
}

// handledAnswer is what GitHub's delivery page shows of a handled delivery:
// the plugins that took it, or that none wanted it.
func handledAnswer(plugins []string) string {
	switch len(plugins) {
	case 0:
		return "handled: no plugin takes this event"
	case 1:
		return "handled by 1 plugin: " + plugins[0]
	}
	return fmt.Sprintf("handled by %d plugins: %s", len(plugins), strings.Join(plugins, ", "))
}

// dispatch hands ev over and returns the plugins that took it, and, when
// some did not, why and the status to answer: 422 when the payload was
// refused, 503 when a plugin could not be asked.
func (g *GitHub) dispatch(ctx context.Context, ev *pluginv1.WebhookEvent, done []string) (handled []string, failure string, status int) {
	if !json.Valid(ev.GetPayload()) {
		return nil, "the payload is not valid JSON", http.StatusUnprocessableEntity
	}
	handled, err := g.Dispatch.DispatchEvent(ctx, ev, done)
	if err == nil {
		return handled, "", 0
	}
	var refused *RefusedError
	status = http.StatusServiceUnavailable
	if errors.As(err, &refused) {
		status = http.StatusUnprocessableEntity
	}
	return handled, strings.ReplaceAll(err.Error(), "\n", "; "), status
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
