package chattest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// Broken adapters, each with one fault the suite must catch.
type (
	// impostor claims an identity that is not the one its service filters,
	// so the bot's own messages come back.
	impostor struct{ *chattest.Memory }
	// threadDropper claims threads but posts every reply to the room.
	threadDropper struct{ *chattest.Memory }
	// buttonDropper renders no buttons and does not show them as text.
	buttonDropper struct{ *chattest.Memory }
	// stuttering delivers the 50th message it receives twice. (A lossy
	// adapter fails the same sub-test, only after the suite's guard.)
	stuttering struct{ *chattest.Memory }
	// valueDropper loses the value of a clicked button.
	valueDropper struct{ *chattest.Memory }
	// retrySwallower turns the service's rate limit into a plain error, so
	// the core cannot wait and retry.
	retrySwallower struct{ *chattest.Memory }
	// plainUnknownRoom reports an unknown room with an error of its own.
	plainUnknownRoom struct{ *chattest.Memory }
	// byteTruncator cuts texts at MaxText bytes, not characters.
	byteTruncator struct{ *chattest.Memory }
	// directDropper delivers direct messages as room messages.
	directDropper struct{ *chattest.Memory }
	// mentionDropper does not report native mentions.
	mentionDropper struct{ *chattest.Memory }
	// nameAsID answers a room lookup with the name as the id.
	nameAsID struct{ *chattest.Memory }
	// plainUnknownUser reports an unknown user with an error of its own.
	plainUnknownUser struct{ *chattest.Memory }
	// ephemeralBroadcaster posts ephemeral messages for everyone to see.
	ephemeralBroadcaster struct{ *chattest.Memory }
	// shortDropper renders every field as a long one, which only the golden
	// renders show.
	shortDropper struct{ *chattest.Memory }
)

func (impostor) Self() chat.User { return chat.User{ID: "impostor"} }

func (a threadDropper) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	to.ThreadID = ""
	return a.Memory.Send(ctx, to, out)
}

func (a buttonDropper) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	out.Buttons = nil
	return a.Memory.Send(ctx, to, out)
}

func (a stuttering) Run(ctx context.Context, h chat.Handler) error {
	var n atomic.Int64
	return a.Memory.Run(ctx, chat.Handlers{
		Message: func(ctx context.Context, m chat.Message) {
			h.HandleMessage(ctx, m)
			if n.Add(1) == 50 {
				h.HandleMessage(ctx, m)
			}
		},
		Interaction: h.HandleInteraction,
	})
}

func (a valueDropper) Run(ctx context.Context, h chat.Handler) error {
	return a.Memory.Run(ctx, chat.Handlers{
		Message: h.HandleMessage,
		Interaction: func(ctx context.Context, in chat.Interaction) {
			in.Value = ""
			h.HandleInteraction(ctx, in)
		},
	})
}

func (a retrySwallower) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	ref, err := a.Memory.Send(ctx, to, out)
	if err != nil {
		return ref, fmt.Errorf("post failed: %s", err)
	}
	return ref, nil
}

func (a plainUnknownRoom) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	ref, err := a.Memory.Send(ctx, to, out)
	if errors.Is(err, chat.ErrUnknownRoom) {
		return ref, fmt.Errorf("channel_not_found: %s", err)
	}
	return ref, err
}

func (a byteTruncator) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if n := a.MaxTextLen(); len(out.Text) > n {
		out.Text = strings.ToValidUTF8(out.Text[:n], "")
	}
	return a.Memory.Send(ctx, to, out)
}

func (a directDropper) Run(ctx context.Context, h chat.Handler) error {
	return a.Memory.Run(ctx, chat.Handlers{
		Message: func(ctx context.Context, m chat.Message) {
			m.Direct = false
			h.HandleMessage(ctx, m)
		},
		Interaction: h.HandleInteraction,
	})
}

func (a mentionDropper) Run(ctx context.Context, h chat.Handler) error {
	return a.Memory.Run(ctx, chat.Handlers{
		Message: func(ctx context.Context, m chat.Message) {
			m.Mentioned = false
			h.HandleMessage(ctx, m)
		},
		Interaction: h.HandleInteraction,
	})
}

func (a nameAsID) LookupRoom(ctx context.Context, nameOrID string) (chat.Room, error) {
	r, err := a.Memory.LookupRoom(ctx, nameOrID)
	r.ID = r.Name
	return r, err
}

func (a plainUnknownUser) LookupUser(ctx context.Context, nameOrID string) (chat.User, error) {
	u, err := a.Memory.LookupUser(ctx, nameOrID)
	if errors.Is(err, chat.ErrUnknownUser) {
		return u, errors.New("user_not_found")
	}
	return u, err
}

func (a ephemeralBroadcaster) SendEphemeral(ctx context.Context, to chat.MessageRef, userID string, out chat.Output) error {
	if err := a.Memory.SendEphemeral(ctx, to, userID, out); err != nil {
		return err
	}
	_, err := a.Memory.Send(ctx, to, out)
	return err
}

