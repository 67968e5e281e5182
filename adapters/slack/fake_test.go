package slack_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/slacktest"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// Credentials the fake accepts.
const (
	botToken      = "xoxb-test-bot-token"
	appToken      = "xapp-test-app-token"
	signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	botUserID     = "UBOT0CHIMA"
	botBotID      = "BBOT0CHIMA"
	botName       = "chima"
	teamID        = "T0TEAM0001"
)

// fakeSlack is a faithful local Slack: slacktest's server, with handlers of
// our own for the Web API methods the adapter calls (slacktest lacks
// chat.update, conversations.open, conversations.list and users.list, and
// its chat.postMessage and users.info do not keep state), a Socket Mode
// WebSocket peer that speaks Slack's envelope protocol, and a signed
// Events API / slash command / interactivity sender for the HTTP routes.
type fakeSlack struct {
	t   testing.TB
	srv *slacktest.Server
	api string // Web API base URL

	mu       sync.Mutex
	channels map[string]*fakeChannel // by id
	users    map[string]slackgo.User
	msgs     map[string]*fakeMsg // by channel+"/"+ts
	tsSeq    int64
	evSeq    int
	rateLeft int           // the next rateLeft posts are refused with a 429
	retryIn  time.Duration // their Retry-After
	calls    map[string]int

	posts, edits, ephemerals, responses chan fakeMsg
	// onPost, when set before the adapter runs, sees each chat.postMessage
	// as it arrives, instead of posts.
	onPost func(text string, at time.Time)

	// Socket Mode.
	upgrader websocket.Upgrader
	conn     *fakeConn
	queue    [][]byte          // envelopes waiting for a connection
	unacked  map[string][]byte // envelopes sent and not acknowledged
	sentIDs  []string          // their order
	acks     chan fakeAck
	opens    atomic.Int32 // apps.connections.open calls
	connSeq  int
	wsDone   sync.WaitGroup

	// Events API over HTTP: the adapter's routes, as the core mounts them.
	routes    *httptest.Server // when serveRoutes serves them
	routesURL string           // where the adapter's routes are mounted
	routeName string
	httpMu    sync.Mutex // delivers one request at a time, in order
	socket    bool
}

type fakeChannel struct {
	ID, Name string
	IM       bool
	User     string // the other person of an IM
	Member   bool   // the bot is in it
}

// fakeMsg is a message as the fake Slack keeps it.
type fakeMsg struct {
	Channel, TS, Thread, User, Text string
	Blocks                          []slackgo.Block
	Shown                           string // what a person sees
	ResponseType                    string // response_url posts
	Replace                         bool
	ResponseURL                     string
	Form                            url.Values // the chat.postMessage call as received
}

type fakeAck struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload,omitempty"`
}

type fakeConn struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	done chan struct{}
}

func (c *fakeConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// newFakeSlack starts a fake Slack; socket selects Socket Mode delivery,
// otherwise events are POSTed, signed, to the routes served by serveRoutes.
func newFakeSlack(t testing.TB, socket bool) *fakeSlack {
	f := &fakeSlack{
		t:          t,
		channels:   map[string]*fakeChannel{},
		users:      map[string]slackgo.User{},
		msgs:       map[string]*fakeMsg{},
		calls:      map[string]int{},
		posts:      make(chan fakeMsg, 1024),
		edits:      make(chan fakeMsg, 1024),
		ephemerals: make(chan fakeMsg, 1024),
		responses:  make(chan fakeMsg, 1024),
		unacked:    map[string][]byte{},
		acks:       make(chan fakeAck, 4096),
		socket:     socket,
		// slack-go dials with Origin https://api.slack.com, as Slack expects.
		upgrader: websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://api.slack.com" }},
		tsSeq:    time.Now().Unix() * 1e6,
	}
	f.users[botUserID] = slackgo.User{ID: botUserID, Name: botName, IsBot: true, Profile: slackgo.UserProfile{DisplayName: "Chima", BotID: botBotID}}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/auth.test", f.authTest)
		c.Handle("/apps.connections.open", f.connectionsOpen)
		c.Handle("/socket", f.socketHandler)
		c.Handle("/chat.postMessage", f.postMessage)
		c.Handle("/chat.update", f.update)
		c.Handle("/chat.postEphemeral", f.postEphemeral)
		c.Handle("/conversations.open", f.conversationsOpen)
		c.Handle("/conversations.info", f.conversationsInfo)
		c.Handle("/conversations.list", f.conversationsList)
		c.Handle("/users.info", f.usersInfo)
		c.Handle("/users.list", f.usersList)
		c.Handle("/response/", f.responseURL)
	})
	f.srv.BotID, f.srv.BotName = botUserID, botName
	f.srv.Start()
	f.api = f.srv.GetAPIURL()
	t.Cleanup(f.close)
	return f
}

