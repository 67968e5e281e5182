package mattermost

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/core/chat"
)

// Type is the adapter type that config entries name (type: mattermost), and
// the default adapter name.
const Type = "mattermost"

// MaxPostRunes is the longest post message a Mattermost server takes, in
// characters: longer ones are refused with 400 "Invalid message".
const MaxPostRunes = model.PostMessageMaxRunesV2 // 16,383

// ErrUnknownMessage is returned (wrapped) by Update for a post the server
// does not have or the bot may not edit.
var ErrUnknownMessage = errors.New("unknown message")

// Options configures an Adapter. URL, Token and Team are required.
type Options struct {
	// Name is the adapter's name in refs and config (default "mattermost").
	Name string
	// URL is the server's base URL (https://mattermost.example.com).
	URL string
	// Token is the bot account's personal access token. Bots cannot log in
	// with a password; the token is the only way in.
	Token string
	// Team is the name of the team whose channel names rooms use.
	Team string
	// SlashToken is the /chima slash command's token; empty serves no slash
	// command.
	SlashToken string
	// ActionsURL is the public base URL of Chima's HTTP server, to which
	// Mattermost posts button clicks (integration actions) at
	// <ActionsURL>/<Name>/actions. Empty renders buttons as text.
	ActionsURL string
	// ActionKey signs the buttons' integration contexts, so that a forged
	// click is refused. Empty generates a random key when the adapter is
	// built: buttons posted before a restart then no longer work, which a
	// fixed key (config action_secret_env) avoids.
	ActionKey []byte
	// Logger logs connections and dropped events (default slog.Default()).
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnects
	// (defaults 250ms and 30s); the wait doubles after each failure.
	MinBackoff, MaxBackoff time.Duration
	// PingTimeout is how long the websocket may go without a ping from the
	// server before it is taken for dead and dialled again (default 65s:
	// the server pings every 60s).
	PingTimeout time.Duration
	// PingInterval, when set, is how often the adapter pings the server
	// itself; the server's pong keeps the websocket alive as the server's
	// own ping does, so PingTimeout may then be shorter than the server's
	// minute. 0 (the default) sends no pings: the server's keep it alive.
	PingInterval time.Duration
	// CatchUp bounds how far back the adapter looks, on reconnecting, for
	// posts made while its websocket was down (default 5m): a command
	// typed longer ago than that is not run so late. Negative looks for
	// none.
	CatchUp time.Duration
	// OnConnect, when set, is called each time the websocket is
	// authenticated (after both the hello event and the OK reply to the
	// authentication challenge), from Run's goroutine.
	OnConnect func()
	// HTTPClient makes the REST calls (default: a client with a 30s
	// timeout).
	HTTPClient *http.Client
}

// Adapter is the Mattermost adapter. It implements chat.Adapter, Editor,
// Threader, ButtonRenderer, Directory, DirectMessenger, EphemeralSender,
// Limiter and RouteProvider. Its methods are safe for concurrent use.
type Adapter struct {
	opts  Options
	name  string
	api   *model.Client4 // shared template; see client
	base  http.RoundTripper
	wsURL string
	log   *slog.Logger

	mu   sync.RWMutex
	self chat.User
	// mention matches "@botname" once Self is known.
	mention *mentionMatcher

	// roots maps post ids to their thread's root, for posts the adapter
	// has seen, so a reply to a reply goes to the root without a 400 first.
	roots *boundedMap
	// directs remembers which channels are direct conversations.
	directs *boundedMap
	// rooms remembers channels known to exist, by id.
	rooms *boundedMap

	// handler and runCtx are set by Run for the HTTP routes.
	handler atomic.Pointer[handlerBox]

	// handled holds the ids of the posts handed to the handler, so that
	// one fetched on reconnecting (catchUp) that the websocket delivered
	// too, or the other way round, is handled once.
	handled *boundedMap
	// heard is when (unix ms) the adapter last knew it had every post: the
	// time of the last websocket frame it read, or of the newest post it
	// was given. 0 before the first connection. Touched by Run's goroutine
	// only.
	heard int64
	// started is when (unix ms) the first websocket connected: catchUp
	// never reaches before it, what was said then is not the bot's.
	started int64
	// teamID is the id of Options.Team, once looked up.
	teamID string
}

type handlerBox struct {
	h   chat.Handler
	ctx context.Context
}