func (a shortDropper) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	out.Fields = slices.Clone(out.Fields)
	for i := range out.Fields {
		out.Fields[i].Short = false
	}
	return a.Memory.Send(ctx, to, out)
}

// brokenAdapters builds each broken adapter around m.
var brokenAdapters = map[string]func(m *chattest.Memory) chat.Adapter{
	"impostor":             func(m *chattest.Memory) chat.Adapter { return impostor{m} },
	"threadDropper":        func(m *chattest.Memory) chat.Adapter { return threadDropper{m} },
	"buttonDropper":        func(m *chattest.Memory) chat.Adapter { return buttonDropper{m} },
	"stuttering":           func(m *chattest.Memory) chat.Adapter { return stuttering{m} },
	"valueDropper":         func(m *chattest.Memory) chat.Adapter { return valueDropper{m} },
	"retrySwallower":       func(m *chattest.Memory) chat.Adapter { return retrySwallower{m} },
	"plainUnknownRoom":     func(m *chattest.Memory) chat.Adapter { return plainUnknownRoom{m} },
	"byteTruncator":        func(m *chattest.Memory) chat.Adapter { return byteTruncator{m} },
	"directDropper":        func(m *chattest.Memory) chat.Adapter { return directDropper{m} },
	"mentionDropper":       func(m *chattest.Memory) chat.Adapter { return mentionDropper{m} },
	"nameAsID":             func(m *chattest.Memory) chat.Adapter { return nameAsID{m} },
	"plainUnknownUser":     func(m *chattest.Memory) chat.Adapter { return plainUnknownUser{m} },
	"ephemeralBroadcaster": func(m *chattest.Memory) chat.Adapter { return ephemeralBroadcaster{m} },
	"shortDropper":         func(m *chattest.Memory) chat.Adapter { return shortDropper{m} },
}

// TestBrokenAdapter runs the suite against the broken adapter named by
// $CHATTEST_BROKEN; TestConformanceCatchesBrokenAdapters runs it and expects
// it to fail.
func TestBrokenAdapter(t *testing.T) {
	kind := os.Getenv("CHATTEST_BROKEN")
	if kind == "" {
		t.Skip("run by TestConformanceCatchesBrokenAdapters")
	}
	if h, ok := brokenHarnesses[kind]; ok {
		chattest.RunConformance(t, h)
		return
	}
	wrap, ok := brokenAdapters[kind]
	if !ok {
		t.Fatalf("no broken adapter %q", kind)
	}
	chattest.RunConformance(t, newMemoryHarness(wrap))
}

func TestConformanceCatchesBrokenAdapters(t *testing.T) {
	if os.Getenv("CHATTEST_BROKEN") != "" {
		t.Skip("already in a broken run")
	}
	tests := []struct{ kind, failing string }{
		{"impostor", "does_not_deliver_the_bot's_own_messages_back"},
		{"threadDropper", "replies_in_a_thread_when_threads_are_supported_and_in_the_room_otherwise"},
		{"buttonDropper", "renders_title,_text,_fields,_code_and_buttons_so_every_piece_reaches_the_service"},
		{"stuttering", "handles_100_messages_in_a_burst_without_loss,_in_order_per_room_where_the_service_promises_order"},
		{"valueDropper", "hands_button_clicks_to_HandleInteraction_with_the_message,_user,_action_id_and_value"},
		{"retrySwallower", "returns_a_RetryAfterError_when_rate_limited_and_posts_once_after_it"},
		{"plainUnknownRoom", "refuses_a_room_the_service_does_not_have_with_ErrUnknownRoom"},
		{"byteTruncator", "sends_a_message_of_exactly_MaxText_characters_whole"},
		{"directDropper", "delivers_a_direct_message_with_Direct_set_and_replies_in_that_conversation"},
		{"mentionDropper", "delivers_a_native_mention_with_Mentioned_set_and_the_mention_removed_from_the_text"},
		{"nameAsID", "resolves_rooms_by_name,_#name_and_id_and_refuses_an_unknown_one_with_ErrUnknownRoom"},
		{"plainUnknownUser", "resolves_users_by_name,_@name_and_id_and_refuses_an_unknown_one_with_ErrUnknownUser"},
		{"ephemeralBroadcaster", "shows_an_ephemeral_message_to_one_user_without_posting_it"},
		{"shortDropper", "renders_the_golden_outputs_as_the_golden_files_say/fields"},
		{"quitsOnDrop", "reconnects_by_itself_after_the_connection_drops_and_delivers_what_is_said_then_once"},
		{"openRoute", "answers_401_to_an_unsigned_request_on_every_route_and_runs_nothing"},
		{"unorderedClaimsOrder", "posts_100_messages_in_a_burst_without_loss,_in_order_where_the_service_promises_order"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenAdapter$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "CHATTEST_BROKEN="+tc.kind)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed the broken adapter:\n%s", out)
			}
			if want := "--- FAIL: TestBrokenAdapter/" + tc.failing; !strings.Contains(string(out), want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		})
	}
}
