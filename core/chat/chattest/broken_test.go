package chattest_test

import (
	"context"
	"os"
	"os/exec"
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
	return a.Memory.Run(ctx, chat.HandlerFunc(func(ctx context.Context, m chat.Message) {
		h.HandleMessage(ctx, m)
		if n.Add(1) == 50 {
			h.HandleMessage(ctx, m)
		}
	}))
}

// TestBrokenAdapter runs the suite against the broken adapter named by
// $CHATTEST_BROKEN; TestConformanceCatchesBrokenAdapters runs it and expects
// it to fail.
func TestBrokenAdapter(t *testing.T) {
	kind := os.Getenv("CHATTEST_BROKEN")
	if kind == "" {
		t.Skip("run by TestConformanceCatchesBrokenAdapters")
	}
	chattest.RunConformance(t, chattest.Harness{New: func(*testing.T) (chat.Adapter, chattest.Peer) {
		m := chattest.NewMemory("memory")
		adapters := map[string]chat.Adapter{
			"impostor":      impostor{m},
			"threadDropper": threadDropper{m},
			"buttonDropper": buttonDropper{m},
			"stuttering":    stuttering{m},
		}
		return adapters[kind], memoryPeer{m}
	}})
}

func TestConformanceCatchesBrokenAdapters(t *testing.T) {
	if os.Getenv("CHATTEST_BROKEN") != "" {
		t.Skip("already in a broken run")
	}
	tests := []struct{ kind, failing string }{
		{"impostor", "does_not_deliver_the_bot's_own_messages_back"},
		{"threadDropper", "replies_in_a_thread_when_threads_are_supported_and_in_the_room_otherwise"},
		{"buttonDropper", "renders_title,_text,_fields,_code_and_buttons_so_every_piece_reaches_the_service"},
		{"stuttering", "handles_100_messages_in_a_burst_without_loss_and_in_order_per_room"},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
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