var (
	_ chat.Adapter         = (*Adapter)(nil)
	_ chat.Editor          = (*Adapter)(nil)
	_ chat.Threader        = (*Adapter)(nil)
	_ chat.ButtonRenderer  = (*Adapter)(nil)
	_ chat.Directory       = (*Adapter)(nil)
	_ chat.DirectMessenger = (*Adapter)(nil)
	_ chat.EphemeralSender = (*Adapter)(nil)
	_ chat.Limiter         = (*Adapter)(nil)
	_ chat.RouteProvider   = (*Adapter)(nil)
)

// New builds an adapter without touching the network; Run connects.
func New(o Options) (*Adapter, error) {
	if o.Name == "" {
		o.Name = Type
	}
	u, err := url.Parse(strings.TrimRight(o.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mattermost: url %q is not an http(s) URL", o.URL)
	}
	if o.Token == "" {
		return nil, errors.New("mattermost: no access token")
	}
	if o.Team == "" {
		return nil, errors.New("mattermost: no team")
	}
	if o.ActionsURL != "" {
		a, err := url.Parse(o.ActionsURL)
		if err != nil || (a.Scheme != "http" && a.Scheme != "https") || a.Host == "" {
			return nil, fmt.Errorf("mattermost: actions_url %q is not an http(s) URL", o.ActionsURL)
		}
		o.ActionsURL = strings.TrimRight(o.ActionsURL, "/")
	}
	if len(o.ActionKey) == 0 {
		o.ActionKey = make([]byte, 32)
		if _, err := rand.Read(o.ActionKey); err != nil {
			return nil, fmt.Errorf("mattermost: generating the button key: %w", err)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 65 * time.Second
	}
	if o.CatchUp == 0 {
		o.CatchUp = 5 * time.Minute
	}
	if o.HTTPClient == nil {
		// More idle connections than the default 2 per host, so a burst
		// of sends reuses connections instead of opening new ones.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	base := o.HTTPClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	api := model.NewAPIv4Client(u.String())
	api.SetToken(o.Token)
	ws := *u
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	return &Adapter{
		opts:    o,
		name:    o.Name,
		api:     api,
		base:    base,
		wsURL:   ws.String(),
		log:     o.Logger.With("adapter", o.Name),
		self:    chat.User{},
		roots:   newBoundedMap(4096),
		directs: newBoundedMap(4096),
		rooms:   newBoundedMap(4096),
		handled: newBoundedMap(4096),
	}, nil
}

// Name is the adapter's configured name.
func (a *Adapter) Name() string { return a.name }

// Self is the bot account (id and username), known once Run has connected.
func (a *Adapter) Self() chat.User {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.self
}

// SupportsThreads reports that Mattermost has threads.
func (a *Adapter) SupportsThreads() bool { return true }

// RepliesInThreads reports true: a bot answers a channel post in a thread
// under it.
func (a *Adapter) RepliesInThreads() bool { return true }

// SupportsButtons reports whether buttons are rendered: only when clicks
// can reach the bot (actions_url is set).
func (a *Adapter) SupportsButtons() bool { return a.opts.ActionsURL != "" }

// MaxTextLen is Mattermost's limit on a post's message.
func (a *Adapter) MaxTextLen() int { return MaxPostRunes }

// client returns a Client4 whose requests carry ctx, since Client4's
// methods take none.
func (a *Adapter) client(ctx context.Context) *model.Client4 {
	c := *a.api
	hc := *a.opts.HTTPClient
	hc.Transport = ctxTransport{ctx: ctx, base: a.base}
	c.HTTPClient = &hc
	return &c
}

type ctxTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}

// Run fetches the bot's identity, then receives posts over the websocket
// until ctx ends, reconnecting with backoff. It returns an error only when
// the server refuses the token.
func (a *Adapter) Run(ctx context.Context, h chat.Handler) error {
	a.handler.Store(&handlerBox{h: h, ctx: ctx})
	backoff := a.opts.MinBackoff
	for {
		err := a.identify(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return err
		}
		a.log.Warn("mattermost: cannot reach the server", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, a.opts.MaxBackoff)
	}
	backoff = a.opts.MinBackoff
	for {
		connected, err := a.listen(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return err
		}
		if connected {
			backoff = a.opts.MinBackoff
		}
		a.log.Warn("mattermost: websocket closed, reconnecting", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return nil
		}
		if !connected {
			backoff = min(2*backoff, a.opts.MaxBackoff)
		}
	}
}

// permanentError is a failure that reconnecting will not fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// identify learns the bot's id and username from GET /users/me.
func (a *Adapter) identify(ctx context.Context) error {
	me, resp, err := a.client(ctx).GetMe("")
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
			return &permanentError{fmt.Errorf("mattermost: the server refuses the access token (is it a bot's personal access token?): %w", err)}
		}
		return fmt.Errorf("mattermost: GET /users/me: %w", err)
	}
	a.mu.Lock()
	a.self = chat.User{ID: me.Id, Name: me.Username}
	a.mention = newMentionMatcher(me.Username)
	a.mu.Unlock()
	return nil
}

