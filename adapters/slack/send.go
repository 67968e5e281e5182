package slack

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/chimaops/chima/core/chat"
)

// Send posts out with chat.postMessage, in thread to.ThreadID when set. A
// reply to a slash command goes to its channel; where the bot cannot post
// there (a DM with someone else, a channel it was not invited to), it goes
// through the command's response_url instead.
func (a *Adapter) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if to.Room == "" {
		return chat.MessageRef{}, fmt.Errorf("slack: send: %w: empty room", chat.ErrUnknownRoom)
	}
	r := render(out)
	if strings.HasPrefix(to.ThreadID, slashPrefix) {
		if call, ok := a.slash.get(to.ThreadID); ok && call.channel == to.Room {
			return a.sendSlashReply(ctx, to, to.ThreadID, call, r)
		}
		to.ThreadID = "" // an expired slash command: its answer goes to the room
	}
	return a.post(ctx, to, r)
}

// post sends r to to.Room, in to.ThreadID when set.
func (a *Adapter) post(ctx context.Context, to chat.MessageRef, r rendered) (chat.MessageRef, error) {
	opts := r.options()
	if to.ThreadID != "" {
		opts = append(opts, slackgo.MsgOptionTS(to.ThreadID))
	}
	channel, ts, err := a.api.PostMessageContext(ctx, to.Room, opts...)
	if err != nil {
		return chat.MessageRef{}, fmt.Errorf("slack: chat.postMessage to %s: %w", to.Room, mapError(err))
	}
	if channel == "" {
		channel = to.Room
	}
	return chat.MessageRef{Adapter: a.Name(), Room: channel, MessageID: ts, ThreadID: to.ThreadID}, nil
}

// sendSlashReply posts a reply to slash command id. Replies are serialised
// per command so that the first one posted becomes the root of the thread
// the others go into.
func (a *Adapter) sendSlashReply(ctx context.Context, to chat.MessageRef, id string, call *slashCall, r rendered) (chat.MessageRef, error) {
	call.mu.Lock()
	defer call.mu.Unlock()
	if call.root != "" {
		to.ThreadID = call.root
		return a.post(ctx, to, r)
	}
	if !call.viaURL {
		to.ThreadID = ""
		ref, err := a.post(ctx, to, r)
		if err == nil {
			call.root = ref.MessageID
			return ref, nil
		}
		if !errors.Is(err, chat.ErrUnknownRoom) || call.responseURL == "" {
			return chat.MessageRef{}, err
		}
		a.log.Debug("slack: cannot post to the channel, answering through the response URL", "channel", to.Room)
		call.viaURL = true
	}
	if err := a.respond(ctx, call.responseURL, "in_channel", false, r); err != nil {
		return chat.MessageRef{}, err
	}
	call.replies++
	return chat.MessageRef{Adapter: a.Name(), Room: to.Room, MessageID: id + ".r" + strconv.Itoa(call.replies)}, nil
}

// respond posts r to a slash command's response_url.
func (a *Adapter) respond(ctx context.Context, responseURL, responseType string, replace bool, r rendered) error {
	opts := append(r.options(), slackgo.MsgOptionResponseURL(responseURL, responseType))
	if replace {
		opts = append(r.editOptions(), slackgo.MsgOptionResponseURL(responseURL, responseType), slackgo.MsgOptionReplaceOriginal(responseURL))
	}
	if _, _, err := a.api.PostMessageContext(ctx, "", opts...); err != nil {
		return fmt.Errorf("slack: response_url: %w", mapError(err))
	}
	return nil
}

// Update replaces a message the bot sent (chat.update); a reply sent
// through a response_url is replaced through it.
func (a *Adapter) Update(ctx context.Context, ref chat.MessageRef, out chat.Output) error {
	if ref.Room == "" || ref.MessageID == "" {
		return fmt.Errorf("slack: update: %w: no room or message id in %s", chat.ErrUnknownRoom, ref)
	}
	r := render(out)
	if strings.HasPrefix(ref.MessageID, slashPrefix) {
		id, _, _ := strings.Cut(ref.MessageID, ".")
		call, ok := a.slash.get(id)
		if !ok {
			return fmt.Errorf("slack: update %s: the slash command's response URL has expired", ref)
		}
		return a.respond(ctx, call.responseURL, "in_channel", true, r)
	}
	if _, _, _, err := a.api.UpdateMessageContext(ctx, ref.Room, ref.MessageID, r.editOptions()...); err != nil {
		return fmt.Errorf("slack: chat.update %s: %w", ref, mapError(err))
	}
	return nil
}

// SendEphemeral shows out to userID only (chat.postEphemeral), in to's
// thread when it has one. For a slash command the bot cannot answer in
// its channel, the command's response_url shows it instead.
func (a *Adapter) SendEphemeral(ctx context.Context, to chat.MessageRef, userID string, out chat.Output) error {
	if to.Room == "" {
		return fmt.Errorf("slack: ephemeral: %w: empty room", chat.ErrUnknownRoom)
	}
	r := render(out)
	var call *slashCall
	for _, id := range []string{to.ThreadID, to.MessageID} {
		if strings.HasPrefix(id, slashPrefix) {
			base, _, _ := strings.Cut(id, ".")
			call, _ = a.slash.get(base)
			if id == to.ThreadID {
				to.ThreadID = ""
			}
		}
	}
	opts := r.options()
	if to.ThreadID != "" {
		opts = append(opts, slackgo.MsgOptionTS(to.ThreadID))
	}
	_, err := a.api.PostEphemeralContext(ctx, to.Room, userID, opts...)
	if err == nil {
		return nil
	}
	err = mapError(err)
	if call != nil && call.responseURL != "" && errors.Is(err, chat.ErrUnknownRoom) {
		return a.respond(ctx, call.responseURL, "ephemeral", false, r)
	}
	return fmt.Errorf("slack: chat.postEphemeral to %s: %w", to.Room, err)
}

// OpenDirect opens (or finds) the direct conversation with a user.
func (a *Adapter) OpenDirect(ctx context.Context, userID string) (chat.MessageRef, error) {
	ch, _, _, err := a.api.OpenConversationContext(ctx, &slackgo.OpenConversationParameters{Users: []string{strings.TrimPrefix(userID, "@")}, ReturnIM: true})
	if err != nil {
		if isSlackError(err, "user_not_found", "users_not_found") {
			return chat.MessageRef{}, fmt.Errorf("slack: conversations.open %s: %w", userID, chat.ErrUnknownUser)
		}
		return chat.MessageRef{}, fmt.Errorf("slack: conversations.open %s: %w", userID, mapError(err))
	}
	return chat.MessageRef{Adapter: a.Name(), Room: ch.ID}, nil
}
