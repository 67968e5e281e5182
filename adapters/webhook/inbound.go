package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// Inbound request headers.
const (
	// SignatureHeader carries "sha256=<hex>": the HMAC-SHA256 of the body
	// (or of "<timestamp>.<body>" when TimestampHeader is set) keyed with
	// the hook's secret, like GitHub's X-Hub-Signature-256.
	SignatureHeader = "X-Chima-Signature"
	// TimestampHeader carries the Unix time the request was signed; it
	// must be within MaxSkew of the bot's clock.
	TimestampHeader = "X-Chima-Timestamp"
	// DeliveryHeader (or IdempotencyHeader) names a delivery: a second
	// request with the same one is not handled again.
	DeliveryHeader    = "X-Chima-Delivery"
	IdempotencyHeader = "Idempotency-Key"
	// MaxSkew bounds a signed timestamp's age, against replays.
	MaxSkew = 5 * time.Minute
)

type authKind uint8

const (
	authHMAC authKind = iota
	authBearer
)

// hook is one configured inbound hook.
type hook struct {
	name, room, user string
	fixedUser        bool
	mention          bool
	auth             authKind
	secret           []byte
	requireTS        bool
	toResponse       bool
	toOutbound       bool
	wait, quiet      time.Duration
	outbound         *notifier
}

// Routes mounts one POST route per inbound hook, so that a hook that is not
// configured is the server's 404, never a 401.
func (a *Adapter) Routes() []chat.Route {
	routes := make([]chat.Route, 0, len(a.hookOrder))
	for _, name := range a.hookOrder {
		h := a.hooks[name]
		routes = append(routes, chat.Route{
			Method:  http.MethodPost,
			Path:    h.name,
			Verify:  func(r *http.Request, body []byte) error { return h.verify(r, body, time.Now()) },
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, h) }),
			MaxBody: MaxBody,
		})
	}
	return routes
}

// verify checks the request's signature or bearer token. Its errors wrap
// chat.ErrUnauthorized and hold neither the secret nor what was sent.
func (h *hook) verify(r *http.Request, body []byte, now time.Time) error {
	fail := func(why string) error { return fmt.Errorf("hook %s: %w: %s", h.name, chat.ErrUnauthorized, why) }
	if h.auth == authBearer {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return fail("no bearer token")
		}
		// Hashing first makes the comparison constant-time in the length too.
		got, want := sha256.Sum256([]byte(strings.TrimSpace(token))), sha256.Sum256(h.secret)
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return fail("wrong bearer token")
		}
		return nil
	}
	sig := r.Header.Get(SignatureHeader)
	if sig == "" {
		return fail("no " + SignatureHeader + " header")
	}
	got, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
	if err != nil || !strings.HasPrefix(sig, "sha256=") {
		return fail("malformed " + SignatureHeader + " header, want sha256=<hex>")
	}
	mac := hmac.New(sha256.New, h.secret)
	if ts := r.Header.Get(TimestampHeader); ts != "" {
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return fail("malformed " + TimestampHeader + " header, want Unix seconds")
		}
		if d := now.Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
			return fail("stale " + TimestampHeader + ": more than 5 minutes off")
		}
		mac.Write([]byte(ts))
		mac.Write([]byte("."))
	} else if h.requireTS {
		return fail("no " + TimestampHeader + " header")
	}
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fail("signature does not match")
	}
	return nil
}

// withMention returns h with its mention setting replaced.
func (h *hook) withMention(on bool) *hook {
	if h.mention == on {
		return h
	}
	c := *h
	c.mention = on
	return &c
}