func (f *fakeSlack) close() {
	f.mu.Lock()
	c := f.conn
	f.mu.Unlock()
	if c != nil {
		_ = c.ws.Close()
	}
	if f.routes != nil {
		f.routes.Close()
	}
	f.srv.Stop()
	f.wsDone.Wait()
}

// --- state -------------------------------------------------------------

// channel returns (creating) the channel called name; the bot is a member.
func (f *fakeSlack) channel(name string) *fakeChannel {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.channelLocked(name)
}

func (f *fakeSlack) channelLocked(name string) *fakeChannel {
	for _, c := range f.channels {
		if c.Name == name || c.ID == name {
			return c
		}
	}
	c := &fakeChannel{ID: slackID("C", len(f.channels), name), Name: name, Member: true}
	f.channels[c.ID] = c
	return c
}

// slackID makes a Slack-shaped id ("C01GENERAL") for a name.
func slackID(kind string, n int, name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return fmt.Sprintf("%s%02d%s", kind, n, (b.String() + "000000")[:max(6, b.Len())])
}

// user returns (creating) the id of the person called name.
func (f *fakeSlack) user(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, u := range f.users {
		if u.Name == name || id == name {
			return id
		}
	}
	id := slackID("U", len(f.users), name)
	f.users[id] = slackgo.User{ID: id, Name: name, RealName: name, Profile: slackgo.UserProfile{DisplayName: name}}
	return id
}

// im returns (opening) the direct conversation of the bot with user (an id).
func (f *fakeSlack) im(user string) *fakeChannel {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.imLocked(user)
}

func (f *fakeSlack) imLocked(user string) *fakeChannel {
	for _, c := range f.channels {
		if c.IM && c.User == user {
			return c
		}
	}
	c := &fakeChannel{ID: "D" + strings.TrimLeft(user, "UW"), IM: true, User: user, Member: true}
	f.channels[c.ID] = c
	return c
}

// addChannel adds a channel with a Slack id.
func (f *fakeSlack) addChannel(id, name string, member bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.channels[id] = &fakeChannel{ID: id, Name: name, Member: member}
}

// addUser adds a person.
func (f *fakeSlack) addUser(id, name, display string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id] = slackgo.User{ID: id, Name: name, RealName: display, Profile: slackgo.UserProfile{DisplayName: display}}
}

// rateLimit makes the next n posts fail with 429 Too Many Requests.
func (f *fakeSlack) rateLimit(n int, after time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rateLeft, f.retryIn = n, after
}

func (f *fakeSlack) callCount(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeSlack) nextTS() string {
	f.tsSeq++
	return fmt.Sprintf("%d.%06d", f.tsSeq/1e6, f.tsSeq%1e6)
}

// --- Web API -----------------------------------------------------------

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func slackError(w http.ResponseWriter, code string) {
	writeJSON(w, map[string]any{"ok": false, "error": code})
}

// form reads a Web API call's form and checks its bot token.
func (f *fakeSlack) form(w http.ResponseWriter, r *http.Request, method string) (url.Values, bool) {
	body, _ := io.ReadAll(r.Body)
	v, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return nil, false
	}
	for k, vs := range r.URL.Query() {
		v[k] = vs
	}
	f.mu.Lock()
	f.calls[method]++
	f.mu.Unlock()
	token := v.Get("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if token != botToken {
		slackError(w, "invalid_auth")
		return nil, false
	}
	return v, true
}

func (f *fakeSlack) authTest(w http.ResponseWriter, r *http.Request) {
	if _, ok := f.form(w, r, "auth.test"); !ok {
		return
	}
	writeJSON(w, map[string]any{"ok": true, "url": "https://chima-test.slack.com/", "team": "Chima Test",
		"user": botName, "team_id": teamID, "user_id": botUserID, "bot_id": botBotID})
}

func (f *fakeSlack) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.calls["apps.connections.open"]++
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+appToken {
		slackError(w, "invalid_auth")
		return
	}
	n := f.opens.Add(1)
	writeJSON(w, map[string]any{"ok": true, "url": fmt.Sprintf("ws://%s/socket?ticket=t%d", f.srv.ServerAddr, n)})
}

