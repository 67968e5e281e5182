package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/chimaops/chima/core/webhook"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// DispatchEvent hands a verified webhook event to every plugin that
// subscribed to its type ("github:deployment") or its source ("github:*"),
// except those in done, one after the other, and returns the plugins that
// handled it. A plugin that answered with an error refused it (a
// *webhook.RefusedError); one that could not be asked (down, restarting
// past the wait, crashed) failed on it. Either way it is left out of the
// handled list and the returned error says why, so the delivery is not
// marked handled. A plugin that is restarting is still asked, by the
// subscriptions of its last manifest: an event must not slip past a plugin
// that was down for a moment. Replies a plugin streams while handling an
// event have no room to go to: they are logged; plugins post to chat with
// Host.Post.
func (b *Bot) DispatchEvent(ctx context.Context, ev *pluginv1.WebhookEvent, done []string) ([]string, error) {
	source, _, _ := strings.Cut(ev.GetType(), ":")
	var handled []string
	var errs []error
	for _, p := range b.o.Plugins.Plugins() {
		events := b.subscriptions(p)
		if slices.Contains(done, p) || !(slices.Contains(events, ev.GetType()) || slices.Contains(events, source+":*")) {
			continue
		}
		ev.RequestId = b.newRequestID()
		var refusal string
		err := b.o.Plugins.Call(ctx, p, &pluginv1.Call{Kind: &pluginv1.Call_Event{Event: ev}}, func(e *pluginv1.Event) {
			switch k := e.GetKind().(type) {
			case *pluginv1.Event_Error:
				refusal = cmp.Or(k.Error.GetSummary(), "refused")
			case *pluginv1.Event_Done:
				if o := k.Done.GetOutcome(); o != "" && o != "success" && refusal == "" {
					refusal = cmp.Or(k.Done.GetDetail(), o)
				}
			case *pluginv1.Event_Reply:
				b.log.Info("plugin replied to a webhook event", "plugin", p, "event", ev.GetType(), "text", k.Reply.GetOutput().GetText())
			}
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin %s: %w", p, err))
			continue
		}
		if refusal != "" {
			// It goes to GitHub's delivery page and the store too.
			refusal = b.o.Redactor.String(refusal)
			b.log.Warn("plugin refused a webhook event", "plugin", p, "event", ev.GetType(), "delivery", ev.GetDeliveryId(), "reason", refusal)
			errs = append(errs, &webhook.RefusedError{Plugin: p, Reason: refusal})
			continue
		}
		handled = append(handled, p)
	}
	return handled, errors.Join(errs...)
}

// subscriptions returns the event types plugin subscribed to: those of its
// running manifest, else those of the last manifest seen (while it
// restarts).
func (b *Bot) subscriptions(plugin string) []string {
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	if m := b.o.Plugins.Manifest(plugin); m != nil {
		if b.subs == nil {
			b.subs = map[string][]string{}
		}
		b.subs[plugin] = m.GetEvents()
	}
	return b.subs[plugin]
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