// Sign returns the SignatureHeader value for body signed with secret at ts
// (Unix seconds; 0 signs the body alone). For callers in Go and for tests.
func Sign(secret, body []byte, ts int64) string {
	mac := hmac.New(sha256.New, secret)
	if ts != 0 {
		mac.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	}
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// inboundBody is what a hook takes.
type inboundBody struct {
	User string `json:"user"`
	Room string `json:"room"`
	Text string `json:"text"`
	// Thread, optional, is the id of an earlier message: the text is a
	// reply in its thread.
	Thread string `json:"thread"`
	// Mention, optional, overrides the hook's mention setting.
	Mention *bool `json:"mention"`
}

// Response is the JSON answer to an inbound request.
type Response struct {
	// ID is the message id the text was delivered with.
	ID string `json:"id,omitempty"`
	// Text is every reply's plain text, one after the other.
	Text string `json:"text,omitempty"`
	// Replies are the replies collected while the request waited.
	Replies []Reply `json:"replies,omitempty"`
	// Duplicate is set when the delivery id was seen before: nothing ran.
	Duplicate bool `json:"duplicate,omitempty"`
	// Ignored says why a message was not delivered (the bot's own).
	Ignored string `json:"ignored,omitempty"`
	// Error says what was wrong with the request.
	Error string `json:"error,omitempty"`
}

// Reply is one reply in a Response.
type Reply struct {
	ID     string      `json:"id"`
	Room   string      `json:"room"`
	Thread string      `json:"thread,omitempty"`
	Text   string      `json:"text"`
	Output chat.Output `json:"output"`
}

const maxNameLen = 256

// serve handles a verified request to hook h.
func (a *Adapter) serve(w http.ResponseWriter, r *http.Request, h *hook) {
	var body inboundBody
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, Response{Error: "the body is not a JSON object {user, room, text}: " + err.Error()})
		return
	}
	if dec.More() {
		writeJSON(w, http.StatusBadRequest, Response{Error: "the body holds more than one JSON value"})
		return
	}
	if strings.TrimSpace(body.Text) == "" {
		writeJSON(w, http.StatusBadRequest, Response{Error: "text is missing"})
		return
	}
	if len(body.Room) > maxNameLen || len(body.User) > maxNameLen || len(body.Thread) > maxNameLen {
		writeJSON(w, http.StatusBadRequest, Response{Error: "room, user or thread is too long"})
		return
	}
	if body.Room == "" {
		body.Room = h.room
	}
	if body.User == "" || h.fixedUser {
		body.User = h.user
	}
	if body.Mention != nil {
		h = h.withMention(*body.Mention)
	}
	if body.User == a.Self().ID {
		writeJSON(w, http.StatusOK, Response{Ignored: "the bot's own message"})
		return
	}

	// Wait for Run, briefly: a request that comes while the bot starts is
	// not lost.
	select {
	case <-a.ready:
	case <-r.Context().Done():
		return
	case <-time.After(5 * time.Second):
	}
	a.mu.Lock()
	handler := a.handler
	a.mu.Unlock()
	if handler == nil {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, Response{Error: "the bot is not running"})
		return
	}

	id := a.newID()
	if d := deliveryID(r); d != "" {
		if prev, fresh := a.seen.add(h.name+"\x00"+d, id); !fresh {
			a.log.Info("duplicate delivery ignored", "hook", h.name, "delivery", d)
			writeJSON(w, http.StatusOK, Response{ID: prev, Duplicate: true})
			return
		}
	}
	m := chat.Message{
		Ref: chat.MessageRef{Adapter: a.name, Room: body.Room, MessageID: id, ThreadID: body.Thread},
		// A sender that retries a delivery to another replica is
		// answered once, when it names its deliveries.
		DeliveryKey: deliveryKey(h.name, r),
		User:        chat.User{ID: body.User, Name: body.User},
		Text:        body.Text,
		// A hook speaks to the bot: by default its text is a command
		// without the bot's name, as a native mention would be.
		Mentioned: h.mention,
		Time:      time.Now(),
	}
	a.recent.put(id, h.name)
	a.roomHooks.put(body.Room, h.name+"\x00"+id)
	// The handler only queues; the ctx it gets must outlive this request.
	ctx := context.WithoutCancel(r.Context())

	if !h.toResponse {
		handler.HandleMessage(ctx, m)
		writeJSON(w, http.StatusAccepted, Response{ID: id})
		return
	}
	wt := &waiter{id: id, thread: body.Thread, hook: h, got: make(chan struct{}, 1)}
	release, ok := a.takeRoom(r.Context(), body.Room, wt, h.wait)
	if !ok {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, Response{Error: "the room is busy with other requests; retry"})
		return
	}
	handler.HandleMessage(ctx, m)
	wt.wait(r.Context(), a.stopped, h.wait, h.quiet)
	release()
	writeJSON(w, http.StatusOK, wt.response())
}