// shown is the text a person sees of a message: its blocks' text, or its
// text when it has none, with Slack's entities read.
func shown(text string, blocks []slackgo.Block) string {
	if len(blocks) == 0 {
		return unescapeEntities(text)
	}
	var lines []string
	for _, b := range blocks {
		switch b := b.(type) {
		case *slackgo.HeaderBlock:
			lines = append(lines, b.Text.Text)
		case *slackgo.SectionBlock:
			if b.Text != nil {
				lines = append(lines, b.Text.Text)
			}
			for _, fld := range b.Fields {
				lines = append(lines, fld.Text)
			}
		case *slackgo.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*slackgo.ButtonBlockElement); ok {
					lines = append(lines, btn.Text.Text)
				}
			}
		case *slackgo.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*slackgo.TextBlockObject); ok {
					lines = append(lines, t.Text)
				}
			}
		}
	}
	return unescapeEntities(strings.Join(lines, "\n"))
}

func unescapeEntities(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

func parseBlocks(s string) ([]slackgo.Block, error) {
	if s == "" {
		return nil, nil
	}
	var bs slackgo.Blocks
	if err := json.Unmarshal([]byte(s), &bs); err != nil {
		return nil, err
	}
	return bs.BlockSet, nil
}

// checkBlocks refuses what Slack refuses: too many blocks, sections over
// 3,000 characters, more than 10 fields, headers over 150.
func checkBlocks(text string, blocks []slackgo.Block) string {
	if len([]rune(text)) > 40000 {
		return "msg_too_long"
	}
	if len(blocks) > 50 {
		return "invalid_blocks"
	}
	for _, b := range blocks {
		switch b := b.(type) {
		case *slackgo.SectionBlock:
			if b.Text != nil && len([]rune(b.Text.Text)) > 3000 || len(b.Fields) > 10 {
				return "invalid_blocks"
			}
			for _, fld := range b.Fields {
				if len([]rune(fld.Text)) > 2000 {
					return "invalid_blocks"
				}
			}
		case *slackgo.HeaderBlock:
			if len([]rune(b.Text.Text)) > 150 {
				return "invalid_blocks"
			}
		}
	}
	return ""
}

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	v, ok := f.form(w, r, "chat.postMessage")
	if !ok {
		return
	}
	if f.onPost != nil {
		f.onPost(v.Get("text"), time.Now())
		writeJSON(w, map[string]any{"ok": true, "channel": v.Get("channel"), "ts": f.nextTSLocked()})
		return
	}
	f.mu.Lock()
	if f.rateLeft > 0 {
		f.rateLeft--
		after := f.retryIn
		f.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
		return
	}
	ch, ok := f.channels[v.Get("channel")]
	if !ok {
		for _, c := range f.channels {
			if "#"+c.Name == v.Get("channel") {
				ch, ok = c, true
			}
		}
	}
	f.mu.Unlock()
	if !ok {
		slackError(w, "channel_not_found")
		return
	}
	if !ch.Member {
		slackError(w, "not_in_channel")
		return
	}
	blocks, err := parseBlocks(v.Get("blocks"))
	if err != nil {
		slackError(w, "invalid_blocks_format")
		return
	}
	if v.Get("text") == "" && len(blocks) == 0 {
		slackError(w, "no_text")
		return
	}
	if e := checkBlocks(v.Get("text"), blocks); e != "" {
		slackError(w, e)
		return
	}
	f.mu.Lock()
	thread := v.Get("thread_ts")
	if thread != "" {
		if _, ok := f.msgs[ch.ID+"/"+thread]; !ok {
			thread = "" // Slack posts to the channel when the parent is gone
		}
	}
	v.Del("token")
	m := &fakeMsg{Channel: ch.ID, TS: f.nextTS(), Thread: thread, User: botUserID, Text: v.Get("text"), Blocks: blocks, Shown: shown(v.Get("text"), blocks), Form: v}
	f.msgs[ch.ID+"/"+m.TS] = m
	f.mu.Unlock()
	f.posts <- *m
	writeJSON(w, map[string]any{"ok": true, "channel": ch.ID, "ts": m.TS,
		"message": map[string]any{"type": "message", "text": m.Text, "user": botUserID, "bot_id": botBotID, "ts": m.TS, "thread_ts": m.Thread}})
}

