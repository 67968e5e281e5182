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
	"text/template"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// notifier is one outbound target: a notifier room or a hook's outbound
// URL. Its worker posts its queue in order.
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
	queue       chan post
}

// post is one rendered body waiting for delivery.
type post struct {
	id   string
	body []byte
}

// maxRateLimitWaits bounds how often one post waits out a 429.
const maxRateLimitWaits = 10

// maxRetryAfter caps a receiver's Retry-After.
const maxRetryAfter = 5 * time.Minute

// enqueue renders out and queues it. It fails at once on a template error,
// and with a *chat.RetryAfterError when the queue is full.
func (n *notifier) enqueue(ref chat.MessageRef, out chat.Output, replyTo string) error {
	d := n.a.templateData(ref, out, replyTo)
	body, err := n.render(d)
	if err != nil {
		return fmt.Errorf("notifier %s: render the body: %w", n.name, err)
	}
	select {
	case n.queue <- post{id: ref.MessageID, body: body}:
		return nil
	default:
		return &chat.RetryAfterError{After: time.Second, Err: fmt.Errorf("notifier %s: %d posts are waiting", n.name, cap(n.queue))}
	}
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

// work posts the queue until ctx ends; what is left then is counted as
// dropped.
func (n *notifier) work(ctx context.Context) {
	for {
		select {
		case p := <-n.queue:
			n.deliver(ctx, p)
		case <-ctx.Done():
			for {
				select {
				case <-n.queue:
					c := n.a.dropped.Add(1)
					n.a.log.Warn("post dropped: the adapter stopped", "notifier", n.name, "dropped", c)
				default:
					return
				}
			}
		}
	}
}

// deliver posts p, retrying 5xx, timeouts and network errors with backoff
// and waiting out 429s.
func (n *notifier) deliver(ctx context.Context, p post) {
	waits, tries := 0, 0
	backoff := n.backoff
	for {
		tries++
		status, retryAfter, err := n.attempt(ctx, p.body)
		var wait time.Duration
		switch {
		case err == nil && status/100 == 2:
			n.a.delivered.Add(1)
			return
		case ctx.Err() != nil:
			c := n.a.dropped.Add(1)
			n.a.log.Warn("post dropped: the adapter stopped", "notifier", n.name, "id", p.id, "dropped", c)
			return
		case status == http.StatusTooManyRequests && waits < maxRateLimitWaits:
			waits++
			tries-- // a rate limit is not a failed attempt
			wait = retryAfter
		case (err != nil || status/100 == 5) && tries < n.attempts:
			wait = backoff
			backoff = min(2*backoff, 30*time.Second)
		default:
			c := n.a.failed.Add(1)
			why := "status " + strconv.Itoa(status)
			if err != nil {
				why = err.Error()
			}
			n.a.log.Error("post failed", "notifier", n.name, "id", p.id, "tries", tries, "error", why, "failed", c)
			return
		}
		n.a.log.Debug("post retried", "notifier", n.name, "id", p.id, "status", status, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// attempt posts body once. Its error never holds the URL.
func (n *notifier) attempt(ctx context.Context, body []byte) (status int, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, errors.New("cannot build the request")
	}
	req.Header.Set("Content-Type", n.contentType)
	req.Header.Set("User-Agent", "chima-webhook")
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
