package bot

import (
	"sync"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// DefaultTurnLimit is Options.TurnLimit's default.
const DefaultTurnLimit = 10 * time.Second

// conversation is whose commands are handled in order: one person in one room
// of one adapter. A thread is part of its room: "deploy x" then "deploy y"
// typed in two threads of one room are still one person's sequence.
type conversation struct{ adapter, room, user string }

func conversationOf(m chat.Message) conversation {
	return conversation{adapter: m.Ref.Adapter, room: m.Ref.Room, user: m.User.ID}
}

// turns keeps the commands of each conversation in the order they arrived.
//
// Every command takes a turn when it arrives and starts only once the turn
// before it, in its conversation, has ended. A turn ends when its command
// ends, or when the command has run for the turn limit, whichever comes
// first. So for commands that answer within the limit (a deploy command only
// records the deployment and queues its job), "handled in order" is strict:
// each starts after the one before it ended, and what they queue is queued in
// the order they were typed. A command that streams for longer than the limit
// keeps running, but gives up its turn, so that a person is never stuck
// behind their own slow command: the next one starts while it goes on.
//
// Commands of other people, or of the same person in other rooms, never wait
// for each other.
type turns struct {
	mu   sync.Mutex
	last map[conversation]*turn // the newest turn of each conversation
}

// turn is one command's place in its conversation.
type turn struct {
	prev <-chan struct{} // closed when the turn before ends; nil if none
	done chan struct{}   // closed when this turn ends
	once sync.Once
}

// take queues a turn for c behind the turns already queued there.
func (ts *turns) take(c conversation) *turn {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.last == nil {
		ts.last = map[conversation]*turn{}
	}
	t := &turn{done: make(chan struct{})}
	if prev := ts.last[c]; prev != nil {
		t.prev = prev.done
	}
	ts.last[c] = t
	return t
}

// wait blocks until the turn before t has ended.
func (t *turn) wait() {
	if t.prev != nil {
		<-t.prev
	}
}

// end ends t, letting the next command of its conversation start. It may be
// called more than once.
func (t *turn) end() { t.once.Do(func() { close(t.done) }) }

// finish ends t once its command is over, and forgets the conversation when
// no command of it is queued anymore.
func (ts *turns) finish(c conversation, t *turn) {
	t.end()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.last[c] == t {
		delete(ts.last, c)
	}
}