// listen runs one websocket connection until it ends. connected says
// whether it got as far as being authenticated.
//
// It speaks the protocol itself, on gorilla/websocket, rather than through
// model.WebSocketClient: that client decodes every frame into maps, hands
// it over a channel from a goroutine of its own, and every post in the
// bot's channels (its own replies too) passed through it. Here each frame
// is read and decoded once, into the few fields the adapter reads, on the
// goroutine that handles it.
func (a *Adapter) listen(ctx context.Context, h chat.Handler) (connected bool, err error) {
	dialer := &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 15 * time.Second,
		NetDialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 15 * time.Second}).DialContext(ctx, network, addr)
		},
	}
	ws, _, err := dialer.DialContext(ctx, a.wsURL+model.APIURLSuffix+"/websocket", nil)
	if err != nil {
		return false, fmt.Errorf("mattermost: websocket: %w", err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			ws.Close()
		case <-done:
		}
	}()
	defer ws.Close()
	// The server pings every minute: a connection silent for longer is
	// dead, though TCP may not say so for a long time.
	alive := func() error { return ws.SetReadDeadline(time.Now().Add(a.opts.PingTimeout)) }
	ws.SetPingHandler(func(data string) error {
		_ = alive()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return err
			}
		}
		return nil
	})
	// A pong to the adapter's own ping says as much as the server's ping.
	ws.SetPongHandler(func(string) error { return alive() })
	if a.opts.PingInterval > 0 {
		go func() {
			t := time.NewTicker(a.opts.PingInterval)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					// WriteControl may be called beside the other writes.
					if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
						return
					}
				}
			}
		}()
	}
	_ = alive()
	_ = ws.SetWriteDeadline(time.Now().Add(15 * time.Second))
	if err := ws.WriteJSON(model.WebSocketRequest{Seq: 1, Action: model.WebsocketAuthenticationChallenge,
		Data: map[string]any{"token": a.opts.Token}}); err != nil {
		return false, fmt.Errorf("mattermost: websocket: authenticating: %w", err)
	}

	// The server answers the authentication challenge (seq 1) after it has
	// sent hello; accept either order.
	var hello, authed bool
	for {
		_, raw, err := ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return connected, ctx.Err()
			}
			return connected, fmt.Errorf("mattermost: websocket: %w", err)
		}
		if connected {
			a.heard = time.Now().UnixMilli()
		}
		var f wsFrame
		if err := json.Unmarshal(raw, &f); err != nil {
			// A field of another event's data that is no string leaves
			// the rest decoded; that event is ignored anyway.
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) || f.Event == model.WebsocketEventPosted {
				a.log.Warn("mattermost: undecodable websocket frame", "err", err)
				continue
			}
		}
		switch {
		case f.Event == model.WebsocketEventHello:
			hello = true
			if authed && !connected {
				connected = true
				a.connected(ctx, h)
				_ = alive()
			}
		case f.Event != "":
			a.handleEvent(ctx, h, &f)
		case f.Status != "" && f.SeqReply == 1:
			if f.Status != model.StatusOk {
				msg := "authentication refused"
				if f.Error != nil {
					msg = f.Error.Error()
				}
				return false, fmt.Errorf("mattermost: websocket: %s", msg)
			}
			authed = true
			if hello && !connected {
				connected = true
				a.connected(ctx, h)
				_ = alive()
			}
		}
	}
}

// wsFrame is what the adapter reads of a websocket frame: an event (Event
// set), or the reply to a request (Status set), with model's JSON names.
type wsFrame struct {
	Event string `json:"event"`
	Data  struct {
		// Post is the post of posted events, as a JSON string.
		Post        string `json:"post"`
		ChannelType string `json:"channel_type"`
		SenderName  string `json:"sender_name"`
	} `json:"data"`
	Status   string          `json:"status"`
	SeqReply int64           `json:"seq_reply"`
	Error    *model.AppError `json:"error"`
}

