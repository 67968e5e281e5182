package bot

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/chimaops/chima/core/events"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// DeliverEvent hands a verified webhook event to one plugin (the event
// queue calls it, attempt after attempt; see core/events) and says whether
// it took it: nil when it did, an *events.RefusedError when it answered
// with an error, the host's error when it could not be asked (down,
// restarting past the wait, crashed). Replies a plugin streams while
// handling an event have no room to go to: they are logged; plugins post
// to chat with Host.Post.
func (b *Bot) DeliverEvent(ctx context.Context, plugin string, ev *pluginv1.WebhookEvent) error {
	ev.RequestId = b.newRequestID()
	var refusal string
	err := b.o.Plugins.Call(ctx, plugin, &pluginv1.Call{Kind: &pluginv1.Call_Event{Event: ev}}, func(e *pluginv1.Event) {
		switch k := e.GetKind().(type) {
		case *pluginv1.Event_Error:
			refusal = cmp.Or(k.Error.GetSummary(), "refused")
		case *pluginv1.Event_Done:
			if o := doneOutcome(k.Done); o != "" && o != "success" && refusal == "" {
				refusal = cmp.Or(k.Done.GetDetail(), o)
			}
		case *pluginv1.Event_Reply:
			b.log.Info("plugin replied to a webhook event", "plugin", plugin, "event", ev.GetType(), "text", k.Reply.GetOutput().GetText())
		}
	})
	if err != nil {
		return err
	}
	if refusal != "" {
		// It goes to the store, `chima events` and the audit log too.
		return &events.RefusedError{Plugin: plugin, Reason: b.o.Redactor.String(refusal)}
	}
	return nil
}

// Subscribers returns the plugins subscribed to an event type
// ("github:deployment"), by the type itself or its source ("github:*"): by
// their running manifest, else their last one (a plugin that is
// restarting, or down, still gets the event once it is back).
func (b *Bot) Subscribers(eventType string) []string {
	source, _, _ := strings.Cut(eventType, ":")
	var out []string
	for _, p := range b.o.Plugins.Plugins() {
		if evs := b.subscriptions(p); slices.Contains(evs, eventType) || slices.Contains(evs, source+":*") {
			out = append(out, p)
		}
	}
	return out
}

// readyPlugins are the plugins running now: the event queue hands events
// to them only.
func (b *Bot) readyPlugins() []string {
	var out []string
	for _, p := range b.o.Plugins.Plugins() {
		if b.o.Plugins.State(p) == pluginhost.StateRunning {
			out = append(out, p)
		}
	}
	return out
}

// Events returns the durable event queue that webhook receivers store
// deliveries in; nil without a store.
func (b *Bot) Events() *events.Queue { return b.events }

// subscriptions returns the event types plugin subscribed to: those of its
// running manifest, else those of the last manifest seen (while it
// restarts), else those of the manifest remembered in the store (it has
// not run in this process).
func (b *Bot) subscriptions(plugin string) []string {
	m := b.o.Plugins.Manifest(plugin)
	b.subsMu.Lock()
	defer b.subsMu.Unlock()
	if b.subs == nil {
		b.subs = map[string][]string{}
	}
	if m != nil {
		b.subs[plugin] = m.GetEvents()
	} else if _, ok := b.subs[plugin]; !ok {
		if last := b.lastManifest(plugin); last != nil {
			b.subs[plugin] = last.GetEvents()
		}
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
