// Package mmtest is a faithful fake of a Mattermost 6.7.2 server for tests:
// the REST endpoints and the WebSocket API a bot uses, built on the
// server's own model types and checked against frames captured from the
// real server (/work/shared/testdata/mattermost). What it does, it does as
// the real server does:
//
//   - a bot cannot log in with a password (401 bot_login_forbidden);
//   - the websocket sends hello before the OK reply to the authentication
//     challenge, and a posted event carries the post as a JSON string;
//   - a reply's root_id must be a root post (400 "Invalid RootId
//     parameter." otherwise), and a thread's order lists the root;
//   - posts of a bot carry props.from_bot "true"; a post in a channel the
//     user is not in is a 403, an unknown post a 404, with the real bodies;
//   - only a system admin may create ephemeral posts;
//   - a click on a button posts an integration request to the action's URL.
//
// It also does what a test needs and a real server does not offer: refuse
// the next post with a 429 (LimitNext) and drop every websocket (Drop).
package mmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/mattermost/mattermost-server/v6/model"
)

// Server is the fake. Create it with New; Close it when done.
type Server struct {
	// URL is the base URL (http://127.0.0.1:port).
	URL string
	// Team is the one team of the server.
	Team *model.Team
	// OnCreatePost, when set before use, is called as a POST /posts
	// request arrives, before it is processed, with the decoded post.
	OnCreatePost func(p *model.Post)
	// OnPosted, when set before use, is called with each new post just
	// before its posted event is written to the websockets.
	OnPosted func(p *model.Post)
	// PingEvery, when set before use, is how often the server pings each
	// websocket (default 30s; the real server pings every 60s).
	PingEvery time.Duration
	// OnEventWrite, when set before use, is called as an event's frame is
	// about to be written to a websocket of userID (encoded: only the
	// write is left), from the goroutine that writes it.
	OnEventWrite func(userID string, ev *model.WebSocketEvent)

	srv *httptest.Server

	mu        sync.Mutex
	users     map[string]*model.User // by id
	passwords map[string]string      // user id → password
	tokens    map[string]string      // token → user id
	admins    map[string]bool
	channels  map[string]*model.Channel
	members   map[string]map[string]bool // channel id → user ids
	posts     map[string]*model.Post     // as stored, with integrations
	raw       map[string][]byte          // post id → the create request's body
	commands  map[string]*model.Command  // trigger → command
	conns     map[*conn]bool
	limits    []time.Duration
	closed    bool
	// lastCreate is the create_at of the newest post.
	lastCreate int64
	// pending maps pending_post_ids to the posts they made.
	pending map[string]string
	wg      sync.WaitGroup
}

// New starts a fake server on 127.0.0.1 with one team, "acme".
func New() *Server {
	s := &Server{
		users:     map[string]*model.User{},
		passwords: map[string]string{},
		tokens:    map[string]string{},
		admins:    map[string]bool{},
		channels:  map[string]*model.Channel{},
		members:   map[string]map[string]bool{},
		posts:     map[string]*model.Post{},
		raw:       map[string][]byte{},
		commands:  map[string]*model.Command{},
		conns:     map[*conn]bool{},
		pending:   map[string]string{},
	}
	s.Team = &model.Team{Id: model.NewId(), Name: "acme", DisplayName: "Acme", Type: model.TeamOpen, CreateAt: model.GetMillis()}
	mux := http.NewServeMux()
	s.routes(mux)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Listener.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("mmtest: listen: %v", err))
	}
	s.srv.Listener = l
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close drops every websocket and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Drop()
	s.srv.CloseClientConnections()
	s.srv.Close()
	s.wg.Wait()
}

// AddUser creates a user (a bot when bot is set), a member of the team,
// and returns it with a personal access token.
func (s *Server) AddUser(username string, bot bool) (*model.User, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := &model.User{Id: model.NewId(), Username: username, Email: username + "@localhost", Roles: model.SystemUserRoleId, IsBot: bot, CreateAt: model.GetMillis(), Locale: "en"}
	s.users[u.Id] = u
	token := model.NewId()
	s.tokens[token] = u.Id
	return u, token
}

