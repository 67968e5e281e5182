package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// notifier is one outbound target: a notifier room or a hook's outbound
// URL.
type notifier struct {
	a           *Adapter
	name        string
	url         string // a secret: never logged, never in an error
	preset      string
	tmpl        *template.Template
	contentType string
	headers     map[string]string
	timeout     time.Duration
	attempts    int
	backoff     time.Duration
	// mu keeps one notifier's posts in the order they were sent.
	mu sync.Mutex
}

// Metadata headers sent with every outbound post, for receivers of your
// own: the post's id, its room and thread, and the inbound message it
// answers.
const (
	MessageIDHeader = "X-Chima-Message-Id"
	RoomHeader      = "X-Chima-Room"
	ThreadHeader    = "X-Chima-Thread"
	ReplyToHeader   = "X-Chima-Reply-To"
)

// send renders out and posts it, retrying 5xx answers, timeouts and
// network errors with backoff. A 429 is returned at once as a
// *chat.RetryAfterError with the receiver's Retry-After, and nothing was
// posted: the core waits and sends again. A 4xx is not retried.
func (n *notifier) send(ctx context.Context, ref chat.MessageRef, out chat.Output, replyTo string) error {
	body, err := n.render(n.a.templateData(ref, out, replyTo))
	if err != nil {
		return fmt.Errorf("notifier %s: render the body: %w", n.name, err)
	}
	meta := map[string]string{MessageIDHeader: ref.MessageID, RoomHeader: ref.Room, ThreadHeader: ref.ThreadID, ReplyToHeader: replyTo}
	n.mu.Lock()
	defer n.mu.Unlock()
	backoff := n.backoff
	for tries := 1; ; tries++ {
		status, retryAfter, err := n.attempt(ctx, body, meta)
		switch {
		case err == nil && status/100 == 2:
			n.a.delivered.Add(1)
			return nil
		case err == nil && status == http.StatusTooManyRequests:
			n.a.log.Info("notifier rate limited", "notifier", n.name, "id", ref.MessageID, "retry_after", retryAfter)
			return &chat.RetryAfterError{After: retryAfter, Err: fmt.Errorf("notifier %s: status 429", n.name)}
		case ctx.Err() != nil:
			return fmt.Errorf("notifier %s: %w", n.name, ctx.Err())
		case (err != nil || status/100 == 5) && tries < n.attempts:
			n.a.log.Debug("notifier post retried", "notifier", n.name, "id", ref.MessageID, "status", status, "error", errString(err), "wait", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("notifier %s: %w", n.name, ctx.Err())
			}
			backoff = min(2*backoff, 30*time.Second)
		default:
			c := n.a.failed.Add(1)
			if err == nil {
				err = fmt.Errorf("status %d", status)
			}
			n.a.log.Error("notifier post failed", "notifier", n.name, "id", ref.MessageID, "tries", tries, "error", err.Error(), "failed", c)
			return fmt.Errorf("notifier %s: post failed after %d tries: %w", n.name, tries, err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (n *notifier) render(d TemplateData) ([]byte, error) {
	if n.tmpl != nil {
		var b bytes.Buffer
		if err := n.tmpl.Execute(&b, d); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return presets[n.preset](d)
}

// attempt posts body once. Its error never holds the URL.
func (n *notifier) attempt(ctx context.Context, body []byte, meta map[string]string) (status int, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, errors.New("cannot build the request")
	}
	req.Header.Set("Content-Type", n.contentType)
	req.Header.Set("User-Agent", "chima-webhook")
	for k, v := range meta {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	for k, v := range n.headers {
		req.Header.Set(k, v)
	}
	resp, err := n.a.client.Do(req)
	if err != nil {
		return 0, 0, n.scrub(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), nil
}

// scrub drops the URL (which holds the receiver's secret) from a client
// error: "Post \"https://…\": dial tcp: …" becomes "post: dial tcp: …".
func (n *notifier) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if strings.Contains(msg, n.url) {
		msg = strings.ReplaceAll(msg, n.url, "[url]")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out after " + n.timeout.String()
	}
	return errors.New("post: " + msg)
}

// maxRetryAfter caps a receiver's Retry-After.
const maxRetryAfter = 5 * time.Minute

// parseRetryAfter reads seconds or an HTTP date; 1s when absent or
// unreadable, capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return time.Second
}
