package mattermost_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/adapters/mattermost"
	"github.com/chimaops/chima/adapters/mattermost/mmtest"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/sdk/sdktest"
)

// backend is a Mattermost server the tests drive: the fake or a real one.
// Users and rooms are named as the conformance suite names them.
type backend interface {
	kind() string
	url() string
	teamName() string
	bot() (id, username, token string)
	// user returns a user (created when needed) and a token of theirs.
	user(t *testing.T, name string) (id, token string)
	// channel returns an open channel of the team (created when needed)
	// that the bot and the given users are members of.
	channel(t *testing.T, name string, members ...string) string
	setBotAdmin(t *testing.T, admin bool)
	// command registers the /trigger slash command posting to url and
	// returns its token.
	command(t *testing.T, trigger, url string) string
}

// fakeBackend is a fresh mmtest.Server.
type fakeBackend struct {
	s                      *mmtest.Server
	botID, botName, botTok string
	mu                     sync.Mutex
	users                  map[string][2]string
}

func newFakeBackend(t *testing.T) *fakeBackend {
	s := mmtest.New()
	t.Cleanup(s.Close)
	bot, tok := s.AddUser("deploybot", true)
	return &fakeBackend{s: s, botID: bot.Id, botName: bot.Username, botTok: tok, users: map[string][2]string{}}
}

func (f *fakeBackend) kind() string                     { return "fake" }
func (f *fakeBackend) url() string                      { return f.s.URL }
func (f *fakeBackend) teamName() string                 { return f.s.Team.Name }
func (f *fakeBackend) bot() (string, string, string)    { return f.botID, f.botName, f.botTok }
func (f *fakeBackend) setBotAdmin(_ *testing.T, a bool) { f.s.SetAdmin(f.botID, a) }

func (f *fakeBackend) user(_ *testing.T, name string) (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, ok := f.users[name]; ok {
		return u[0], u[1]
	}
	u, tok := f.s.AddUser(name, false)
	f.users[name] = [2]string{u.Id, tok}
	return u.Id, tok
}

func (f *fakeBackend) channel(t *testing.T, name string, members ...string) string {
	c := f.s.AddChannel(name)
	f.s.Join(c.Id, f.botID)
	for _, m := range members {
		id, _ := f.user(t, m)
		f.s.Join(c.Id, id)
	}
	return c.Id
}

func (f *fakeBackend) command(_ *testing.T, trigger, url string) string {
	return f.s.AddCommand(trigger, url).Token
}

// realBackend is the real Mattermost 6.7.2 that
// /work/shared/tools/real-mattermost.sh starts; CHIMA_MATTERMOST_ENV names
// the env file it writes.
type realBackend struct {
	env   map[string]string
	admin *model.Client4
	mu    sync.Mutex
	users map[string][2]string
	chans map[string]string
}

var (
	realOnce sync.Once
	real     *realBackend
	realErr  string
)

// needReal returns the real server, skipping the test (failing it under
// CI=true) when none is configured.
func needReal(t *testing.T) *realBackend {
	t.Helper()
	realOnce.Do(func() { real, realErr = loadReal() })
	if real == nil {
		sdktest.Missing(t, "no real Mattermost: %s (start one with WORK=/tmp/mm-real bash /work/shared/tools/real-mattermost.sh up and set CHIMA_MATTERMOST_ENV=/tmp/mm-real/env)", realErr)
	}
	return real
}

func loadReal() (*realBackend, string) {
	env, err := mmtest.RealEnv("MM_URL", "MM_TEAM_NAME", "MM_TEAM_ID", "MM_BOT_USER_ID", "MM_BOT_USERNAME", "MM_BOT_TOKEN", "MM_USER_ID", "MM_USER_TOKEN", "MM_ADMIN_USERNAME", "MM_ADMIN_PASSWORD")
	if err != nil {
		return nil, err.Error()
	}
	admin := model.NewAPIv4Client(env["MM_URL"])
	if _, _, err := admin.Login(env["MM_ADMIN_USERNAME"], env["MM_ADMIN_PASSWORD"]); err != nil {
		return nil, "admin login: " + err.Error()
	}
	// Integration actions and slash commands post to 127.0.0.1, which the
	// server refuses unless allowed.
	allowed := "127.0.0.1 localhost"
	if _, _, err := admin.PatchConfig(&model.Config{ServiceSettings: model.ServiceSettings{AllowedUntrustedInternalConnections: &allowed}}); err != nil {
		return nil, "allowing integrations on loopback: " + err.Error()
	}
	r := &realBackend{env: env, admin: admin, users: map[string][2]string{"alice": {env["MM_USER_ID"], env["MM_USER_TOKEN"]}}, chans: map[string]string{}}
	return r, ""
}