func (f *fakeSlack) update(w http.ResponseWriter, r *http.Request) {
	v, ok := f.form(w, r, "chat.update")
	if !ok {
		return
	}
	blocks, err := parseBlocks(v.Get("blocks"))
	if err != nil {
		slackError(w, "invalid_blocks_format")
		return
	}
	if e := checkBlocks(v.Get("text"), blocks); e != "" {
		slackError(w, e)
		return
	}
	f.mu.Lock()
	if _, ok := f.channels[v.Get("channel")]; !ok {
		f.mu.Unlock()
		slackError(w, "channel_not_found")
		return
	}
	m, ok := f.msgs[v.Get("channel")+"/"+v.Get("ts")]
	if !ok {
		f.mu.Unlock()
		slackError(w, "message_not_found")
		return
	}
	if m.User != botUserID {
		f.mu.Unlock()
		slackError(w, "cant_update_message")
		return
	}
	m.Text = v.Get("text")
	if v.Has("blocks") { // chat.update keeps the blocks when none are given
		m.Blocks = blocks
	}
	m.Shown = shown(m.Text, m.Blocks)
	edited := *m
	f.mu.Unlock()
	f.edits <- edited
	writeJSON(w, map[string]any{"ok": true, "channel": edited.Channel, "ts": edited.TS, "text": edited.Text})
}

func (f *fakeSlack) postEphemeral(w http.ResponseWriter, r *http.Request) {
	v, ok := f.form(w, r, "chat.postEphemeral")
	if !ok {
		return
	}
	f.mu.Lock()
	ch, ok := f.channels[v.Get("channel")]
	_, userOK := f.users[v.Get("user")]
	ts := f.nextTS()
	f.mu.Unlock()
	switch {
	case !ok:
		slackError(w, "channel_not_found")
		return
	case !ch.Member:
		slackError(w, "not_in_channel")
		return
	case !userOK:
		slackError(w, "user_not_in_channel")
		return
	}
	blocks, _ := parseBlocks(v.Get("blocks"))
	f.ephemerals <- fakeMsg{Channel: ch.ID, TS: ts, Thread: v.Get("thread_ts"), User: v.Get("user"), Text: v.Get("text"), Blocks: blocks, Shown: shown(v.Get("text"), blocks)}
	writeJSON(w, map[string]any{"ok": true, "message_ts": ts})
}

func (f *fakeSlack) conversationsOpen(w http.ResponseWriter, r *http.Request) {
	v, ok := f.form(w, r, "conversations.open")
	if !ok {
		return
	}
	user := v.Get("users")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[user]; !ok || strings.Contains(user, ",") {
		slackError(w, "user_not_found")
		return
	}
	im := f.imLocked(user)
	writeJSON(w, map[string]any{"ok": true, "channel": map[string]any{"id": im.ID, "is_im": true, "user": user}})
}

func channelJSON(c *fakeChannel) map[string]any {
	return map[string]any{"id": c.ID, "name": c.Name, "name_normalized": c.Name, "is_channel": !c.IM, "is_im": c.IM, "user": c.User, "is_member": c.Member}
}

func (f *fakeSlack) conversationsInfo(w http.ResponseWriter, r *http.Request) {
	v, ok := f.form(w, r, "conversations.info")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.channels[v.Get("channel")]
	if !ok {
		slackError(w, "channel_not_found")
		return
	}
	writeJSON(w, map[string]any{"ok": true, "channel": channelJSON(c)})
}

// page returns one page of ids after cursor, and the next cursor.
func page(ids []string, cursor string, limit int) ([]string, string) {
	sort.Strings(ids)
	start := 0
	if cursor != "" {
		start = sort.SearchStrings(ids, cursor)
	}
	if limit <= 0 || limit > 2 { // small pages, so that paging is exercised
		limit = 2
	}
	end := min(start+limit, len(ids))
	next := ""
	if end < len(ids) {
		next = ids[end]
	}
	return ids[start:end], next
}

func (f *fakeSlack) conversationsList(w http.ResponseWriter, r *http.Request) {
	v, ok := f.form(w, r, "conversations.list")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id, c := range f.channels {
		if !c.IM {
			ids = append(ids, id)
		}
	}
	limit, _ := strconv.Atoi(v.Get("limit"))
	got, next := page(ids, v.Get("cursor"), limit)
	var chans []map[string]any
	for _, id := range got {
		chans = append(chans, channelJSON(f.channels[id]))
	}
	writeJSON(w, map[string]any{"ok": true, "channels": chans, "response_metadata": map[string]any{"next_cursor": next}})
}