// connected is called once a websocket is authenticated. On a reconnect it
// first hands h the posts made while the websocket was down (catchUp): the
// server does not send them again, and a command typed then would be lost.
func (a *Adapter) connected(ctx context.Context, h chat.Handler) {
	a.log.Debug("mattermost: websocket connected")
	if a.heard == 0 {
		// The first connection: what was said before the bot started is
		// not its to answer.
		a.heard = time.Now().UnixMilli()
		a.started = a.heard
	} else if a.opts.CatchUp >= 0 {
		a.catchUp(ctx, h)
	}
	if a.opts.OnConnect != nil {
		a.opts.OnConnect()
	}
}

// handleEvent turns a posted event into a Message. Everything else is
// ignored: edits, reactions, the bot's own posts, other bots' and
// integrations' posts, and system posts.
func (a *Adapter) handleEvent(ctx context.Context, h chat.Handler, ev *wsFrame) {
	if ev.Event != model.WebsocketEventPosted {
		return
	}
	raw := ev.Data.Post
	var p postedPost
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		a.log.Warn("mattermost: undecodable post in a posted event", "err", err)
		return
	}
	a.handlePost(ctx, h, &p, ev.Data.ChannelType == string(model.ChannelTypeDirect), ev.Data.SenderName)
}

// handlePost hands a post, from a posted event or fetched by catchUp, to h,
// once.
func (a *Adapter) handlePost(ctx context.Context, h chat.Handler, p *postedPost, direct bool, sender string) {
	if _, dup := a.handled.get(p.ID); dup {
		return
	}
	a.handled.put(p.ID, "")
	a.heard = max(a.heard, p.CreateAt)
	if p.RootID != "" {
		a.roots.put(p.ID, p.RootID)
	}
	if direct {
		a.directs.put(p.ChannelID, "D")
	}
	a.mu.RLock()
	self, mention := a.self, a.mention
	a.mu.RUnlock()
	if p.UserID == self.ID || p.Type != "" || p.DeleteAt != 0 ||
		p.Props.FromBot == "true" || p.Props.FromWebhook == "true" || p.Props.FromPlugin == "true" {
		return
	}
	text, mentioned := p.Message, false
	if mention != nil {
		text, mentioned = mention.strip(text)
	}
	h.HandleMessage(ctx, chat.Message{
		Ref:       chat.MessageRef{Adapter: a.name, Room: p.ChannelID, MessageID: p.ID, ThreadID: p.RootID},
		User:      chat.User{ID: p.UserID, Name: strings.TrimPrefix(sender, "@")},
		Text:      text,
		Direct:    direct,
		Mentioned: mentioned,
		Time:      time.UnixMilli(p.CreateAt),
		// Every connection gets every post: replicas answer once.
		DeliveryKey: p.ID,
	})
}

// postedPost is the part of a posted event's post that handleEvent reads,
// with model.Post's JSON names. Every post in the bot's channels is
// decoded, its own replies with their attachments too; this takes about
// half the time of a whole model.Post, with a quarter of the allocations
// (its props are maps).
type postedPost struct {
	ID        string `json:"id"`
	CreateAt  int64  `json:"create_at"`
	DeleteAt  int64  `json:"delete_at"`
	UserID    string `json:"user_id"`
	ChannelID string `json:"channel_id"`
	RootID    string `json:"root_id"`
	Message   string `json:"message"`
	Type      string `json:"type"`
	Props     struct {
		// any, as model.Post.GetProp gives them: only the string "true"
		// counts.
		FromBot     any `json:"from_bot"`
		FromWebhook any `json:"from_webhook"`
		FromPlugin  any `json:"from_plugin"`
	} `json:"props"`
}