func (r *realBackend) kind() string     { return "real" }
func (r *realBackend) url() string      { return r.env["MM_URL"] }
func (r *realBackend) teamName() string { return r.env["MM_TEAM_NAME"] }
func (r *realBackend) bot() (string, string, string) {
	return r.env["MM_BOT_USER_ID"], r.env["MM_BOT_USERNAME"], r.env["MM_BOT_TOKEN"]
}

func (r *realBackend) setBotAdmin(t *testing.T, admin bool) {
	roles := model.SystemUserRoleId
	if admin {
		roles += " " + model.SystemAdminRoleId
	}
	if _, err := r.admin.UpdateUserRoles(r.env["MM_BOT_USER_ID"], roles); err != nil {
		t.Fatalf("setting the bot's roles to %q: %v", roles, err)
	}
}

func (r *realBackend) user(t *testing.T, name string) (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.users[name]; ok {
		return u[0], u[1]
	}
	u, _, err := r.admin.GetUserByUsername(name, "")
	if err != nil {
		u, _, err = r.admin.CreateUser(&model.User{Username: name, Email: name + "@example.com", Password: "Passw0rd-" + name + "!"})
		if err != nil {
			t.Fatalf("creating user %s: %v", name, err)
		}
	}
	if _, _, err := r.admin.AddTeamMember(r.env["MM_TEAM_ID"], u.Id); err != nil {
		t.Fatalf("adding %s to the team: %v", name, err)
	}
	tok, _, err := r.admin.CreateUserAccessToken(u.Id, "chima tests")
	if err != nil {
		t.Fatalf("a token for %s: %v", name, err)
	}
	r.users[name] = [2]string{u.Id, tok.Token}
	return u.Id, tok.Token
}