func (f *fakeSlack) usersInfo(w http.ResponseWriter, r *http.Request) {
	v, ok := f.form(w, r, "users.info")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[v.Get("user")]
	if !ok {
		slackError(w, "user_not_found")
		return
	}
	writeJSON(w, map[string]any{"ok": true, "user": u})
}

func (f *fakeSlack) usersList(w http.ResponseWriter, r *http.Request) {
	v, ok := f.form(w, r, "users.list")
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.users {
		ids = append(ids, id)
	}
	limit, _ := strconv.Atoi(v.Get("limit"))
	got, next := page(ids, v.Get("cursor"), limit)
	var members []slackgo.User
	for _, id := range got {
		members = append(members, f.users[id])
	}
	writeJSON(w, map[string]any{"ok": true, "members": members, "response_metadata": map[string]any{"next_cursor": next}})
}

// responseURL is where slash commands' response_urls point.
func (f *fakeSlack) responseURL(w http.ResponseWriter, r *http.Request) {
	var msg slackgo.Msg
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, "bad JSON", http.StatusBadRequest)
		return
	}
	f.responses <- fakeMsg{ResponseURL: r.URL.Path, Text: msg.Text, Blocks: msg.Blocks.BlockSet, Shown: shown(msg.Text, msg.Blocks.BlockSet),
		ResponseType: msg.ResponseType, Replace: msg.ReplaceOriginal}
	writeJSON(w, map[string]any{"ok": true})
}

// --- Socket Mode -------------------------------------------------------

// socketHandler is the WebSocket URL apps.connections.open hands out: it
// says hello, pings, sends queued envelopes and reads acks.
func (f *fakeSlack) socketHandler(w http.ResponseWriter, r *http.Request) {
	ws, err := f.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &fakeConn{ws: ws, done: make(chan struct{})}
	f.mu.Lock()
	f.connSeq++
	hello, _ := json.Marshal(map[string]any{"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "applink-fake", "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": "A0CHIMA"}})
	if err := c.write(hello); err != nil {
		f.mu.Unlock()
		_ = ws.Close()
		return
	}
	// Envelopes not acknowledged on an earlier connection are sent again,
	// as Slack does, then those that waited for a connection.
	var backlog [][]byte
	kept := f.sentIDs[:0]
	for _, id := range f.sentIDs {
		if env, ok := f.unacked[id]; ok {
			backlog = append(backlog, retried(env))
			kept = append(kept, id)
		}
	}
	f.sentIDs = kept
	for _, env := range f.queue {
		var e struct {
			ID string `json:"envelope_id"`
		}
		_ = json.Unmarshal(env, &e)
		f.unacked[e.ID] = env
		f.sentIDs = append(f.sentIDs, e.ID)
		backlog = append(backlog, env)
	}
	f.queue = nil
	for _, env := range backlog {
		_ = c.write(env)
	}
	f.conn = c
	f.mu.Unlock()

	f.wsDone.Add(1)
	go func() { // Slack pings every few seconds; slack-go reconnects without
		defer f.wsDone.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if err := ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second)); err != nil {
				return
			}
			select {
			case <-t.C:
			case <-c.done:
				return
			}
		}
	}()
	defer func() {
		close(c.done)
		f.mu.Lock()
		if f.conn == c {
			f.conn = nil
		}
		f.mu.Unlock()
		_ = ws.Close()
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var ack fakeAck
		if err := json.Unmarshal(data, &ack); err != nil || ack.EnvelopeID == "" {
			f.t.Errorf("fake slack: the adapter wrote %q, which is no ack", data)
			continue
		}
		f.mu.Lock()
		delete(f.unacked, ack.EnvelopeID)
		f.mu.Unlock()
		f.acks <- ack
	}
}

// retried marks an envelope as a redelivery.
func retried(env []byte) []byte {
	var m map[string]any
	_ = json.Unmarshal(env, &m)
	n, _ := m["retry_attempt"].(float64)
	m["retry_attempt"], m["retry_reason"] = n+1, "timeout"
	b, _ := json.Marshal(m)
	return b
}

