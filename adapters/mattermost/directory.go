package mattermost

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/chimaops/chima/core/chat"
)

// LookupRoom resolves a channel id, or a channel name in the configured
// team ("deploys", "#deploys", "~deploys"), to the channel.
func (a *Adapter) LookupRoom(ctx context.Context, nameOrID string) (chat.Room, error) {
	s := strings.TrimLeft(strings.TrimSpace(nameOrID), "#~")
	if s == "" {
		return chat.Room{}, fmt.Errorf("mattermost: %w: empty room", chat.ErrUnknownRoom)
	}
	c := a.client(ctx)
	if model.IsValidId(s) {
		ch, resp, err := c.GetChannel(s, "")
		if err == nil {
			return a.room(ch), nil
		}
		if resp == nil || (resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusForbidden) {
			return chat.Room{}, apiError("get channel "+s, resp, err, nil)
		}
		// A 26-letter name looks like an id: try it as a name too.
	}
	ch, resp, err := c.GetChannelByNameForTeamName(strings.ToLower(s), a.opts.Team, "")
	if err != nil {
		return chat.Room{}, apiError(fmt.Sprintf("get channel %q in team %q", s, a.opts.Team), resp, err, chat.ErrUnknownRoom)
	}
	return a.room(ch), nil
}

func (a *Adapter) room(ch *model.Channel) chat.Room {
	a.rooms.put(ch.Id, ch.Name)
	direct := ch.Type == model.ChannelTypeDirect
	if direct {
		a.directs.put(ch.Id, "D")
	}
	return chat.Room{ID: ch.Id, Name: ch.Name, Direct: direct}
}

// LookupUser resolves a user id or username ("alice", "@alice").
func (a *Adapter) LookupUser(ctx context.Context, nameOrID string) (chat.User, error) {
	s := strings.TrimPrefix(strings.TrimSpace(nameOrID), "@")
	if s == "" {
		return chat.User{}, fmt.Errorf("mattermost: %w: empty user", chat.ErrUnknownUser)
	}
	c := a.client(ctx)
	if model.IsValidId(s) {
		u, resp, err := c.GetUser(s, "")
		if err == nil {
			return chat.User{ID: u.Id, Name: u.Username}, nil
		}
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			return chat.User{}, apiError("get user "+s, resp, err, nil)
		}
	}
	u, resp, err := c.GetUserByUsername(strings.ToLower(s), "")
	if err != nil {
		return chat.User{}, apiError(fmt.Sprintf("get user %q", s), resp, err, chat.ErrUnknownUser)
	}
	return chat.User{ID: u.Id, Name: u.Username}, nil
}

// OpenDirect opens (or finds) the direct channel between the bot and
// userID (an id, or a username).
func (a *Adapter) OpenDirect(ctx context.Context, userID string) (chat.MessageRef, error) {
	self := a.Self()
	if self.ID == "" {
		if err := a.identify(ctx); err != nil {
			return chat.MessageRef{}, err
		}
		self = a.Self()
	}
	if !model.IsValidId(userID) {
		u, err := a.LookupUser(ctx, userID)
		if err != nil {
			return chat.MessageRef{}, err
		}
		userID = u.ID
	}
	ch, resp, err := a.client(ctx).CreateDirectChannel(self.ID, userID)
	if err != nil {
		return chat.MessageRef{}, apiError("open a direct channel with "+userID, resp, err, chat.ErrUnknownUser)
	}
	a.directs.put(ch.Id, "D")
	return chat.MessageRef{Adapter: a.name, Room: ch.Id}, nil
}

// SendEphemeral shows out to userID alone in to.Room, as an ephemeral post.
// Mattermost lets only system admins create ephemeral posts through the
// API; when the server refuses the bot (403), the message goes to the user
// as a direct message instead, so it still reaches that user and nobody
// else.
func (a *Adapter) SendEphemeral(ctx context.Context, to chat.MessageRef, userID string, out chat.Output) error {
	room, err := a.roomID(ctx, to.Room)
	if err != nil {
		return err
	}
	// The server does not check the channel of an ephemeral post (it
	// only pushes it to the user's clients): check it here, once.
	if _, ok := a.rooms.get(room); !ok {
		if _, err := a.LookupRoom(ctx, room); err != nil {
			return err
		}
	}
	post := a.render(out)
	post.ChannelId = room
	if to.ThreadID != "" {
		post.RootId = a.rootOf(to.ThreadID)
	}
	_, resp, err := a.client(ctx).CreatePostEphemeral(&model.PostEphemeral{UserID: userID, Post: post})
	if err == nil {
		return nil
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		return apiError("create ephemeral post in "+room, resp, err, chat.ErrUnknownRoom)
	}
	a.log.Debug("mattermost: the bot may not post ephemerally (not a system admin): sending a direct message", "user", userID)
	dm, derr := a.OpenDirect(ctx, userID)
	if derr != nil {
		return fmt.Errorf("mattermost: ephemeral post refused (%v), and no direct channel: %w", err, derr)
	}
	_, derr = a.Send(ctx, dm, out)
	return derr
}