// SetPassword sets a user's password for POST /users/login.
func (s *Server) SetPassword(userID, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[userID] = password
}

// SetAdmin makes a user a system admin, or not.
func (s *Server) SetAdmin(userID string, admin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admins[userID] = admin
	if admin {
		s.users[userID].Roles = model.SystemUserRoleId + " " + model.SystemAdminRoleId
	} else {
		s.users[userID].Roles = model.SystemUserRoleId
	}
}

// AddChannel creates an open channel of the team, or returns the one of
// that name.
func (s *Server) AddChannel(name string) *model.Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.channels {
		if c.Name == name && c.TeamId == s.Team.Id {
			return c
		}
	}
	c := &model.Channel{Id: model.NewId(), TeamId: s.Team.Id, Type: model.ChannelTypeOpen, Name: name, DisplayName: strings.ToUpper(name[:1]) + name[1:], CreateAt: model.GetMillis()}
	s.channels[c.Id] = c
	s.members[c.Id] = map[string]bool{}
	return c
}

// Join adds a user to a channel.
func (s *Server) Join(channelID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[channelID][userID] = true
}

// AddCommand registers a custom slash command of the team that posts to
// url, and returns it with its token.
func (s *Server) AddCommand(trigger, url string) *model.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &model.Command{Id: model.NewId(), Token: model.NewId(), TeamId: s.Team.Id, Trigger: trigger, Method: model.CommandMethodPost, URL: url}
	s.commands[trigger] = c
	return c
}

// LimitNext makes the server refuse the next POST /posts with a 429, as
// its rate limiter does, asking to retry after after (in whole seconds,
// rounded up, as the real server's headers have it).
func (s *Server) LimitNext(after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = append(s.limits, after)
}

// Drop closes every websocket, as a server restart would.
func (s *Server) Drop() {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.ws.Close()
	}
}

// Connected reports how many authenticated websockets userID has.
func (s *Server) Connected(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.userID == userID {
			n++
		}
	}
	return n
}

// Raw returns the body of the POST /posts request that created post id.
func (s *Server) Raw(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw[id]
}

// Post returns a stored post (with its integrations), or nil.
func (s *Server) Post(id string) *model.Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.posts[id]; p != nil {
		return p.Clone()
	}
	return nil
}

func (s *Server) routes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v4/system/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
	})
	m.HandleFunc("POST /api/v4/users/login", s.login)
	m.HandleFunc("GET /api/v4/users/me", s.auth(func(w http.ResponseWriter, r *http.Request, me *model.User) {
		writeJSON(w, http.StatusOK, sanitize(me))
	}))
	m.HandleFunc("GET /api/v4/users/{id}", s.auth(s.getUser))
	m.HandleFunc("GET /api/v4/users/username/{name}", s.auth(s.getUserByName))
	m.HandleFunc("GET /api/v4/channels/{id}", s.auth(s.getChannel))
	m.HandleFunc("GET /api/v4/teams/name/{team}/channels/name/{name}", s.auth(s.getChannelByName))
	m.HandleFunc("POST /api/v4/channels/direct", s.auth(s.createDirect))
	m.HandleFunc("POST /api/v4/posts", s.auth(s.createPost))
	m.HandleFunc("POST /api/v4/posts/ephemeral", s.auth(s.createEphemeral))
	m.HandleFunc("GET /api/v4/posts/{id}", s.auth(s.getPost))
	m.HandleFunc("PUT /api/v4/posts/{id}/patch", s.auth(s.patchPost))
	m.HandleFunc("GET /api/v4/posts/{id}/thread", s.auth(s.getThread))
	m.HandleFunc("POST /api/v4/posts/{id}/actions/{action}", s.auth(s.doAction))
	m.HandleFunc("POST /api/v4/commands/execute", s.auth(s.executeCommand))
	m.HandleFunc("GET /api/v4/websocket", s.websocket)
	m.HandleFunc("GET /api/v4/teams/name/{team}", s.auth(s.getTeamByName))
	m.HandleFunc("GET /api/v4/users/{id}/teams/{team}/channels", s.auth(s.channelsOfUser))
	m.HandleFunc("GET /api/v4/channels/{id}/posts", s.auth(s.postsSince))
}