// sendEnvelope sends a Socket Mode envelope of a type, or queues it until
// the adapter connects.
func (f *fakeSlack) sendEnvelope(typ string, payload any) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evSeq++
	id := fmt.Sprintf("env-%d-%d", f.evSeq, time.Now().UnixNano())
	p, err := json.Marshal(payload)
	if err != nil {
		f.t.Fatalf("fake slack: %v", err)
	}
	env, _ := json.Marshal(map[string]any{"envelope_id": id, "type": typ, "payload": json.RawMessage(p),
		"accepts_response_payload": typ != "events_api", "retry_attempt": 0, "retry_reason": ""})
	if f.conn == nil || f.conn.write(env) != nil {
		f.queue = append(f.queue, env)
	} else {
		f.unacked[id] = env
		f.sentIDs = append(f.sentIDs, id)
	}
	return id
}

// sendRaw sends bytes as they are over the current connection.
func (f *fakeSlack) sendRaw(b []byte) { f.sendRawMarked(b, nil) }

// sendRawMarked is sendRaw calling mark, when set, just before the write
// (the fake's locks taken: only the write is left).
func (f *fakeSlack) sendRawMarked(b []byte, mark func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		f.t.Fatal("fake slack: no Socket Mode connection")
	}
	c := f.conn
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if mark != nil {
		mark()
	}
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

// dropConnection closes the Socket Mode connection without a word, as a
// network failure would.
func (f *fakeSlack) dropConnection() {
	f.mu.Lock()
	c := f.conn
	f.conn = nil
	f.mu.Unlock()
	if c != nil {
		_ = c.ws.Close()
	}
}

// waitConnected waits for the n-th Socket Mode connection.
func (f *fakeSlack) waitConnected(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(chattest.Guard)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		ok := f.conn != nil && f.connSeq >= n
		f.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("fake slack: no Socket Mode connection #%d within %s", n, chattest.Guard)
}

// --- events ------------------------------------------------------------

// callback wraps an inner event as Slack's event_callback.
func (f *fakeSlack) callback(inner any) (slackevents.EventsAPICallbackEvent, string) {
	raw, _ := json.Marshal(inner)
	msg := json.RawMessage(raw)
	f.mu.Lock()
	f.evSeq++
	id := fmt.Sprintf("Ev%08d", f.evSeq)
	f.mu.Unlock()
	return slackevents.EventsAPICallbackEvent{Type: slackevents.CallbackEvent, Token: "legacy-verification-token", TeamID: teamID,
		APIAppID: "A0CHIMA", InnerEvent: &msg, AuthedUsers: []string{botUserID}, EventID: id, EventTime: int(time.Now().Unix())}, id
}

// deliverEvent delivers an event_callback by the adapter's way in.
func (f *fakeSlack) deliverEvent(t testing.TB, cb slackevents.EventsAPICallbackEvent) {
	t.Helper()
	if f.socket {
		f.sendEnvelope("events_api", cb)
		return
	}
	body, _ := json.Marshal(cb)
	f.postSigned(t, "events", "application/json", body, nil, true)
}

// userMessage builds what Slack delivers when user writes text in channel
// ch. In a DM with the bot: message.im. In a room: message.channels, and
// when mention ("<@U…> %s" or "%s <@U…>") puts the bot's mention in it,
// the app_mention, which comes second. The bot itself posting comes with
// its bot_id.
func (f *fakeSlack) userMessages(ch *fakeChannel, user, thread, mention, text string) ([]any, string) {
	f.mu.Lock()
	ts := f.nextTS()
	f.mu.Unlock()
	var botID string
	if user == botUserID {
		botID = botBotID
	}
	if mention != "" {
		text = fmt.Sprintf(mention, text)
	}
	f.mu.Lock()
	f.msgs[ch.ID+"/"+ts] = &fakeMsg{Channel: ch.ID, TS: ts, Thread: thread, User: user, Text: text}
	f.mu.Unlock()
	channelType := "channel"
	if ch.IM {
		channelType = "im"
	}
	evs := []any{slackevents.MessageEvent{Type: "message", User: user, Text: text, TimeStamp: ts, ThreadTimeStamp: thread,
		Channel: ch.ID, ChannelType: channelType, EventTimeStamp: ts, BotID: botID}}
	if mention != "" && !ch.IM {
		evs = append(evs, slackevents.AppMentionEvent{Type: "app_mention", User: user, Text: text, TimeStamp: ts,
			ThreadTimeStamp: thread, Channel: ch.ID, EventTimeStamp: ts, BotID: botID})
	}
	return evs, ts
}

