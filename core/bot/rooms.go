package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/directory"
	"github.com/chimaops/chima/core/mention"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// roomDirectory holds a cached directory per adapter that has one, so that
// rooms can be named or id'd anywhere: policies' allowed_rooms, apps'
// allowed_rooms (the plugin gets the room's name beside its id) and rooms
// posted to ("slack:deployment" reaches the channel named deployment).
// Adapters without a directory keep their rooms as given: their names are
// their ids.
//
// It is filled by AddAdapter before Run and read without a lock after, as
// the adapter table is.
type roomDirectory map[string]*directory.Cache

// add caches a's directory, when it has one.
func (d *roomDirectory) add(a chat.Adapter) {
	dir, ok := a.(chat.Directory)
	if !ok {
		delete(*d, a.Name())
		return
	}
	if *d == nil {
		*d = roomDirectory{}
	}
	(*d)[a.Name()] = directory.New(dir, directory.Options{})
}

// users returns the cached directory of adapter for mentions, or nil when
// it has none.
func (d roomDirectory) users(adapter string) mention.Users {
	if c := d[adapter]; c != nil {
		return c
	}
	return nil
}

// roomName returns the name of ref's room when its adapter has a directory
// and the name differs from the room as given (an id); "" otherwise. A
// failed lookup is "" too: the room then matches what names it as given.
func (b *Bot) roomName(ctx context.Context, ref chat.MessageRef) string {
	dir := b.rooms[ref.Adapter]
	if dir == nil || ref.Room == "" {
		return ""
	}
	r, err := dir.LookupRoom(ctx, ref.Room)
	if err != nil {
		if !errors.Is(err, chat.ErrUnknownRoom) && ctx.Err() == nil {
			b.log.Warn("room lookup failed", "adapter", ref.Adapter, "room", ref.Room, "error", err)
		}
		return ""
	}
	if r.Name == ref.Room {
		return ""
	}
	return r.Name
}

// resolveRoom returns ref with its room as the adapter's id for it, when
// the adapter has a directory: a plugin's post or a job's notify room may
// name the room ("deployment"). A room the directory does not know is an
// error wrapping chat.ErrUnknownRoom; when the directory cannot answer, ref
// is returned as given and the adapter has the last word.
func (b *Bot) resolveRoom(ctx context.Context, ref chat.MessageRef) (chat.MessageRef, error) {
	dir := b.rooms[ref.Adapter]
	if dir == nil || ref.Room == "" {
		return ref, nil
	}
	r, err := dir.LookupRoom(ctx, ref.Room)
	switch {
	case errors.Is(err, chat.ErrUnknownRoom):
		return ref, fmt.Errorf("%s has no room %q: %w", ref.Adapter, ref.Room, chat.ErrUnknownRoom)
	case err != nil:
		if ctx.Err() == nil {
			b.log.Warn("room lookup failed; sending to the room as given", "adapter", ref.Adapter, "room", ref.Room, "error", err)
		}
		return ref, nil
	}
	if r.ID != "" {
		ref.Room = r.ID
	}
	return ref, nil
}

// refToProtoNamed is refToProto with the room's name, for a command's
// message (pluginv1.MessageRef.room_name).
func refToProtoNamed(r chat.MessageRef, roomName string) *pluginv1.MessageRef {
	p := refToProto(r)
	p.RoomName = roomName
	return p
}

// notifyRef is the room a job reports to, as stored with the job: with its
// adapter filled in and its room as the adapter's id, so that every report
// of the job (progress, its end, an interruption) goes where it should
// without a lookup. A room the directory does not know is kept as given
// (the send says so later) rather than refusing the job.
func (b *Bot) notifyRef(ctx context.Context, ref chat.MessageRef) chat.MessageRef {
	ref = b.withAdapter(ref)
	resolved, err := b.resolveRoom(ctx, ref)
	if err != nil {
		b.log.Warn("a job's notify room is unknown", "adapter", ref.Adapter, "room", ref.Room, "error", err)
		return ref
	}
	return resolved
}