// appError writes an error body as the real server does.
func appError(w http.ResponseWriter, status int, id, message string) {
	writeJSON(w, status, &model.AppError{Id: id, Message: message, RequestId: model.NewId(), StatusCode: status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func forbidden(w http.ResponseWriter) {
	appError(w, http.StatusForbidden, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
}

func sanitize(u *model.User) *model.User {
	c := *u
	c.Password = ""
	return &c
}

func (s *Server) auth(h func(http.ResponseWriter, *http.Request, *model.User)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := bearer(r)
		s.mu.Lock()
		u := s.users[s.tokens[token]]
		s.mu.Unlock()
		if token == "" || u == nil {
			appError(w, http.StatusUnauthorized, "api.context.session_expired.app_error", "Invalid or expired session, please login again.")
			return
		}
		h(w, r, u)
	}
}

// bearer returns the token of an "Authorization: Bearer <t>" header; the
// scheme is case-insensitive (Client4 sends "BEARER").
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		LoginID  string `json:"login_id"`
		Password string `json:"password"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	s.mu.Lock()
	var u *model.User
	for _, x := range s.users {
		if x.Username == req.LoginID {
			u = x
		}
	}
	var pw string
	if u != nil {
		pw = s.passwords[u.Id]
	}
	s.mu.Unlock()
	if u != nil && u.IsBot {
		appError(w, http.StatusUnauthorized, "api.user.login.bot_login_forbidden.app_error", "Bot login is forbidden.")
		return
	}
	if u == nil || pw == "" || pw != req.Password {
		appError(w, http.StatusUnauthorized, "api.user.login.invalid_credentials_email_username", "Enter a valid email or username and/or password.")
		return
	}
	token := model.NewId()
	s.mu.Lock()
	s.tokens[token] = u.Id
	s.mu.Unlock()
	w.Header().Set(model.HeaderToken, token)
	writeJSON(w, http.StatusOK, sanitize(u))
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, _ *model.User) {
	s.mu.Lock()
	u := s.users[r.PathValue("id")]
	s.mu.Unlock()
	if u == nil {
		appError(w, http.StatusNotFound, "app.user.missing_account.const", "Unable to find the user.")
		return
	}
	writeJSON(w, http.StatusOK, sanitize(u))
}

func (s *Server) getUserByName(w http.ResponseWriter, r *http.Request, _ *model.User) {
	s.mu.Lock()
	var u *model.User
	for _, x := range s.users {
		if x.Username == r.PathValue("name") {
			u = x
		}
	}
	s.mu.Unlock()
	if u == nil {
		appError(w, http.StatusNotFound, "app.user.get_by_username.app_error", "Unable to find an existing account matching your username for this team. This team may require an invite from the team owner to join.")
		return
	}
	writeJSON(w, http.StatusOK, sanitize(u))
}

// canRead says whether u may read channel c: members, and admins.
func (s *Server) canRead(c *model.Channel, u *model.User) bool {
	return s.members[c.Id][u.Id] || s.admins[u.Id] || c.Type == model.ChannelTypeOpen
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request, me *model.User) {
	s.mu.Lock()
	c := s.channels[r.PathValue("id")]
	ok := c != nil && s.canRead(c, me)
	s.mu.Unlock()
	if c == nil {
		appError(w, http.StatusNotFound, "app.channel.get.existing.app_error", "Unable to find the existing channel.")
		return
	}
	if !ok {
		forbidden(w)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) getChannelByName(w http.ResponseWriter, r *http.Request, _ *model.User) {
	s.mu.Lock()
	var c *model.Channel
	if r.PathValue("team") == s.Team.Name {
		for _, x := range s.channels {
			if x.Name == r.PathValue("name") && x.TeamId == s.Team.Id {
				c = x
			}
		}
	}
	s.mu.Unlock()
	if c == nil {
		appError(w, http.StatusNotFound, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) createDirect(w http.ResponseWriter, r *http.Request, me *model.User) {
	var ids []string
	if err := json.NewDecoder(r.Body).Decode(&ids); err != nil || len(ids) != 2 {
		appError(w, http.StatusBadRequest, "api.context.invalid_body_param.app_error", "Invalid or missing user_ids in request body.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ids[0] != me.Id && ids[1] != me.Id && !s.admins[me.Id] {
		forbidden(w)
		return
	}
	for _, id := range ids {
		if s.users[id] == nil {
			appError(w, http.StatusBadRequest, "api.channel.create_direct_channel.invalid_user.app_error", "Invalid user ID for direct channel creation.")
			return
		}
	}
	name := model.GetDMNameFromIds(ids[0], ids[1])
	for _, c := range s.channels {
		if c.Name == name {
			writeJSON(w, http.StatusCreated, c)
			return
		}
	}
	c := &model.Channel{Id: model.NewId(), Type: model.ChannelTypeDirect, Name: name, CreateAt: model.GetMillis()}
	s.channels[c.Id] = c
	s.members[c.Id] = map[string]bool{ids[0]: true, ids[1]: true}
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) createPost(w http.ResponseWriter, r *http.Request, me *model.User) {
	body, _ := io.ReadAll(r.Body)
	var p model.Post
	if err := json.Unmarshal(body, &p); err != nil {
		appError(w, http.StatusBadRequest, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body.")
		return
	}
	if s.OnCreatePost != nil {
		s.OnCreatePost(&p)
	}
	s.mu.Lock()
	if len(s.limits) > 0 {
		after := s.limits[0]
		s.limits = s.limits[1:]
		s.mu.Unlock()
		secs := strconv.Itoa(int((after + time.Second - 1) / time.Second))
		w.Header().Set("X-RateLimit-Limit", "10")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", secs)
		w.Header().Set("Retry-After", secs)
		http.Error(w, "limit exceeded", http.StatusTooManyRequests)
		return
	}
	// As the real server: a post whose pending_post_id was seen is
	// answered with the post made then (the real server remembers for
	// 30 s; this one for its life).
	if prev := s.posts[s.pending[p.PendingPostId]]; p.PendingPostId != "" && prev != nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusCreated, clientPost(prev))
		return
	}
	created, status, id, msg := s.create(&p, me)
	if created != nil && p.PendingPostId != "" {
		s.pending[p.PendingPostId] = created.Id
	}
	if created != nil {
		s.raw[created.Id] = body
	}
	s.mu.Unlock()
	if created == nil {
		appError(w, status, id, msg)
		return
	}
	writeJSON(w, http.StatusCreated, created)
}

// CreatePost posts p as user, as POST /posts does, and returns the post.
func (s *Server) CreatePost(userID string, p *model.Post) (*model.Post, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	created, status, _, msg := s.create(p, s.users[userID])
	if created == nil {
		return nil, fmt.Errorf("mmtest: create post: %d %s", status, msg)
	}
	return created, nil
}

// create stores and broadcasts a post; s.mu is held.
func (s *Server) create(p *model.Post, me *model.User) (*model.Post, int, string, string) {
	c := s.channels[p.ChannelId]
	if c == nil || !s.members[c.Id][me.Id] {
		if c == nil && s.admins[me.Id] {
			return nil, http.StatusNotFound, "app.channel.get.existing.app_error", "Unable to find the existing channel."
		}
		if c == nil || !s.admins[me.Id] {
			return nil, http.StatusForbidden, "api.context.permissions.app_error", "You do not have the appropriate permissions."
		}
	}
	if p.RootId != "" {
		root := s.posts[p.RootId]
		if root == nil || root.RootId != "" {
			return nil, http.StatusBadRequest, "api.post.create_post.root_id.app_error", "Invalid RootId parameter."
		}
		if root.ChannelId != p.ChannelId {
			return nil, http.StatusBadRequest, "api.post.create_post.channel_root_id.app_error", "Invalid ChannelId for RootId parameter."
		}
	}
	if utf8.RuneCountInString(p.Message) > model.PostMessageMaxRunesV2 {
		return nil, http.StatusBadRequest, "model.post.is_valid.msg.app_error", "Invalid message."
	}
	post := p.Clone()
	post.Id = model.NewId()
	post.UserId = me.Id
	// Strictly increasing, so that posts made within one millisecond
	// still have an order (GET /channels/{id}/posts sorts by it).
	post.CreateAt = max(model.GetMillis(), s.lastCreate+1)
	s.lastCreate = post.CreateAt
	post.UpdateAt = post.CreateAt
	post.EditAt, post.DeleteAt = 0, 0
	if me.IsBot {
		post.AddProp("from_bot", "true")
	}
	post.GenerateActionIds()
	if post.GetProps() == nil {
		post.SetProps(map[string]any{})
	}
	s.posts[post.Id] = post
	if post.RootId != "" {
		root := s.posts[post.RootId]
		root.ReplyCount++
		post.ReplyCount = root.ReplyCount
	}
	c.LastPostAt = post.CreateAt
	c.TotalMsgCount++

	// What clients get, once, for the event and the response alike.
	out := clientPost(post)
	outJSON, _ := json.Marshal(out)
	data := map[string]any{
		"channel_display_name": c.DisplayName,
		"channel_name":         c.Name,
		"channel_type":         string(c.Type),
		"post":                 string(outJSON),
		"sender_name":          "@" + me.Username,
		"set_online":           true,
		"team_id":              c.TeamId,
	}
	if ids := s.mentions(post.Message, c); len(ids) > 0 {
		b, _ := json.Marshal(ids)
		data["mentions"] = string(b)
	}
	if s.OnPosted != nil {
		s.OnPosted(post)
	}
	s.broadcast(model.WebsocketEventPosted, c.Id, "", data)
	return out, 0, "", ""
}

// mentions returns the members of c that message mentions by @username.
func (s *Server) mentions(message string, c *model.Channel) []string {
	var ids []string
	for id := range s.members[c.Id] {
		u := s.users[id]
		if u == nil {
			continue
		}
		at := "@" + u.Username
		if i := strings.Index(message, at); i >= 0 {
			end := i + len(at)
			if end == len(message) || !strings.ContainsRune("abcdefghijklmnopqrstuvwxyz0123456789-_", rune(message[end])) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// clientPost is p as clients get it: integrations (URLs and contexts)
// stripped.
func clientPost(p *model.Post) *model.Post {
	c := p.Clone()
	// Clone copies props shallowly: re-decode so stripping leaves the
	// stored post alone.
	b, _ := json.Marshal(p.GetProps())
	var props map[string]any
	_ = json.Unmarshal(b, &props)
	c.SetProps(props)
	c.StripActionIntegrations()
	return c
}

func clientJSON(p *model.Post) string {
	b, _ := json.Marshal(clientPost(p))
	return string(b)
}

func (s *Server) createEphemeral(w http.ResponseWriter, r *http.Request, me *model.User) {
	var pe model.PostEphemeral
	if err := json.NewDecoder(r.Body).Decode(&pe); err != nil || pe.Post == nil {
		appError(w, http.StatusBadRequest, "api.context.invalid_body_param.app_error", "Invalid or missing post in request body.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.admins[me.Id] {
		forbidden(w)
		return
	}
	post := pe.Post.Clone()
	post.Id = model.NewId()
	post.UserId = me.Id
	post.CreateAt = model.GetMillis()
	post.Type = model.PostTypeEphemeral
	s.broadcast(model.WebsocketEventEphemeralMessage, "", pe.UserID, map[string]any{"post": clientJSON(post)})
	writeJSON(w, http.StatusCreated, clientPost(post))
}

func (s *Server) visiblePost(w http.ResponseWriter, id string, me *model.User) *model.Post {
	p := s.posts[id]
	if p == nil || p.DeleteAt != 0 {
		appError(w, http.StatusNotFound, "app.post.get.app_error", "Unable to get the post.")
		return nil
	}
	if c := s.channels[p.ChannelId]; !s.canRead(c, me) {
		forbidden(w)
		return nil
	}
	return p
}

func (s *Server) getPost(w http.ResponseWriter, r *http.Request, me *model.User) {
	s.mu.Lock()
	p := s.visiblePost(w, r.PathValue("id"), me)
	var out *model.Post
	if p != nil {
		out = clientPost(p)
	}
	s.mu.Unlock()
	if out != nil {
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) patchPost(w http.ResponseWriter, r *http.Request, me *model.User) {
	var patch model.PostPatch
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
		appError(w, http.StatusBadRequest, "api.context.invalid_body_param.app_error", "Invalid or missing patch in request body.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.visiblePost(w, r.PathValue("id"), me)
	if p == nil {
		return
	}
	if p.UserId != me.Id && !s.admins[me.Id] {
		forbidden(w)
		return
	}
	if patch.Message != nil && utf8.RuneCountInString(*patch.Message) > model.PostMessageMaxRunesV2 {
		appError(w, http.StatusBadRequest, "model.post.is_valid.msg.app_error", "Invalid message.")
		return
	}
	p.Patch(&patch)
	p.GenerateActionIds()
	p.EditAt = model.GetMillis()
	p.UpdateAt = p.EditAt
	s.broadcast(model.WebsocketEventPostEdited, p.ChannelId, "", map[string]any{"post": clientJSON(p)})
	writeJSON(w, http.StatusOK, clientPost(p))
}

func (s *Server) getThread(w http.ResponseWriter, r *http.Request, me *model.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.visiblePost(w, r.PathValue("id"), me)
	if p == nil {
		return
	}
	rootID := p.Id
	if p.RootId != "" {
		rootID = p.RootId
	}
	// As the real server: the order starts with the post asked for, then
	// lists the whole thread, root included, newest first (so a thread
	// asked for by its root lists the root twice).
	list := model.NewPostList()
	list.AddOrder(p.Id)
	thread := []*model.Post{s.posts[rootID]}
	for _, x := range s.posts {
		if x.RootId == rootID {
			thread = append(thread, x)
		}
	}
	sort.Slice(thread, func(i, j int) bool {
		if thread[i].CreateAt != thread[j].CreateAt {
			return thread[i].CreateAt > thread[j].CreateAt
		}
		return thread[j].Id == rootID && thread[i].Id != rootID
	})
	for _, x := range thread {
		list.AddOrder(x.Id)
		list.AddPost(clientPost(x))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getTeamByName(w http.ResponseWriter, r *http.Request, _ *model.User) {
	if r.PathValue("team") != s.Team.Name {
		appError(w, http.StatusNotFound, "app.team.get_by_name.missing.app_error", "Unable to find the existing team.")
		return
	}
	writeJSON(w, http.StatusOK, s.Team)
}

// channelsOfUser lists the channels of the team a user is a member of,
// direct ones included, as the real server does; only for the caller
// themselves or an admin.
func (s *Server) channelsOfUser(w http.ResponseWriter, r *http.Request, me *model.User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uid := r.PathValue("id")
	if uid == "me" {
		uid = me.Id
	}
	if uid != me.Id && !s.admins[me.Id] {
		forbidden(w)
		return
	}
	out := []*model.Channel{}
	for _, c := range s.channels {
		if (c.TeamId == s.Team.Id || c.TeamId == "") && s.members[c.Id][uid] {
			out = append(out, c)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// postsSince is GET /channels/{id}/posts?since=ms: the posts of the channel
// created or changed since then, as the real server answers it; without
// since, every post of the channel.
func (s *Server) postsSince(w http.ResponseWriter, r *http.Request, me *model.User) {
	// Without since: every post (page and per_page are not supported).
	since, err := int64(0), error(nil)
	if v := r.URL.Query().Get("since"); v != "" {
		since, err = strconv.ParseInt(v, 10, 64)
	}
	if err != nil {
		appError(w, http.StatusBadRequest, "api.context.invalid_url_param.app_error", "Invalid or missing since parameter.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[r.PathValue("id")]
	if c == nil {
		appError(w, http.StatusNotFound, "app.channel.get.existing.app_error", "Unable to find the existing channel.")
		return
	}
	if !s.canRead(c, me) {
		forbidden(w)
		return
	}
	var found []*model.Post
	for _, p := range s.posts {
		if p.ChannelId == c.Id && max(p.CreateAt, p.UpdateAt, p.DeleteAt) >= since {
			found = append(found, p)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].CreateAt > found[j].CreateAt })
	list := model.NewPostList()
	for _, p := range found {
		list.AddOrder(p.Id)
		list.AddPost(clientPost(p))
	}
	writeJSON(w, http.StatusOK, list)
}

// doAction is a click on a button: the server posts an integration
// request to the action's URL and applies the response.
func (s *Server) doAction(w http.ResponseWriter, r *http.Request, me *model.User) {
	s.mu.Lock()
	p := s.visiblePost(w, r.PathValue("id"), me)
	if p == nil {
		s.mu.Unlock()
		return
	}
	action := p.GetAction(r.PathValue("action"))
	c := s.channels[p.ChannelId]
	s.mu.Unlock()
	if action == nil || action.Integration == nil {
		appError(w, http.StatusNotFound, "api.post.do_action.action_id.app_error", "Invalid action id.")
		return
	}
	req := model.PostActionIntegrationRequest{
		UserId: me.Id, UserName: me.Username, ChannelId: c.Id, ChannelName: c.Name,
		TeamId: c.TeamId, PostId: p.Id, TriggerId: model.NewId(), Type: action.Type, Context: action.Integration.Context,
	}
	if c.TeamId != "" {
		req.TeamName = s.Team.Name
	}
	body, _ := json.Marshal(req)
	hreq, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, action.Integration.URL, bytes.NewReader(body))
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		appError(w, http.StatusBadRequest, "api.post.do_action.action_integration.app_error", "Action integration error.")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		appError(w, http.StatusBadRequest, "api.post.do_action.action_integration.app_error", "Action integration error.")
		return
	}
	var ir model.PostActionIntegrationResponse
	_ = json.NewDecoder(resp.Body).Decode(&ir)
	if ir.EphemeralText != "" {
		s.mu.Lock()
		e := &model.Post{Id: model.NewId(), ChannelId: c.Id, UserId: p.UserId, RootId: p.RootId, Message: ir.EphemeralText, Type: model.PostTypeEphemeral, CreateAt: model.GetMillis()}
		s.broadcast(model.WebsocketEventEphemeralMessage, "", me.Id, map[string]any{"post": clientJSON(e)})
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, model.PostActionAPIResponse{Status: "OK", TriggerId: req.TriggerId})
}

// executeCommand runs a custom slash command: the server POSTs the
// command's form, with its token, to the command's URL.
func (s *Server) executeCommand(w http.ResponseWriter, r *http.Request, me *model.User) {
	var args model.CommandArgs
	if err := json.NewDecoder(r.Body).Decode(&args); err != nil {
		appError(w, http.StatusBadRequest, "api.context.invalid_body_param.app_error", "Invalid or missing command in request body.")
		return
	}
	trigger, text, _ := strings.Cut(strings.TrimPrefix(args.Command, "/"), " ")
	s.mu.Lock()
	cmd := s.commands[trigger]
	c := s.channels[args.ChannelId]
	ok := c != nil && s.members[c.Id][me.Id]
	s.mu.Unlock()
	if cmd == nil {
		appError(w, http.StatusNotFound, "api.command.execute_command.not_found.app_error", "Command with a trigger of '"+trigger+"' not found.")
		return
	}
	if !ok {
		forbidden(w)
		return
	}
	form := url.Values{
		"channel_id": {c.Id}, "channel_name": {c.Name}, "command": {"/" + trigger},
		"team_domain": {s.Team.Name}, "team_id": {s.Team.Id}, "text": {strings.TrimSpace(text)},
		"token": {cmd.Token}, "trigger_id": {model.NewId()}, "user_id": {me.Id}, "user_name": {me.Username},
		"response_url": {s.URL + "/hooks/commands/" + model.NewId()},
	}
	hreq, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, cmd.URL, strings.NewReader(form.Encode()))
	hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("Authorization", "Token "+cmd.Token)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		appError(w, http.StatusInternalServerError, "api.command.execute_command.failed.app_error", "Command with a trigger of '"+trigger+"' failed.")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		appError(w, http.StatusInternalServerError, "api.command.execute_command.failed_resp.app_error", "Command with a trigger of '"+trigger+"' returned response "+resp.Status+".")
		return
	}
	b, _ := io.ReadAll(resp.Body)
	cr, _ := model.CommandResponseFromHTTPBody(resp.Header.Get("Content-Type"), bytes.NewReader(b))
	if cr == nil {
		cr = &model.CommandResponse{}
	}
	writeJSON(w, http.StatusOK, cr)
}

// conn is one websocket. As the real server's WebConn does, it writes
// from a goroutine of its own, from a queue that events are put on in
// order, so that no lock of the server is held across a network write; a
// client that lets the queue fill is dropped, as the real server drops it.
type conn struct {
	s      *Server
	ws     *websocket.Conn
	userID string
	mu     sync.Mutex // orders seq and the queue
	seq    int64
	out    chan frame
	done   chan struct{}
}

// frame is a text frame to write, with its event when it is one.
type frame struct {
	b  []byte
	ev *model.WebSocketEvent
}

const sendQueueSize = 256 // as the real server's

func newConn(s *Server, ws *websocket.Conn) *conn {
	return &conn{s: s, ws: ws, out: make(chan frame, sendQueueSize), done: make(chan struct{})}
}

// writer writes the queued frames until done is closed.
func (c *conn) writer(exited chan<- struct{}) {
	defer close(exited)
	for {
		select {
		case f := <-c.out:
			if f.ev != nil && c.s.OnEventWrite != nil {
				c.s.OnEventWrite(c.userID, f.ev)
			}
			_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_ = c.ws.WriteMessage(websocket.TextMessage, f.b)
		case <-c.done:
			return
		}
	}
}

// enqueue puts f on the queue; c.mu is held.
func (c *conn) enqueue(f frame) {
	select {
	case c.out <- f:
	case <-c.done:
	default:
		c.ws.Close()
	}
}

func (c *conn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enqueue(frame{b: b})
}

func (c *conn) event(ev *model.WebSocketEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev = ev.SetSequence(c.seq)
	c.seq++
	b, err := ev.ToJSON()
	if err != nil {
		return
	}
	c.enqueue(frame{b: b, ev: ev})
}

// broadcast sends an event to the members of channelID (or to userID
// alone); s.mu is held.
func (s *Server) broadcast(event, channelID, userID string, data map[string]any) {
	ev := model.NewWebSocketEvent(event, "", channelID, userID, nil).SetData(data)
	for c := range s.conns {
		if (channelID != "" && s.members[channelID][c.userID]) || (userID != "" && c.userID == userID) {
			c.event(ev.Copy())
		}
	}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// websocket serves /api/v4/websocket as the real server does: the client
// authenticates with a challenge, the server sends hello, then the OK
// reply, then events.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer ws.Close()
	c := newConn(s, ws)
	exited := make(chan struct{})
	go c.writer(exited)
	defer func() { // after c has left s.conns: nothing is queued any more
		close(c.done)
		<-exited
	}()
	if token := bearer(r); token != "" {
		s.mu.Lock()
		c.userID = s.tokens[token]
		s.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the real server pings; the client's watchdog wants it
		every := s.PingEvery
		if every <= 0 {
			every = 30 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Control frames may be written alongside the writer's.
				_ = ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
			}
		}
	}()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	for {
		var req model.WebSocketRequest
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		if req.Action != model.WebsocketAuthenticationChallenge {
			if c.userID == "" {
				c.send(model.NewWebSocketError(req.Seq, model.NewAppError("ServeWebSocket", "api.web_socket_router.not_authenticated.app_error", nil, "", http.StatusUnauthorized)))
				continue
			}
			c.send(model.NewWebSocketResponse(model.StatusOk, req.Seq, nil))
			continue
		}
		token, _ := req.Data["token"].(string)
		s.mu.Lock()
		uid := s.tokens[token]
		s.mu.Unlock()
		if uid == "" {
			c.send(model.NewWebSocketError(req.Seq, model.NewAppError("ServeWebSocket", "api.web_socket_router.bad_token.app_error", nil, "", http.StatusUnauthorized)))
			continue
		}
		c.userID = uid
		// hello first, then the reply to the challenge, as the real
		// server sends them.
		c.event(model.NewWebSocketEvent(model.WebsocketEventHello, "", "", uid, nil).SetData(map[string]any{
			"connection_id": model.NewId(), "server_version": "6.7.2.fake.mmtest.false",
		}))
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		c.send(model.NewWebSocketResponse(model.StatusOk, req.Seq, nil))
	}
}