// userMessage is the one event that carries a message to the bot: the
// app_mention when there is one.
func (f *fakeSlack) userMessage(ch *fakeChannel, user, thread, mention, text string) (any, string) {
	evs, ts := f.userMessages(ch, user, thread, mention, text)
	return evs[len(evs)-1], ts
}

// The places people put the bot's mention.
const (
	mentionFirst = "<@" + botUserID + "> %s"
	mentionLast  = "%s <@" + botUserID + ">"
)

// say delivers a user's message in a room (a name or id) and returns its ts.
func (f *fakeSlack) say(t testing.TB, room, user, thread, text string) string {
	t.Helper()
	return f.sayIn(t, f.channel(room), user, thread, mentionFirst, text)
}

// sayIn delivers a user's message in ch and returns its ts.
func (f *fakeSlack) sayIn(t testing.TB, ch *fakeChannel, user, thread, mention, text string) string {
	t.Helper()
	evs, ts := f.userMessages(ch, user, thread, mention, escapeText(text))
	for _, ev := range evs {
		cb, _ := f.callback(ev)
		f.deliverEvent(t, cb)
	}
	return ts
}

// escapeText escapes text the way Slack's clients send it.
func escapeText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slashCommand delivers a slash command from user in channel.
func (f *fakeSlack) slashCommand(t testing.TB, channel, user, text string) slackgo.SlashCommand {
	t.Helper()
	f.mu.Lock()
	f.evSeq++
	n := f.evSeq
	f.mu.Unlock()
	cmd := slackgo.SlashCommand{Token: "legacy", TeamID: teamID, TeamDomain: "chima-test", ChannelID: channel, ChannelName: channel,
		UserID: user, UserName: f.userName(user), Command: "/chima", Text: text,
		ResponseURL: fmt.Sprintf("%sresponse/%d", f.api, n), TriggerID: fmt.Sprintf("trig.%d", n), APIAppID: "A0CHIMA"}
	if f.socket {
		f.sendEnvelope("slash_commands", cmd)
		return cmd
	}
	form := url.Values{}
	for k, v := range map[string]string{"token": cmd.Token, "team_id": cmd.TeamID, "team_domain": cmd.TeamDomain, "channel_id": cmd.ChannelID,
		"channel_name": cmd.ChannelName, "user_id": cmd.UserID, "user_name": cmd.UserName, "command": cmd.Command, "text": cmd.Text,
		"response_url": cmd.ResponseURL, "trigger_id": cmd.TriggerID, "api_app_id": cmd.APIAppID} {
		form.Set(k, v)
	}
	f.postSigned(t, "commands", "application/x-www-form-urlencoded", []byte(form.Encode()), nil, true)
	return cmd
}

func (f *fakeSlack) userName(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users[id].Name
}

// click delivers a block_actions callback for a click by user on button
// (action id, value) of the bot's message ts in channel.
func (f *fakeSlack) click(t testing.TB, channel, ts, thread, user, actionID, value string) {
	t.Helper()
	cb := slackgo.InteractionCallback{
		Type:        slackgo.InteractionTypeBlockActions,
		Token:       "legacy",
		TriggerID:   "trig.click",
		ResponseURL: f.api + "response/click",
		Team:        slackgo.Team{ID: teamID},
		User:        slackgo.User{ID: user, Name: f.userName(user)},
		Container:   slackgo.Container{Type: "message", MessageTs: ts, ChannelID: channel, ThreadTs: thread},
		Message:     slackgo.Message{Msg: slackgo.Msg{Timestamp: ts, ThreadTimestamp: thread, BotID: botBotID}},
		APIAppID:    "A0CHIMA",
		ActionCallback: slackgo.ActionCallbacks{BlockActions: []*slackgo.BlockAction{
			{ActionID: actionID, BlockID: "b1", Type: "button", Value: value, ActionTs: f.nextTSLocked()},
		}},
	}
	cb.Channel.ID = channel
	if f.socket {
		f.sendEnvelope("interactive", cb)
		return
	}
	payload, _ := json.Marshal(cb)
	f.postSigned(t, "interactive", "application/x-www-form-urlencoded", []byte(url.Values{"payload": {string(payload)}}.Encode()), nil, true)
}

func (f *fakeSlack) nextTSLocked() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nextTS()
}

// --- HTTP routes -------------------------------------------------------

