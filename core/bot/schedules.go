package bot

import (
	"context"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// RunScheduled runs command, the command of schedule name, as if the user as
// had typed it in room: through the router, policy and audit of a typed
// command, in that person's turn in that room, audited with Via "schedule
// <name>". It returns once the command has been handled; its outcome is
// "cancelled" when ctx ended before it could start.
func (b *Bot) RunScheduled(ctx context.Context, name string, room chat.MessageRef, as, command string) Result {
	if ctx.Err() != nil {
		return Result{Outcome: "cancelled"}
	}
	ref := b.withAdapter(room)
	if resolved, err := b.resolveRoom(ctx, ref); err != nil {
		b.log.Warn("a schedule's room is unknown; running it in the room as given", "schedule", name, "room", ref.String(), "error", err)
	} else {
		ref = resolved
	}
	m := chat.Message{Ref: ref, User: chat.User{ID: as, Name: as}, Text: command, Time: time.Now()}
	done := make(chan Result, 1)
	if !b.dispatch(ctx, conversationOf(m), func(ctx context.Context, id string) {
		done <- Result{RequestID: id, Outcome: b.process(ctx, m, command, id, nil, name, false)}
	}) {
		return Result{Outcome: "cancelled"}
	}
	return <-done
}

// listSchedules answers the built-in schedules command.
func (b *Bot) listSchedules(ctx context.Context) chat.Output {
	if b.o.Schedules == nil {
		return chat.Output{Text: "No schedules are configured."}
	}
	text, err := b.o.Schedules(ctx)
	if err != nil {
		b.log.Error("list schedules", "error", err)
		return chat.Output{Text: "⚠ I could not list the schedules; the bot's log says why.", Status: "danger"}
	}
	return chat.Output{Title: "Schedules", Text: text}
}
