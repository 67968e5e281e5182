package mattermost_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/adapters/mattermost"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// serverChecks are what the fake must do as the real server does; each
// runs against both (TestServerBehaviour).
var serverChecks = []struct {
	name string
	run  func(t *testing.T, b backend)
}{
	{"a bot gets 401 bot_login_forbidden on password login", func(t *testing.T, b backend) {
		_, name, _ := b.bot()
		_, resp, err := model.NewAPIv4Client(b.url()).Login(name, "any-password")
		checkAppError(t, resp, err, http.StatusUnauthorized, "api.user.login.bot_login_forbidden.app_error")
	}},
	{"a bad token gets 401 session_expired", func(t *testing.T, b backend) {
		c := model.NewAPIv4Client(b.url())
		c.SetToken("no-such-token-at-all-000000")
		_, resp, err := c.GetMe("")
		checkAppError(t, resp, err, http.StatusUnauthorized, "api.context.session_expired.app_error")
	}},
	{"the websocket sends hello before the OK reply to the authentication challenge", func(t *testing.T, b backend) {
		_, _, token := b.bot()
		ws, _, err := websocket.DefaultDialer.Dial(strings.Replace(b.url(), "http", "ws", 1)+"/api/v4/websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if err := ws.WriteJSON(map[string]any{"seq": 1, "action": "authentication_challenge", "data": map[string]string{"token": token}}); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(chattest.Guard))
		var first, second map[string]any
		if err := ws.ReadJSON(&first); err != nil {
			t.Fatal(err)
		}
		if err := ws.ReadJSON(&second); err != nil {
			t.Fatal(err)
		}
		if first["event"] != "hello" || second["status"] != "OK" || second["seq_reply"] != float64(1) {
			t.Errorf("frames %v then %v, want hello then {status: OK, seq_reply: 1}", first, second)
		}
	}},
	{"a thread's order lists the root, and a reply to a reply is a 400", func(t *testing.T, b backend) {
		ch := b.channel(t, "checks", "alice")
		alice := userClient(t, b, "alice")
		root, _, err := alice.CreatePost(&model.Post{ChannelId: ch, Message: "root"})
		if err != nil {
			t.Fatal(err)
		}
		reply, _, err := alice.CreatePost(&model.Post{ChannelId: ch, RootId: root.Id, Message: "reply"})
		if err != nil {
			t.Fatal(err)
		}
		list, _, err := alice.GetPostThread(reply.Id, "", false)
		if err != nil {
			t.Fatal(err)
		}
		// The order is the post asked for, then the whole thread, root
		// included, newest first: asked for by its root, a thread lists
		// the root twice (rest.get_post_thread.json).
		checkThread(t, list, reply.Id, root.Id, reply.Id)
		byRoot, _, err := alice.GetPostThread(root.Id, "", false)
		if err != nil {
			t.Fatal(err)
		}
		checkThread(t, byRoot, root.Id, root.Id, reply.Id)
		_, resp, err := alice.CreatePost(&model.Post{ChannelId: ch, RootId: reply.Id, Message: "reply to a reply"})
		checkAppError(t, resp, err, http.StatusBadRequest, "api.post.create_post.root_id.app_error")
	}},
	{"an unknown post is a 404 app.post.get.app_error", func(t *testing.T, b backend) {
		_, resp, err := userClient(t, b, "alice").GetPost(model.NewId(), "")
		checkAppError(t, resp, err, http.StatusNotFound, "app.post.get.app_error")
	}},
	{"a post of 16,384 characters is a 400 and one of 16,383 is taken", func(t *testing.T, b backend) {
		ch := b.channel(t, "checks", "alice")
		alice := userClient(t, b, "alice")
		_, resp, err := alice.CreatePost(&model.Post{ChannelId: ch, Message: strings.Repeat("é", mattermost.MaxPostRunes+1)})
		checkAppError(t, resp, err, http.StatusBadRequest, "model.post.is_valid.msg.app_error")
		if _, _, err := alice.CreatePost(&model.Post{ChannelId: ch, Message: strings.Repeat("é", mattermost.MaxPostRunes)}); err != nil {
			t.Errorf("a post of exactly %d characters: %v", mattermost.MaxPostRunes, err)
		}
	}},
	{"a post of a bot carries props.from_bot", func(t *testing.T, b backend) {
		ch := b.channel(t, "checks", "alice")
		_, _, token := b.bot()
		c := model.NewAPIv4Client(b.url())
		c.SetToken(token)
		p, _, err := c.CreatePost(&model.Post{ChannelId: ch, Message: "from the bot"})
		if err != nil {
			t.Fatal(err)
		}
		if p.GetProp("from_bot") != "true" {
			t.Errorf("props %v, want from_bot true", p.GetProps())
		}
	}},
	{"a post in a channel the bot does not have is a 403", func(t *testing.T, b backend) {
		_, _, token := b.bot()
		c := model.NewAPIv4Client(b.url())
		c.SetToken(token)
		_, resp, err := c.CreatePost(&model.Post{ChannelId: model.NewId(), Message: "nowhere"})
		checkAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	}},
	{"only a system admin may post ephemerally", func(t *testing.T, b backend) {
		ch := b.channel(t, "checks", "alice")
		uid, _ := b.user(t, "alice")
		_, resp, err := userClient(t, b, "alice").CreatePostEphemeral(&model.PostEphemeral{UserID: uid, Post: &model.Post{ChannelId: ch, Message: "eph"}})
		checkAppError(t, resp, err, http.StatusForbidden, "api.context.permissions.app_error")
	}},
}

func TestServerBehaviour(t *testing.T) {
	backends := map[string]func(t *testing.T) backend{
		"fake": func(t *testing.T) backend { return newFakeBackend(t) },
		"real": func(t *testing.T) backend { return needReal(t) },
	}
	for _, kind := range []string{"fake", "real"} {
		t.Run(kind, func(t *testing.T) {
			for _, c := range serverChecks {
				t.Run(c.name, func(t *testing.T) { c.run(t, backends[kind](t)) })
			}
		})
	}
}

func checkAppError(t *testing.T, resp *model.Response, err error, status int, id string) {
	t.Helper()
	var ae *model.AppError
	if resp == nil || resp.StatusCode != status || !errors.As(err, &ae) || ae.Id != id {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Errorf("got %d %v, want %d %s", code, err, status, id)
	}
}

// checkThread checks a thread's order: first the post asked for, then the
// thread's posts (in create_at order, which posts made within the same
// millisecond leave open).
func checkThread(t *testing.T, list *model.PostList, asked string, thread ...string) {
	t.Helper()
	rest := append([]string(nil), list.Order[min(1, len(list.Order)):]...)
	sort.Strings(rest)
	sort.Strings(thread)
	if len(list.Order) == 0 || list.Order[0] != asked || strings.Join(rest, " ") != strings.Join(thread, " ") {
		t.Errorf("thread order %v, want %s first, then %v", list.Order, asked, thread)
	}
	for _, id := range thread {
		if list.Posts[id] == nil {
			t.Errorf("thread lacks post %s", id)
		}
	}
}

func userClient(t *testing.T, b backend, name string) *model.Client4 {
	_, token := b.user(t, name)
	c := model.NewAPIv4Client(b.url())
	c.SetToken(token)
	return c
}

// adapterChecks are behaviours of the adapter beyond the conformance
// suite, run against both servers (TestAdapterBehaviour).
var adapterChecks = []struct {
	name string
	run  func(t *testing.T, b backend, p *peer)
}{
	{"a reply to a reply it never saw goes to the root thread", func(t *testing.T, b backend, p *peer) {
		ch := b.channel(t, "checks", "alice")
		alice := userClient(t, b, "alice")
		root, _, _ := alice.CreatePost(&model.Post{ChannelId: ch, Message: "root"})
		reply, _, _ := alice.CreatePost(&model.Post{ChannelId: ch, RootId: root.Id, Message: "reply"})
		a := p.adapter(t, mattermost.Options{}) // not running: it has seen nothing
		ref, err := a.Send(context.Background(), chat.MessageRef{Room: ch, ThreadID: reply.Id}, chat.Text("answer"))
		if err != nil {
			t.Fatalf("Send in the thread of a reply: %v", err)
		}
		if ref.ThreadID != root.Id {
			t.Errorf("the answer went to thread %q, want the root %q", ref.ThreadID, root.Id)
		}
	}},
	{"an over-long text is cut to the limit, not refused", func(t *testing.T, b backend, p *peer) {
		ch := b.channel(t, "checks", "alice")
		a := p.adapter(t, mattermost.Options{})
		ref, err := a.Send(context.Background(), chat.MessageRef{Room: ch}, chat.Output{Text: strings.Repeat("x", mattermost.MaxPostRunes+100)})
		if err != nil {
			t.Fatalf("Send of %d characters: %v", mattermost.MaxPostRunes+100, err)
		}
		got, _, err := userClient(t, b, "alice").GetPost(ref.MessageID, "")
		if err != nil {
			t.Fatal(err)
		}
		if n := len([]rune(got.Message)); n != mattermost.MaxPostRunes || !strings.HasSuffix(got.Message, "…") {
			t.Errorf("the server keeps %d characters ending %q, want %d ending with …", n, got.Message[len(got.Message)-5:], mattermost.MaxPostRunes)
		}
	}},
	{"an ephemeral reply of a bot that is no admin goes to the user directly", func(t *testing.T, b backend, p *peer) {
		b.setBotAdmin(t, false)
		ch := b.channel(t, "checks", "alice")
		uid, _ := b.user(t, "alice")
		a := p.adapter(t, mattermost.Options{})
		if err := a.SendEphemeral(context.Background(), chat.MessageRef{Room: ch}, uid, chat.Text("only for alice")); err != nil {
			t.Fatalf("SendEphemeral: %v", err)
		}
		got := p.Said(t)
		if got.Text != "only for alice" || got.Room != p.DirectRoom(t, "alice") {
			t.Errorf("service saw %+v, want the text in alice's direct channel %s", got, p.DirectRoom(t, "alice"))
		}
	}},
	{"the /chima slash command reaches the handler as a message to the bot", func(t *testing.T, b backend, p *peer) {
		ch := b.channel(t, "checks", "alice")
		srv := mountRoutes(t, p)
		token := b.command(t, "chima", p.ingress.URL+"/mattermost/command")
		a := p.adapter(t, mattermost.Options{SlashToken: token})
		got := make(chan chat.Message, 1)
		run(t, a, chat.Handlers{Message: func(_ context.Context, m chat.Message) { got <- m }})
		srv.serve(a)
		p.waitUp(t)
		if _, _, err := userClient(t, b, "alice").ExecuteCommand(ch, "/chima deploy project-x"); err != nil {
			t.Fatalf("/chima: %v", err)
		}
		select {
		case m := <-got:
			uid, _ := b.user(t, "alice")
			if m.Text != "deploy project-x" || !m.Mentioned || m.Ref.Room != ch || m.User.ID != uid {
				t.Errorf("handler got %+v, want text %q, Mentioned, room %s, user %s", m, "deploy project-x", ch, uid)
			}
		case <-time.After(chattest.Guard):
			t.Fatal("the slash command never reached the handler")
		}
	}},
	{"mentions of the bot are removed and flagged; a name that merely starts with the bot's is not one", func(t *testing.T, b backend, p *peer) {
		a := p.adapter(t, mattermost.Options{})
		got := make(chan chat.Message, 8)
		run(t, a, chat.Handlers{Message: func(_ context.Context, m chat.Message) { got <- m }})
		_, bot, _ := b.bot()
		ch := p.RoomID(t, "general")
		for _, c := range []struct {
			say, text string
			mentioned bool
		}{
			{"@" + bot + " help", "help", true},
			{"@" + bot + ": deploy x", "deploy x", true},
			{"hey @" + bot + ", status?", "hey status?", true},
			{"@" + bot + "s are many", "@" + bot + "s are many", false},
		} {
			p.post(t, "alice", ch, "", c.say)
			select {
			case m := <-got:
				if m.Text != c.text || m.Mentioned != c.mentioned {
					t.Errorf("%q delivered as %q (Mentioned %v), want %q (%v)", c.say, m.Text, m.Mentioned, c.text, c.mentioned)
				}
			case <-time.After(chattest.Guard):
				t.Fatalf("%q never delivered", c.say)
			}
		}
	}},
}

func TestAdapterBehaviour(t *testing.T) {
	for _, kind := range []string{"fake", "real"} {
		t.Run(kind, func(t *testing.T) {
			for _, c := range adapterChecks {
				t.Run(c.name, func(t *testing.T) {
					var b backend
					if kind == "real" {
						r := needReal(t)
						b = r
					} else {
						b = newFakeBackend(t)
					}
					c.run(t, b, newPeer(t, b))
				})
			}
		})
	}
}

// run runs a until the test ends.
func run(t *testing.T, a *mattermost.Adapter, h chat.Handler) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = a.Run(ctx, h)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// routes serves an adapter's routes behind the peer's ingress, as the core
// mounts them.
type routes struct {
	mu sync.Mutex
	h  http.Handler
}

func mountRoutes(t *testing.T, p *peer) *routes {
	r := &routes{}
	srv := newLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		h := r.h
		r.mu.Unlock()
		if h == nil {
			http.Error(w, "not mounted", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, req)
	}))
	p.ingress.mount(srv)
	return r
}

func (r *routes) serve(a *mattermost.Adapter) {
	mux := http.NewServeMux()
	for _, rt := range a.Routes() {
		rt := rt
		mux.HandleFunc(rt.Method+" /"+a.Name()+"/"+rt.Path, func(w http.ResponseWriter, req *http.Request) {
			body := make([]byte, 0, 1024)
			buf := make([]byte, 1024)
			for {
				n, err := req.Body.Read(buf)
				body = append(body, buf[:n]...)
				if err != nil {
					break
				}
			}
			if err := rt.Verify(req, body); err != nil {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			req.Body = http.NoBody
			if len(body) > 0 {
				req.Body = readCloser{strings.NewReader(string(body))}
			}
			rt.Handler.ServeHTTP(w, req)
		})
	}
	r.mu.Lock()
	r.h = mux
	r.mu.Unlock()
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// newLoopback serves h on 127.0.0.1 until the test ends and returns its URL.
func newLoopback(t *testing.T, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}
