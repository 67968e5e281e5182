package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// DispatchEvent hands a verified webhook event to every running plugin that
// subscribed to its type ("github:deployment") or its source ("github:*"),
// one after the other, and returns how many handled it. Replies a plugin
// streams while handling an event have no room to go to: they are logged;
// plugins post to chat with Host.Post.
func (b *Bot) DispatchEvent(ctx context.Context, ev *pluginv1.WebhookEvent) (int, error) {
	source, _, _ := strings.Cut(ev.GetType(), ":")
	n := 0
	var errs []error
	for _, p := range b.o.Plugins.Plugins() {
		m := b.o.Plugins.Manifest(p)
		if m == nil || !(slices.Contains(m.GetEvents(), ev.GetType()) || slices.Contains(m.GetEvents(), source+":*")) {
			continue
		}
		ev.RequestId = b.newRequestID()
		var userErr string
		err := b.o.Plugins.Call(ctx, p, &pluginv1.Call{Kind: &pluginv1.Call_Event{Event: ev}}, func(e *pluginv1.Event) {
			switch k := e.GetKind().(type) {
			case *pluginv1.Event_Error:
				userErr = k.Error.GetSummary()
			case *pluginv1.Event_Done:
				if k.Done.GetOutcome() == "error" {
					userErr = k.Done.GetDetail()
				}
			case *pluginv1.Event_Reply:
				b.log.Info("plugin replied to a webhook event", "plugin", p, "event", ev.GetType(), "text", k.Reply.GetOutput().GetText())
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin %s: %w", p, err))
			continue
		}
		if userErr != "" {
			b.log.Warn("plugin refused a webhook event", "plugin", p, "event", ev.GetType(), "delivery", ev.GetDeliveryId(), "reason", userErr)
		}
		n++
	}
	return n, errors.Join(errs...)
}

// reservedPaths are the core's own routes; a plugin's pages cannot shadow
// them.
var reservedPaths = []string{"/healthz", "/metrics", "/plugins", "/webhooks/"}

// safeHeaders are the response headers a plugin page may set. The last
// three only narrow what a browser does with the page (a page's own
// Content-Security-Policy, say), so a plugin may set them too.
var safeHeaders = []string{"Content-Type", "Cache-Control", "Content-Disposition", "Last-Modified", "ETag",
	"Vary", "Content-Security-Policy", "Referrer-Policy"}

// Pages returns the HTTP handler for plugins' read-only pages: a GET under a
// prefix a running plugin declared in its manifest's http_paths is passed to
// that plugin (the longest prefix wins).
func (b *Bot) Pages() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		plugin, ok := b.pageOwner(r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		headers := map[string]string{}
		for _, h := range []string{"Accept", "User-Agent"} {
			if v := r.Header.Get(h); v != "" {
				headers[h] = v
			}
		}
		resp, err := b.o.Plugins.HTTP(r.Context(), plugin, &pluginv1.HTTPRequest{
			Method: http.MethodGet, Path: r.URL.Path, Query: r.URL.RawQuery, Headers: headers,
		})
		if err != nil {
			b.log.Error("plugin page failed", "plugin", plugin, "path", r.URL.Path, "error", err)
			http.Error(w, "the "+plugin+" plugin could not serve this page", http.StatusBadGateway)
			return
		}
		for _, h := range safeHeaders {
			if v := resp.GetHeaders()[h]; v != "" {
				w.Header().Set(h, v)
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		status := int(resp.GetStatus())
		if status < 100 || status > 599 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		if r.Method == http.MethodGet {
			_, _ = w.Write(resp.GetBody())
		}
	})
}

func (b *Bot) pageOwner(path string) (string, bool) {
	for _, p := range reservedPaths {
		if strings.HasPrefix(path, p) {
			return "", false
		}
	}
	owner, best := "", 0
	for _, name := range b.o.Plugins.Plugins() {
		m := b.o.Plugins.Manifest(name)
		for _, prefix := range m.GetHttpPaths() {
			if strings.HasPrefix(prefix, "/") && strings.HasPrefix(path, prefix) && len(prefix) > best {
				owner, best = name, len(prefix)
			}
		}
	}
	return owner, owner != ""
}