func (r *realBackend) channel(t *testing.T, name string, members ...string) string {
	ids := []string{r.env["MM_BOT_USER_ID"]}
	for _, m := range members {
		id, _ := r.user(t, m)
		ids = append(ids, id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.chans[name]
	if !ok {
		ch, _, err := r.admin.GetChannelByName(name, r.env["MM_TEAM_ID"], "")
		if err != nil {
			ch, _, err = r.admin.CreateChannel(&model.Channel{TeamId: r.env["MM_TEAM_ID"], Name: name, DisplayName: name, Type: model.ChannelTypeOpen})
			if err != nil {
				t.Fatalf("creating channel %s: %v", name, err)
			}
		}
		id = ch.Id
		r.chans[name] = id
	}
	for _, u := range ids {
		if _, _, err := r.admin.AddChannelMember(id, u); err != nil {
			t.Fatalf("adding %s to channel %s: %v", u, name, err)
		}
	}
	return id
}

func (r *realBackend) command(t *testing.T, trigger, url string) string {
	cmds, _, err := r.admin.ListCommands(r.env["MM_TEAM_ID"], true)
	if err != nil {
		t.Fatalf("listing commands: %v", err)
	}
	for _, c := range cmds {
		if c.Trigger == trigger {
			if _, err := r.admin.DeleteCommand(c.Id); err != nil {
				t.Fatalf("deleting the old /%s: %v", trigger, err)
			}
		}
	}
	c, _, err := r.admin.CreateCommand(&model.Command{TeamId: r.env["MM_TEAM_ID"], Trigger: trigger, Method: model.CommandMethodPost, URL: url, DisplayName: "Chima", AutoComplete: true})
	if err != nil {
		t.Fatalf("creating /%s: %v", trigger, err)
	}
	return c.Token
}

// tcpProxy forwards connections to a server and can drop them all, as a
// server restart would. The adapter talks to the server through it.
type tcpProxy struct {
	URL   string
	l     net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{URL: "http://" + l.Addr().String(), l: l, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", u.Host)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.Drop()
		p.wg.Wait()
	})
	return p
}

// Drop closes every connection through the proxy.
func (p *tcpProxy) Drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// ingress stands for the public URL of Chima's HTTP server (actions_url):
// a reverse proxy to wherever the routes are mounted.
type ingress struct {
	URL    string
	mu     sync.Mutex
	target *url.URL
}

func newIngress(t *testing.T) *ingress {
	in := &ingress{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		target := in.target
		in.mu.Unlock()
		if target == nil {
			http.Error(w, "nothing mounted", http.StatusBadGateway)
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	in.URL = "http://" + l.Addr().String()
	return in
}

func (in *ingress) mount(base string) {
	u, _ := url.Parse(base)
	in.mu.Lock()
	in.target = u
	in.mu.Unlock()
}

// peer plays Mattermost's users for the conformance suite, against either
// backend: users post through Client4 with their own tokens, and see the
// bot's posts, edits and ephemerals through their own websockets, as
// Mattermost's clients do.
type peer struct {
	b       backend
	proxy   *tcpProxy
	ingress *ingress

	botID, botName string

	mu     sync.Mutex
	up     bool          // the adapter's websocket is authenticated
	upC    chan struct{} // closed when up turns true
	rooms  map[string]string
	seen   map[string]*model.Post // bot posts by id, as clients see them
	edits  map[string]bool        // edits delivered, by post id, edit_at and message
	ws     map[string]*model.WebSocketClient
	posts  chan chattest.PeerMessage
	edited chan chattest.PeerMessage
	ephems chan ephemeral
}

type ephemeral struct {
	msg chattest.PeerMessage
	to  string
}

// users the peer keeps connected: the suite's two.
var suiteUsers = []string{"alice", "bob"}

func newPeer(t *testing.T, b backend) *peer {
	id, name, _ := b.bot()
	p := &peer{
		b: b, proxy: newTCPProxy(t, b.url()), ingress: newIngress(t),
		botID: id, botName: name,
		upC: make(chan struct{}), rooms: map[string]string{}, seen: map[string]*model.Post{}, edits: map[string]bool{},
		ws:    map[string]*model.WebSocketClient{},
		posts: make(chan chattest.PeerMessage, 1024), edited: make(chan chattest.PeerMessage, 1024), ephems: make(chan ephemeral, 64),
	}
	for _, u := range suiteUsers {
		p.listen(t, u)
	}
	return p
}

// adapter builds the adapter under test, talking to the backend through
// the peer's proxy.
func (p *peer) adapter(t *testing.T, o mattermost.Options) *mattermost.Adapter {
	_, _, token := p.b.bot()
	o.URL, o.Token, o.Team = p.proxy.URL, token, p.b.teamName()
	if o.ActionsURL == "" {
		o.ActionsURL = p.ingress.URL
	}
	if o.ActionKey == nil {
		o.ActionKey = []byte("a fixed key, so that golden renders are stable")
	}
	o.MinBackoff = 20 * time.Millisecond
	o.MaxBackoff = 500 * time.Millisecond
	o.OnConnect = p.connected
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a, err := mattermost.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (p *peer) connected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.up {
		p.up = true
		close(p.upC)
	}
}

// waitUp waits until the adapter's websocket is authenticated: the server
// delivers posts only to connected clients.
func (p *peer) waitUp(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	c := p.upC
	p.mu.Unlock()
	select {
	case <-c:
	case <-time.After(chattest.Guard):
		t.Fatalf("the adapter did not connect its websocket within %s", chattest.Guard)
	}
}

// listen opens user's websocket and turns what it sees into the peer's
// channels.
func (p *peer) listen(t *testing.T, name string) {
	_, token := p.b.user(t, name)
	ws, err := model.NewWebSocketClient4(strings.Replace(p.b.url(), "http", "ws", 1), token)
	if err != nil {
		t.Fatalf("websocket of %s: %v", name, err)
	}
	ws.Listen()
	authed := make(chan struct{})
	done := make(chan struct{})
	uid, _ := p.b.user(t, name)
	go func() {
		defer close(done)
		once := sync.Once{}
		for ws.EventChannel != nil {
			select {
			case ev, ok := <-ws.EventChannel:
				if !ok {
					return
				}
				p.event(uid, ev)
			case r, ok := <-ws.ResponseChannel:
				if !ok {
					return
				}
				if r.SeqReply == 1 && r.Status == model.StatusOk {
					once.Do(func() { close(authed) })
				}
			}
		}
	}()
	select {
	case <-authed:
	case <-time.After(chattest.Guard):
		t.Fatalf("websocket of %s: not authenticated within %s", name, chattest.Guard)
	}
	t.Cleanup(func() {
		ws.Close()
		<-done
	})
}

func (p *peer) event(uid string, ev *model.WebSocketEvent) {
	raw, _ := ev.GetData()["post"].(string)
	if raw == "" {
		return
	}
	var post model.Post
	if json.Unmarshal([]byte(raw), &post) != nil || post.UserId != p.botID {
		return
	}
	m := chattest.PeerMessage{Room: post.ChannelId, Thread: post.RootId, ID: post.Id, Text: shownText(&post)}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.EventType() {
	case model.WebsocketEventPosted:
		if _, dup := p.seen[post.Id]; !dup {
			p.seen[post.Id] = &post
			p.posts <- m
		}
	case model.WebsocketEventPostEdited:
		// Every user's websocket sees the edit: deliver it once.
		key := post.Id + "\x00" + strconv.FormatInt(post.EditAt, 10) + "\x00" + post.Message
		if !p.edits[key] {
			p.edits[key] = true
			p.seen[post.Id] = &post
			p.edited <- m
		}
	case model.WebsocketEventEphemeralMessage:
		p.ephems <- ephemeral{msg: m, to: uid}
	}
}

var unescape = regexp.MustCompile(`\\([\\*_` + "`" + `~\[\]|#>+\-])`)

// shownText is a post as a person reads it: the message (Markdown escapes
// undone) and the attachment's title, text, fields and buttons.
func shownText(p *model.Post) string {
	parts := []string{unescape.ReplaceAllString(p.Message, "$1")}
	for _, a := range p.Attachments() {
		parts = append(parts, a.Title, a.Text)
		for _, f := range a.Fields {
			v, _ := f.Value.(string)
			parts = append(parts, f.Title+": "+v)
		}
		for _, ac := range a.Actions {
			parts = append(parts, "["+ac.Name+"]")
		}
	}
	var out []string
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, "\n")
}

func (p *peer) RoomID(t *testing.T, name string) string {
	p.mu.Lock()
	id, ok := p.rooms[name]
	p.mu.Unlock()
	if ok {
		return id
	}
	id = p.b.channel(t, name, suiteUsers...)
	p.mu.Lock()
	p.rooms[name] = id
	p.mu.Unlock()
	return id
}

func (p *peer) UserID(t *testing.T, name string) string {
	id, _ := p.b.user(t, name)
	return id
}

// client returns a Client4 acting as the user the suite calls name, or as
// the bot for the bot's id.
func (p *peer) client(t *testing.T, name string) *model.Client4 {
	var token string
	if name == p.botID {
		_, _, token = p.b.bot()
	} else {
		_, token = p.b.user(t, name)
	}
	c := model.NewAPIv4Client(p.b.url())
	c.SetToken(token)
	return c
}

func (p *peer) post(t *testing.T, user, channel, thread, text string) {
	t.Helper()
	p.waitUp(t)
	if _, _, err := p.client(t, user).CreatePost(&model.Post{ChannelId: channel, RootId: thread, Message: text}); err != nil {
		t.Fatalf("%s posting %q: %v", user, text, err)
	}
}

func (p *peer) Say(t *testing.T, room, user, thread, text string) {
	t.Helper()
	p.post(t, user, p.RoomID(t, room), thread, text)
}

func (p *peer) SayMention(t *testing.T, room, user, text string) {
	t.Helper()
	p.post(t, user, p.RoomID(t, room), "", "@"+p.botName+" "+text)
}

func (p *peer) SayDirect(t *testing.T, user, text string) {
	t.Helper()
	p.post(t, user, p.DirectRoom(t, user), "", text)
}

func (p *peer) DirectRoom(t *testing.T, user string) string {
	t.Helper()
	uid, _ := p.b.user(t, user)
	ch, _, err := p.client(t, user).CreateDirectChannel(uid, p.botID)
	if err != nil {
		t.Fatalf("direct channel of %s and the bot: %v", user, err)
	}
	return ch.Id
}

func wait[T any](t *testing.T, c chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(chattest.Guard):
		t.Fatalf("no %s of the bot within %s", what, chattest.Guard)
		var zero T
		return zero
	}
}

func (p *peer) Said(t *testing.T) chattest.PeerMessage {
	t.Helper()
	return wait(t, p.posts, "post")
}

func (p *peer) Edited(t *testing.T) chattest.PeerMessage {
	t.Helper()
	return wait(t, p.edited, "edit")
}

func (p *peer) SaidEphemeral(t *testing.T) (chattest.PeerMessage, string) {
	t.Helper()
	e := wait(t, p.ephems, "ephemeral post")
	return e.msg, e.to
}

// Click presses a button as Mattermost's web client does: POST
// /posts/{id}/actions/{action id}, which makes the server post the
// integration request to the bot.
func (p *peer) Click(t *testing.T, msg chattest.PeerMessage, user string, button int) {
	t.Helper()
	p.mu.Lock()
	post := p.seen[msg.ID]
	p.mu.Unlock()
	if post == nil {
		t.Fatalf("no post %s seen to click on", msg.ID)
	}
	var actions []*model.PostAction
	for _, a := range post.Attachments() {
		actions = append(actions, a.Actions...)
	}
	if button >= len(actions) {
		t.Fatalf("post %s has %d buttons, no button %d", msg.ID, len(actions), button)
	}
	if _, err := p.client(t, user).DoPostAction(msg.ID, actions[button].Id); err != nil {
		t.Fatalf("%s clicking %q: %v", user, actions[button].Name, err)
	}
}

// Drop drops the adapter's connections to the server.
func (p *peer) Drop(t *testing.T) {
	p.mu.Lock()
	if p.up {
		p.up = false
		p.upC = make(chan struct{})
	}
	p.mu.Unlock()
	p.proxy.Drop()
}

func (p *peer) Mounted(_ *testing.T, base string) { p.ingress.mount(base) }

// fakePeer adds what only the fake can do: rate limits and raw requests.
type fakePeer struct {
	*peer
	f *fakeBackend
}

func (p *fakePeer) LimitNext(_ *testing.T, after time.Duration) { p.f.s.LimitNext(after) }

// Raw is the POST /posts body that made msg, with its ids and the
// loopback URLs replaced by fixed ones, keys sorted and indented.
func (p *fakePeer) Raw(t *testing.T, msg chattest.PeerMessage) []byte {
	t.Helper()
	body := p.f.s.Raw(msg.ID)
	if body == nil {
		t.Fatalf("the fake has no request for post %s", msg.ID)
	}
	s := strings.ReplaceAll(string(body), msg.Room, "<channel id>")
	s = strings.ReplaceAll(s, p.ingress.URL, "https://chima.example.com")
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("post %s: %v", msg.ID, err)
	}
	var out strings.Builder
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return []byte(out.String())
}

var (
	_ chattest.DirectPeer    = (*peer)(nil)
	_ chattest.MentionPeer   = (*peer)(nil)
	_ chattest.ClickPeer     = (*peer)(nil)
	_ chattest.DropPeer      = (*peer)(nil)
	_ chattest.EphemeralPeer = (*peer)(nil)
	_ chattest.RoutePeer     = (*peer)(nil)
	_ chattest.RateLimitPeer = (*fakePeer)(nil)
	_ chattest.GoldenPeer    = (*fakePeer)(nil)
	_ chat.Adapter           = (*mattermost.Adapter)(nil)
)
