package slack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/chimaops/chima/core/chat"
)

// Slack ids are upper case (C024BE91L, U012AB3CD); channel names are lower
// case, so the two never mix up.
var (
	roomIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{6,}$`)
	userIDPattern = regexp.MustCompile(`^[UWB][A-Z0-9]{6,}$`)
)

// LookupRoom resolves a channel id (conversations.info) or name, with or
// without '#' (conversations.list over public and private channels the bot
// can see).
func (a *Adapter) LookupRoom(ctx context.Context, nameOrID string) (chat.Room, error) {
	key := strings.TrimPrefix(strings.TrimSpace(nameOrID), "#")
	if key == "" {
		return chat.Room{}, fmt.Errorf("slack: lookup room: %w: empty name", chat.ErrUnknownRoom)
	}
	if roomIDPattern.MatchString(key) {
		ch, err := a.api.GetConversationInfoContext(ctx, &slackgo.GetConversationInfoInput{ChannelID: key})
		if err != nil {
			return chat.Room{}, fmt.Errorf("slack: conversations.info %s: %w", key, mapError(err))
		}
		return roomOf(ch), nil
	}
	name := strings.ToLower(key)
	params := &slackgo.GetConversationsParameters{ExcludeArchived: true, Limit: 200, Types: []string{"public_channel", "private_channel"}}
	for {
		chans, cursor, err := a.api.GetConversationsContext(ctx, params)
		if err != nil {
			return chat.Room{}, fmt.Errorf("slack: conversations.list: %w", mapError(err))
		}
		for i := range chans {
			if chans[i].Name == name || chans[i].NameNormalized == name {
				return roomOf(&chans[i]), nil
			}
		}
		if cursor == "" {
			return chat.Room{}, fmt.Errorf("slack: no channel named %q: %w", key, chat.ErrUnknownRoom)
		}
		params.Cursor = cursor
	}
}

func roomOf(ch *slackgo.Channel) chat.Room {
	r := chat.Room{ID: ch.ID, Name: ch.Name, Direct: ch.IsIM}
	if r.Name == "" && ch.IsIM {
		r.Name = "@" + ch.User
	}
	return r
}

// LookupUser resolves a user id (users.info) or name, with or without '@'
// (users.list: the user name first, then a unique display name).
func (a *Adapter) LookupUser(ctx context.Context, nameOrID string) (chat.User, error) {
	key := strings.TrimPrefix(strings.TrimSpace(nameOrID), "@")
	if key == "" {
		return chat.User{}, fmt.Errorf("slack: lookup user: %w: empty name", chat.ErrUnknownUser)
	}
	if userIDPattern.MatchString(key) {
		u, err := a.api.GetUserInfoContext(ctx, key)
		if err != nil {
			if isSlackError(err, "user_not_found", "users_not_found") {
				return chat.User{}, fmt.Errorf("slack: users.info %s: %w", key, chat.ErrUnknownUser)
			}
			return chat.User{}, fmt.Errorf("slack: users.info %s: %w", key, mapError(err))
		}
		a.names.putUser(u.ID, u.Name)
		return chat.User{ID: u.ID, Name: u.Name}, nil
	}
	var byDisplay []chat.User
	p := a.api.GetUsersPaginated(slackgo.GetUsersOptionLimit(200))
	for {
		var err error
		p, err = p.Next(ctx)
		if p.Done(err) {
			break
		}
		if err != nil {
			return chat.User{}, fmt.Errorf("slack: users.list: %w", mapError(err))
		}
		for _, u := range p.Users {
			if u.Deleted {
				continue
			}
			if strings.EqualFold(u.Name, key) {
				a.names.putUser(u.ID, u.Name)
				return chat.User{ID: u.ID, Name: u.Name}, nil
			}
			if strings.EqualFold(u.Profile.DisplayName, key) {
				byDisplay = append(byDisplay, chat.User{ID: u.ID, Name: u.Name})
			}
		}
	}
	if len(byDisplay) == 1 {
		return byDisplay[0], nil
	}
	return chat.User{}, fmt.Errorf("slack: no user named %q: %w", key, chat.ErrUnknownUser)
}

// isSlackError reports whether err is one of Slack's named errors.
func isSlackError(err error, names ...string) bool {
	var se slackgo.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	for _, n := range names {
		if se.Err == n {
			return true
		}
	}
	return false
}

// mapError turns slack-go's errors into the contract's: a rate limit into
// chat.RetryAfterError, a channel the bot cannot post to into
// chat.ErrUnknownRoom.
func mapError(err error) error {
	var rl *slackgo.RateLimitedError
	if errors.As(err, &rl) {
		return &chat.RetryAfterError{After: rl.RetryAfter, Err: err}
	}
	if isSlackError(err, "channel_not_found", "not_in_channel", "is_archived", "channel_is_archived") {
		return fmt.Errorf("%w: %w", chat.ErrUnknownRoom, err)
	}
	if isSlackError(err, "invalid_auth", "not_authed", "token_revoked", "account_inactive", "missing_scope") {
		return fmt.Errorf("%w: %w", chat.ErrUnauthorized, err)
	}
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) && !isSlackError(err, slackTransient...) {
		// Slack said ok:false for a reason sending again will not change
		// (invalid_blocks, msg_too_long, cant_update_message…).
		return fmt.Errorf("%w: %w", chat.ErrRefused, err)
	}
	return err
}

// slackTransient are the ok:false errors Slack documents as worth a retry.
var slackTransient = []string{"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
