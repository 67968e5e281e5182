package mattermost

import (
	"crypto/hmac"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/core/chat"
)

// Route paths, relative to the adapter's prefix (/<name>/…).
const (
	ActionsPath = "actions"
	CommandPath = "command"
)

// maxRouteBody bounds post-backs and slash-command forms.
const maxRouteBody = 64 << 10

// Routes serves the buttons' integration actions (always: a click on a
// button posted before a config change still gets a clear answer) and,
// with a slash token, the /chima slash command.
func (a *Adapter) Routes() []chat.Route {
	rs := []chat.Route{{
		Method:  http.MethodPost,
		Path:    ActionsPath,
		Verify:  a.verifyAction,
		Handler: http.HandlerFunc(a.serveAction),
		MaxBody: maxRouteBody,
	}}
	if a.opts.SlashToken != "" {
		rs = append(rs, chat.Route{
			Method:  http.MethodPost,
			Path:    CommandPath,
			Verify:  a.verifyCommand,
			Handler: http.HandlerFunc(a.serveCommand),
			MaxBody: maxRouteBody,
		})
	}
	return rs
}

// actionRequest decodes an integration action post-back and checks the
// signature in its context.
func (a *Adapter) actionRequest(body []byte) (*model.PostActionIntegrationRequest, string, string, error) {
	var req model.PostActionIntegrationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, "", "", fmt.Errorf("mattermost: action: %w: undecodable body: %v", chat.ErrUnauthorized, err)
	}
	id, _ := req.Context[ctxActionID].(string)
	value, _ := req.Context[ctxValue].(string)
	sig, _ := req.Context[ctxSig].(string)
	if sig == "" || !hmac.Equal([]byte(sig), []byte(a.sign(id, value))) {
		return nil, "", "", fmt.Errorf("mattermost: action: %w: bad or missing signature", chat.ErrUnauthorized)
	}
	if req.UserId == "" || req.PostId == "" {
		return nil, "", "", fmt.Errorf("mattermost: action: %w: no user or post", chat.ErrUnauthorized)
	}
	return &req, id, value, nil
}

func (a *Adapter) verifyAction(_ *http.Request, body []byte) error {
	_, _, _, err := a.actionRequest(body)
	return err
}

// serveAction hands a verified click to the handler and answers with an
// empty integration response, which leaves the post as it is.
func (a *Adapter) serveAction(w http.ResponseWriter, r *http.Request) {
	box := a.handler.Load()
	if box == nil {
		http.Error(w, "the bot is starting", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRouteBody))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	req, id, value, err := a.actionRequest(body)
	if err != nil {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	thread, _ := a.roots.get(req.PostId)
	_, direct := a.directs.get(req.ChannelId)
	box.h.HandleInteraction(box.ctx, chat.Interaction{
		Ref:      chat.MessageRef{Adapter: a.name, Room: req.ChannelId, MessageID: req.PostId, ThreadID: thread},
		User:     chat.User{ID: req.UserId, Name: req.UserName},
		ActionID: id,
		Value:    value,
		Direct:   direct,
		Time:     time.Now(),
	})
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(model.PostActionIntegrationResponse{})
}

// verifyCommand checks the slash command's token, which Mattermost sends
// as "Authorization: Token <t>" and as the form's token field.
func (a *Adapter) verifyCommand(r *http.Request, body []byte) error {
	got := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Token ") {
		got = strings.TrimPrefix(h, "Token ")
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		got = form.Get("token")
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(a.opts.SlashToken)) != 1 {
		return fmt.Errorf("mattermost: slash command: %w: bad or missing token", chat.ErrUnauthorized)
	}
	return nil
}

// serveCommand turns a verified /chima into a message addressed to the bot
// and acknowledges it at once with an empty 200 (Mattermost posts nothing
// for an empty response); the answer is posted to the channel.
func (a *Adapter) serveCommand(w http.ResponseWriter, r *http.Request) {
	box := a.handler.Load()
	if box == nil {
		http.Error(w, "the bot is starting", http.StatusServiceUnavailable)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	if f.Get("channel_id") == "" || f.Get("user_id") == "" {
		http.Error(w, "no channel or user", http.StatusBadRequest)
		return
	}
	_, direct := a.directs.get(f.Get("channel_id"))
	// A direct channel's name is "<user id>__<user id>".
	direct = direct || strings.Contains(f.Get("channel_name"), "__")
	box.h.HandleMessage(box.ctx, chat.Message{
		Ref:       chat.MessageRef{Adapter: a.name, Room: f.Get("channel_id")},
		User:      chat.User{ID: f.Get("user_id"), Name: f.Get("user_name")},
		Text:      strings.TrimSpace(f.Get("text")),
		Direct:    direct,
		Mentioned: true,
		Time:      time.Now(),
	})
	w.WriteHeader(http.StatusOK)
}