// serveRoutes serves the adapter's routes on a local server, as the core
// mounts them: /<name>/<path>, the body read whole within its limit,
// Verify's error answered 401 before the handler sees anything.
func (f *fakeSlack) serveRoutes(t testing.TB, a chat.Adapter) {
	t.Helper()
	rp, ok := a.(chat.RouteProvider)
	if !ok {
		t.Fatal("the adapter serves no routes")
	}
	mux := http.NewServeMux()
	for _, rt := range rp.Routes() {
		rt := rt
		limit := rt.MaxBody
		if limit == 0 {
			limit = 1 << 20
		}
		mux.HandleFunc(rt.Method+" /"+a.Name()+"/"+rt.Path, func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			if err != nil {
				http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
				return
			}
			if err := rt.Verify(r, body); err != nil {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			rt.Handler.ServeHTTP(w, r)
		})
	}
	f.routes = httptest.NewServer(mux)
	f.mounted(f.routes.URL, a.Name())
}

// mounted tells the fake where the adapter's routes are.
func (f *fakeSlack) mounted(base, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routesURL, f.routeName = base, name
}

// sign returns Slack's v0 signature headers for body at time ts.
func sign(secret string, ts time.Time, body []byte) http.Header {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", stamp)
	mac.Write(body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// postSigned POSTs a signed body to the adapter's route path. With retry,
// it redelivers on a failure as Slack does (X-Slack-Retry-Num), and fails
// the test when no delivery succeeds.
func (f *fakeSlack) postSigned(t testing.TB, path, contentType string, body []byte, extra http.Header, retry bool) *http.Response {
	t.Helper()
	f.httpMu.Lock()
	defer f.httpMu.Unlock()
	tries := 1
	if retry {
		tries = 4
	}
	var last string
	for i := range tries {
		h := sign(signingSecret, time.Now(), body)
		h.Set("Content-Type", contentType)
		if i > 0 {
			h.Set("X-Slack-Retry-Num", strconv.Itoa(i))
			h.Set("X-Slack-Retry-Reason", "http_error")
		}
		for k, vs := range extra {
			h[k] = vs
		}
		res, err := f.do(path, h, body)
		if err == nil && (res.StatusCode == http.StatusOK || !retry) {
			return res
		}
		if err == nil {
			last = res.Status
		} else {
			last = err.Error()
		}
		time.Sleep(time.Duration(10<<i) * time.Millisecond)
	}
	t.Errorf("fake slack: POST /%s failed %d times, last: %s", path, tries, last)
	return nil
}

// do POSTs to the adapter's route and reads the whole answer.
func (f *fakeSlack) do(path string, h http.Header, body []byte) (*http.Response, error) {
	return f.doContext(context.Background(), path, h, body)
}

// doContext is do with the request's context.
func (f *fakeSlack) doContext(ctx context.Context, path string, h http.Header, body []byte) (*http.Response, error) {
	f.mu.Lock()
	target := f.routesURL + "/" + f.routeName + "/" + path
	f.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	res, err := routeClient.Do(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	return res, nil
}

// message returns a stored message.
func (f *fakeSlack) message(channel, ts string) (fakeMsg, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.msgs[channel+"/"+ts]
	if !ok {
		return fakeMsg{}, false
	}
	return *m, true
}

// buttons lists the buttons of blocks in order.
func buttons(blocks []slackgo.Block) []*slackgo.ButtonBlockElement {
	var out []*slackgo.ButtonBlockElement
	for _, b := range blocks {
		if a, ok := b.(*slackgo.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if btn, ok := e.(*slackgo.ButtonBlockElement); ok {
					out = append(out, btn)
				}
			}
		}
	}
	return out
}

// golden renders a chat.postMessage call for a golden file: its form with
// the blocks and attachments as JSON, keys sorted, timestamps replaced.
func golden(t testing.TB, form url.Values) []byte {
	t.Helper()
	doc := map[string]any{}
	for k := range form {
		v := form.Get(k)
		switch k {
		case "blocks", "attachments":
			var j any
			if err := json.Unmarshal([]byte(v), &j); err != nil {
				t.Fatalf("fake slack: %s is not JSON: %v", k, err)
			}
			doc[k] = j
		case "thread_ts", "ts":
			doc[k] = "<ts>"
		default:
			doc[k] = v
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// routeClient keeps a connection per concurrent delivery, as Slack's
// senders do, instead of redialling past http.DefaultClient's two.
var routeClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// --- waiting -----------------------------------------------------------

func waitFor[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(chattest.Guard):
		t.Fatalf("fake slack: no %s within %s", what, chattest.Guard)
		var zero T
		return zero
	}
}