func deliveryID(r *http.Request) string {
	d := r.Header.Get(DeliveryHeader)
	if d == "" {
		d = r.Header.Get(IdempotencyHeader)
	}
	if len(d) > maxNameLen {
		d = d[:maxNameLen]
	}
	return d
}

func writeJSON(w http.ResponseWriter, code int, v Response) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// roomSlot lets the requests of one room collect replies in turn.
type roomSlot struct {
	ch    chan struct{}
	users int
}

// takeRoom waits, up to wait, until no other request of room collects
// replies, then makes w the one that does. release gives the room up.
func (a *Adapter) takeRoom(ctx context.Context, room string, w *waiter, wait time.Duration) (release func(), ok bool) {
	a.mu.Lock()
	s := a.slots[room]
	if s == nil {
		s = &roomSlot{ch: make(chan struct{}, 1)}
		a.slots[room] = s
	}
	s.users++
	a.mu.Unlock()
	leave := func() {
		a.mu.Lock()
		if s.users--; s.users == 0 {
			delete(a.slots, room)
		}
		a.mu.Unlock()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
	case <-ctx.Done():
		leave()
		return nil, false
	case <-a.stopped:
		leave()
		return nil, false
	case <-t.C:
		leave()
		return nil, false
	}
	a.mu.Lock()
	a.waiting[room] = w
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		if a.waiting[room] == w {
			delete(a.waiting, room)
		}
		a.mu.Unlock()
		<-s.ch
		leave()
	}, true
}

// waiter is a request collecting the replies to its message.
type waiter struct {
	id, thread string
	hook       *hook
	got        chan struct{} // has a token after a reply came

	mu      sync.Mutex
	replies []Reply
}

func (w *waiter) add(ref chat.MessageRef, out chat.Output) {
	w.mu.Lock()
	w.replies = append(w.replies, Reply{ID: ref.MessageID, Room: ref.Room, Thread: ref.ThreadID, Text: plainOutput(out), Output: out})
	w.mu.Unlock()
	select {
	case w.got <- struct{}{}:
	default:
	}
}

// wait returns quiet after the last reply, after wait, or when the client
// or the adapter goes away.
func (w *waiter) wait(ctx context.Context, stopped <-chan struct{}, wait, quiet time.Duration) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	var q <-chan time.Time
	var qt *time.Timer
	defer func() {
		if qt != nil {
			qt.Stop()
		}
	}()
	for {
		select {
		case <-w.got:
			if qt == nil {
				qt = time.NewTimer(quiet)
				q = qt.C
			} else {
				qt.Reset(quiet)
			}
		case <-q:
			return
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		case <-stopped:
			return
		}
	}
}

func (w *waiter) response() Response {
	w.mu.Lock()
	defer w.mu.Unlock()
	texts := make([]string, len(w.replies))
	for i, r := range w.replies {
		texts[i] = r.Text
	}
	return Response{ID: w.id, Text: strings.Join(texts, "\n\n"), Replies: w.replies}
}

// deliveryKey is the chat.Message.DeliveryKey of a request to hook: the
// hook and the sender's delivery id, or "" when the sender names none.
func deliveryKey(hook string, r *http.Request) string {
	if d := deliveryID(r); d != "" {
		return hook + "/" + d
	}
	return ""
}
