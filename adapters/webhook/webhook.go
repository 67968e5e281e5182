package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// Adapter is the generic webhook adapter. Build it with Factory or New.
type Adapter struct {
	setup     chat.Setup
	name      string
	bot       string
	log       *slog.Logger
	client    *http.Client
	hooks     map[string]*hook
	hookOrder []string
	notifiers map[string]*notifier

	idPrefix string
	seq      atomic.Uint64

	ready   chan struct{} // closed when Run starts
	stopped chan struct{} // closed when Run ends

	mu      sync.Mutex
	handler chat.Handler
	running bool
	// waiting is the request of each room that is collecting replies.
	waiting map[string]*waiter
	// slots let the requests of one room wait in turn.
	slots map[string]*roomSlot
	// recent maps the ids of recent inbound messages to their hook, for
	// replies that come after the request has answered.
	recent *boundedMap
	// roomHooks maps rooms recent inbound messages came from to their hook
	// and the latest message's id: "hook\x00id".
	roomHooks *boundedMap
	// seen holds recent delivery ids, per hook.
	seen *boundedMap

	delivered, failed, dropped atomic.Uint64
}

var (
	_ chat.Adapter       = (*Adapter)(nil)
	_ chat.RouteProvider = (*Adapter)(nil)
	_ chat.Threader      = (*Adapter)(nil)
)

func newAdapter(s chat.Setup) *Adapter {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	bot := s.BotName
	if bot == "" {
		bot = "chima"
	}
	return &Adapter{
		setup: s, name: s.Name, bot: bot, log: log.With("adapter", s.Name),
		client: &http.Client{
			// A receiver that redirects is misconfigured; following would
			// turn the POST into a GET.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		hooks:     map[string]*hook{},
		notifiers: map[string]*notifier{},
		idPrefix:  strconv.FormatInt(time.Now().UnixNano(), 36) + "-",
		ready:     make(chan struct{}),
		stopped:   make(chan struct{}),
		waiting:   map[string]*waiter{},
		slots:     map[string]*roomSlot{},
		recent:    newBoundedMap(4096),
		roomHooks: newBoundedMap(4096),
		seen:      newBoundedMap(4096),
	}
}

// Name is the adapter's configured name.
func (a *Adapter) Name() string { return a.name }

// Self is the bot: an inbound message from this user id is the bot's own
// and is ignored.
func (a *Adapter) Self() chat.User { return chat.User{ID: a.bot, Name: a.bot} }

// SupportsThreads is true: a reply in the thread of an inbound message is
// routed back to its request (or its hook's outbound URL). Notifiers have no
// threads; a post to one drops the thread.
func (a *Adapter) SupportsThreads() bool { return true }

// Stats counts what the adapter posted.
type Stats struct {
	// Delivered posts were taken by their receiver.
	Delivered uint64
	// Failed posts were refused (4xx) or given up on after retries.
	Failed uint64
	// Dropped replies had nowhere to go: they came after their request
	// answered and the hook has no outbound URL.
	Dropped uint64
}

// Stats returns the adapter's counters.
func (a *Adapter) Stats() Stats {
	return Stats{Delivered: a.delivered.Load(), Failed: a.failed.Load(), Dropped: a.dropped.Load()}
}

// Run serves inbound hooks and posts to notifiers until ctx ends.
func (a *Adapter) Run(ctx context.Context, h chat.Handler) error {
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("webhook adapter: Run called twice")
	}
	a.running = true
	a.handler = h
	a.mu.Unlock()
	close(a.ready)
	<-ctx.Done()
	a.mu.Lock()
	a.handler = nil
	a.mu.Unlock()
	close(a.stopped)
	return nil
}

func (a *Adapter) newID() string {
	return a.idPrefix + strconv.FormatUint(a.seq.Add(1), 10)
}

// Send posts out to to.Room: into the response of the request waiting in
// that room (or thread), to the notifier of that name, or to the outbound
// URL of the hook a recent message came from. It returns once the post is
// queued; see the package doc for delivery.
func (a *Adapter) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if to.Room == "" {
		return chat.MessageRef{}, fmt.Errorf("webhook adapter %s: send to an empty room: %w", a.name, chat.ErrUnknownRoom)
	}
	if err := ctx.Err(); err != nil {
		return chat.MessageRef{}, err
	}
	out = degradeButtons(out)
	ref := chat.MessageRef{Adapter: a.name, Room: to.Room, MessageID: a.newID(), ThreadID: to.ThreadID}

	a.mu.Lock()
	w := a.waiting[to.Room]
	if w != nil && (to.ThreadID == "" || to.ThreadID == w.id || to.ThreadID == w.thread) {
		w.add(ref, out)
		a.mu.Unlock()
		if w.hook.toOutbound {
			return ref, w.hook.outbound.send(ctx, ref, out, w.id)
		}
		return ref, nil
	}
	a.mu.Unlock()

	if to.ThreadID != "" {
		if name, ok := a.recent.get(to.ThreadID); ok {
			return ref, a.late(ctx, a.hooks[name], ref, out, to.ThreadID)
		}
	}
	if n := a.notifiers[to.Room]; n != nil {
		ref.ThreadID = ""
		return ref, n.send(ctx, ref, out, "")
	}
	if v, ok := a.roomHooks.get(to.Room); ok {
		name, last, _ := strings.Cut(v, "\x00")
		return ref, a.late(ctx, a.hooks[name], ref, out, last)
	}
	return chat.MessageRef{}, fmt.Errorf("webhook adapter %s: room %q is neither a notifier nor a hook's room: %w", a.name, to.Room, chat.ErrUnknownRoom)
}

// late posts a reply that came after its request answered: to the hook's
// outbound URL, or nowhere (logged and counted).
func (a *Adapter) late(ctx context.Context, h *hook, ref chat.MessageRef, out chat.Output, replyTo string) error {
	if h.outbound != nil {
		return h.outbound.send(ctx, ref, out, replyTo)
	}
	n := a.dropped.Add(1)
	a.log.Warn("reply dropped: its request has answered and the hook has no outbound URL",
		"hook", h.name, "room", ref.Room, "thread", ref.ThreadID, "dropped", n)
	return nil
}

// degradeButtons turns buttons into text: notifiers and responses have no
// buttons. The core does this already for adapters without buttons; this
// keeps a direct caller's buttons from vanishing.
func degradeButtons(out chat.Output) chat.Output {
	if len(out.Buttons) == 0 {
		return out
	}
	for _, b := range out.Buttons {
		if out.Text != "" {
			out.Text += "\n"
		}
		out.Text += chat.EscapeMarkup(b.AsText())
	}
	out.Buttons = nil
	return out
}

// boundedMap is a map that forgets its oldest keys beyond a size.
type boundedMap struct {
	mu   sync.Mutex
	m    map[string]string
	ring []string
	next int
}

func newBoundedMap(n int) *boundedMap {
	return &boundedMap{m: make(map[string]string, n), ring: make([]string, n)}
}

func (b *boundedMap) get(k string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}

// add sets k to v unless k is there already, and returns k's value and
// whether k was new.
func (b *boundedMap) add(k, v string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.m[k]; ok {
		return old, false
	}
	b.insert(k, v)
	return v, true
}

// put sets k to v.
func (b *boundedMap) put(k, v string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[k]; ok {
		b.m[k] = v
		return
	}
	b.insert(k, v)
}

func (b *boundedMap) insert(k, v string) {
	if old := b.ring[b.next]; old != "" {
		delete(b.m, old)
	}
	b.ring[b.next] = k
	b.next = (b.next + 1) % len(b.ring)
	b.m[k] = v
}
