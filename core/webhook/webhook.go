// Package webhook receives webhooks, verifies them and hands them to the
// plugins that subscribed to their event type. A request whose signature
// does not verify is answered 401 and nothing else happens; a redelivery
// (same delivery id) is acknowledged and dropped.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// MaxBody is the largest body accepted: GitHub caps payloads at 25 MB.
const MaxBody = 25 << 20

// Dispatcher hands a verified event to the plugins subscribed to its type and
// returns how many took it.
type Dispatcher interface {
	DispatchEvent(ctx context.Context, ev *pluginv1.WebhookEvent) (int, error)
}

// Deliveries remembers delivery ids, to drop redeliveries.
type Deliveries interface {
	SeenDelivery(ctx context.Context, source, id string) (bool, error)
	// ForgetDelivery drops a recorded id whose handling failed, so that a
	// redelivery is handled.
	ForgetDelivery(ctx context.Context, source, id string) error
}

// GitHub receives GitHub webhooks at one URL (POST /webhooks/github).
type GitHub struct {
	// Secret is the hook's secret. Required: without it every delivery is
	// refused, since anyone could forge one.
	Secret     []byte
	Deliveries Deliveries
	Dispatch   Dispatcher
	Logger     *slog.Logger
	// Timeout bounds the plugins' handling, which happens before the answer
	// so that an acknowledged delivery is never lost (GitHub waits 10s).
	Timeout time.Duration
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

// ServeHTTP verifies, de-duplicates and dispatches one delivery.
func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	delivery := r.Header.Get("X-GitHub-Delivery")
	event := r.Header.Get("X-GitHub-Event")
	if !VerifySignature(g.Secret, body, r.Header.Get("X-Hub-Signature-256")) {
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
	ctx := r.Context()
	if g.Deliveries != nil {
		seen, err := g.Deliveries.SeenDelivery(ctx, "github", delivery)
		if err != nil {
			log.Error("record webhook delivery", "error", err)
			http.Error(w, "could not record delivery", http.StatusServiceUnavailable)
			return
		}
		if seen {
			log.Info("github webhook redelivery dropped")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "already handled\n")
			return
		}
	}
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = 8 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	headers := map[string]string{}
	for _, h := range []string{"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID", "X-GitHub-Hook-Installation-Target-Type", "X-GitHub-Hook-Installation-Target-ID", "User-Agent"} {
		if v := r.Header.Get(h); v != "" {
			headers[h] = v
		}
	}
	n, err := g.Dispatch.DispatchEvent(ctx, &pluginv1.WebhookEvent{
		Type: "github:" + event, DeliveryId: delivery, Payload: payload, Headers: headers,
	})
	if err != nil {
		log.Error("github webhook dispatch failed", "error", err)
		if g.Deliveries != nil {
			// Not handled: GitHub's redelivery (or a person's) must be.
			if ferr := g.Deliveries.ForgetDelivery(context.WithoutCancel(ctx), "github", delivery); ferr != nil {
				log.Error("forget failed webhook delivery", "error", ferr)
			}
		}
		http.Error(w, "handling failed", http.StatusInternalServerError)
		return
	}
	log.Info("github webhook handled", "plugins", n)
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "handled by %d plugins\n", n)
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