// Send posts out to to.Room, in to.ThreadID's thread when set. A thread id
// that is itself a reply is replaced by its root, which is where Mattermost
// wants replies.
func (a *Adapter) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	room, err := a.roomID(ctx, to.Room)
	if err != nil {
		return chat.MessageRef{}, err
	}
	post := a.render(out)
	post.ChannelId = room
	if to.ThreadID != "" {
		post.RootId = a.rootOf(to.ThreadID)
	}
	// The server answers a post with a pending_post_id it saw in the last
	// 30 s with that post instead of making another: a retry of a post
	// whose answer was lost (the connection cut as the server answered)
	// does not show twice. The outbox's key is the same across attempts.
	if k := chat.SendKey(ctx); k != "" {
		post.PendingPostId = k
	}
	c := a.client(ctx)
	created, resp, err := c.CreatePost(post)
	if err != nil && post.RootId != "" && isRootIDError(resp, err) {
		// The thread id is a reply we had not seen: find its root.
		if p, _, gerr := c.GetPost(post.RootId, ""); gerr == nil && p.RootId != "" {
			a.roots.put(p.Id, p.RootId)
			post.RootId = p.RootId
			created, resp, err = c.CreatePost(post)
		}
	}
	if err != nil {
		return chat.MessageRef{}, apiError("create post in "+room, resp, err, chat.ErrUnknownRoom)
	}
	if created.RootId != "" {
		a.roots.put(created.Id, created.RootId)
	}
	a.rooms.put(created.ChannelId, "")
	return chat.MessageRef{Adapter: a.name, Room: created.ChannelId, MessageID: created.Id, ThreadID: created.RootId}, nil
}

// Update replaces the message and attachments of a post the bot made.
func (a *Adapter) Update(ctx context.Context, ref chat.MessageRef, out chat.Output) error {
	if ref.MessageID == "" {
		return fmt.Errorf("mattermost: update: %w: no message id", ErrUnknownMessage)
	}
	post := a.render(out)
	props := post.GetProps()
	_, resp, err := a.client(ctx).PatchPost(ref.MessageID, &model.PostPatch{Message: &post.Message, Props: &props})
	if err != nil {
		return apiError("patch post "+ref.MessageID, resp, err, ErrUnknownMessage)
	}
	return nil
}

// roomID turns a room reference into a channel id: ids pass, names are
// looked up in the team.
func (a *Adapter) roomID(ctx context.Context, room string) (string, error) {
	if room == "" {
		return "", fmt.Errorf("mattermost: %w: empty room", chat.ErrUnknownRoom)
	}
	if model.IsValidId(room) {
		return room, nil
	}
	r, err := a.LookupRoom(ctx, room)
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// rootOf returns the root of the thread that id belongs to, as far as the
// adapter knows.
func (a *Adapter) rootOf(id string) string {
	if root, ok := a.roots.get(id); ok {
		return root
	}
	return id
}

func isRootIDError(resp *model.Response, err error) bool {
	var ae *model.AppError
	return resp != nil && resp.StatusCode == http.StatusBadRequest && errors.As(err, &ae) && ae.Id == "api.post.create_post.root_id.app_error"
}

// apiError wraps a failed REST call: 429 becomes a RetryAfterError, 403
// and 404 wrap notFound (when set).
func apiError(what string, resp *model.Response, err error, notFound error) error {
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			return &chat.RetryAfterError{After: retryAfter(resp.Header), Err: fmt.Errorf("mattermost: %s: %w", what, err)}
		case http.StatusNotFound, http.StatusForbidden:
			if notFound != nil {
				return fmt.Errorf("mattermost: %s: %w (%d: %v)", what, notFound, resp.StatusCode, err)
			}
		case http.StatusUnauthorized:
			return fmt.Errorf("mattermost: %s: %w: %w", what, chat.ErrUnauthorized, err)
		}
		// Any other 4xx but a timeout is the server refusing this request
		// for good: sending it again changes nothing.
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout {
			return fmt.Errorf("mattermost: %s: %w (%d): %w", what, chat.ErrRefused, resp.StatusCode, err)
		}
	}
	return fmt.Errorf("mattermost: %s: %w", what, err)
}

// retryAfter reads Mattermost's rate-limit headers: Retry-After, else
// X-RateLimit-Reset, both in whole seconds; 1s when neither is usable.
func retryAfter(h http.Header) time.Duration {
	for _, k := range []string{"Retry-After", "X-Ratelimit-Reset"} {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Get(k))); err == nil && n >= 0 {
			return max(time.Duration(n)*time.Second, 100*time.Millisecond)
		}
	}
	return time.Second
}

// boundedMap is a small string map that forgets its oldest entries.
type boundedMap struct {
	mu    sync.Mutex
	max   int
	m     map[string]string
	order []string
}

func newBoundedMap(n int) *boundedMap { return &boundedMap{max: n, m: make(map[string]string, n)} }

func (b *boundedMap) put(k, v string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[k]; !ok {
		if len(b.order) >= b.max {
			delete(b.m, b.order[0])
			b.order = b.order[1:]
		}
		b.order = append(b.order, k)
	}
	b.m[k] = v
}

func (b *boundedMap) get(k string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}
