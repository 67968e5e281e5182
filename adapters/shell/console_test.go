package shell

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// msg is a message the console should deliver, in short.
func msg(room, id, thread, user, text string, direct bool) chat.Message {
	return chat.Message{
		Ref:    chat.MessageRef{Adapter: "shell", Room: room, MessageID: id, ThreadID: thread},
		User:   chat.User{ID: user, Name: user},
		Text:   text,
		Direct: direct,
	}
}

func TestConsoleCommands(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		input   []string
		want    []chat.Message
		wantOut string
	}{
		{
			name:  "a line goes to the starting room as the starting user",
			input: []string{"chima deploy app"},
			want:  []chat.Message{msg("general", "m1", "", "you", "chima deploy app", false)},
		},
		{
			name:  "options set the starting room and user",
			opts:  Options{Room: "ops", User: "alice"},
			input: []string{"hi"},
			want:  []chat.Message{msg("ops", "m1", "", "alice", "hi", false)},
		},
		{
			name:  "message ids count the delivered lines",
			input: []string{"one", "", "   ", "two"},
			want: []chat.Message{
				msg("general", "m1", "", "you", "one", false),
				msg("general", "m2", "", "you", "two", false),
			},
		},
		{
			name:  "/room switches room and leaves the thread",
			input: []string{"/thread m1", "/room deploys", "hi"},
			want:  []chat.Message{msg("deploys", "m1", "", "you", "hi", false)},
		},
		{
			name:  "/user switches user",
			input: []string{"/user alice", "hi", "/USER bob", "hey"},
			want: []chat.Message{
				msg("general", "m1", "", "alice", "hi", false),
				msg("general", "m2", "", "bob", "hey", false),
			},
		},
		{
			name:  "/dm toggles direct messages in the user's own conversation",
			input: []string{"/dm", "status", "/user alice", "status", "/dm", "back"},
			want: []chat.Message{
				msg("@you", "m1", "", "you", "status", true),
				msg("@alice", "m2", "", "alice", "status", true),
				msg("general", "m3", "", "alice", "back", false),
			},
		},
		{
			name:  "/room leaves direct messages",
			input: []string{"/dm", "/room ops", "hi"},
			want:  []chat.Message{msg("ops", "m1", "", "you", "hi", false)},
		},
		{
			name:  "/thread posts in a thread and /thread alone leaves it",
			input: []string{"root", "/thread m1", "in it", "/thread", "out"},
			want: []chat.Message{
				msg("general", "m1", "", "you", "root", false),
				msg("general", "m2", "m1", "you", "in it", false),
				msg("general", "m3", "", "you", "out", false),
			},
		},
		{
			name:  "// sends a line that starts with a slash",
			input: []string{"//deploy now"},
			want:  []chat.Message{msg("general", "m1", "", "you", "/deploy now", false)},
		},
		{
			name:    "/help lists the commands and sends nothing",
			input:   []string{"/help"},
			wantOut: "* " + strings.ReplaceAll(help, "\n", "\n* ") + "\n",
		},
		{
			name:    "an unknown command is reported, not sent",
			input:   []string{"/deploy app"},
			wantOut: "* unknown console command /deploy: /help lists them; start a line with // to send it to the bot\n",
		},
		{
			name:  "commands with wrong arguments show their usage",
			input: []string{"/room", "/user a b", "/dm x", "/thread a b", "hi"},
			wantOut: "* usage: /room NAME\n* usage: /user NAME\n* usage: /dm\n* usage: /thread [ID]\n" +
				"[general] chima: hi\n",
			want: []chat.Message{msg("general", "m1", "", "you", "hi", false)},
		},
		{
			name:    "the bot's own user is never delivered",
			opts:    Options{BotName: "robot"},
			input:   []string{"/user robot", "hello me", "/user you", "hello"},
			wantOut: "* robot is the bot's own user: a service never delivers the bot's own messages to it. /user NAME switches user.\n[general] robot: hello\n",
			want:    []chat.Message{msg("general", "m1", "", "you", "hello", false)},
		},
		{
			name:  "/quit ends the session",
			input: []string{"before", "/quit", "after"},
			want:  []chat.Message{msg("general", "m1", "", "you", "before", false)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			o := tc.opts
			o.In = strings.NewReader(strings.Join(tc.input, "\n") + "\n")
			o.Out = &out
			a := New(o)
			var got []chat.Message
			h := chat.HandlerFunc(func(ctx context.Context, m chat.Message) {
				if m.Time.IsZero() {
					t.Errorf("message %q has no time", m.Text)
				}
				m.Time = time.Time{}
				got = append(got, m)
				// Echo the messages of the usage case, to show replies and
				// notices interleave in order.
				if tc.wantOut != "" {
					if _, err := a.Send(ctx, m.Ref, chat.Output{Text: m.Text}); err != nil {
						t.Error(err)
					}
				}
			})
			if err := a.Run(context.Background(), h); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("delivered %d messages:\n%+v\nwant %d:\n%+v", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("message %d:\n got %+v\nwant %+v", i, got[i], tc.want[i])
				}
			}
			if tc.wantOut != "" && out.String() != tc.wantOut {
				t.Errorf("console shows:\n%s\nwant:\n%s", out.String(), tc.wantOut)
			}
		})
	}
}

func TestSendAndUpdate(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	a := New(Options{In: strings.NewReader(""), Out: &out})

	r1, err := a.Send(ctx, chat.MessageRef{Adapter: "shell", Room: "general"}, chat.Text("working"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := a.Send(ctx, chat.MessageRef{Adapter: "shell", Room: "general", ThreadID: "m3"}, chat.Text("step 1"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (chat.MessageRef{Adapter: "shell", Room: "general", MessageID: "b2", ThreadID: "m3"}); r2 != want {
		t.Errorf("Send returned %+v, want %+v", r2, want)
	}
	if err := a.Update(ctx, r2, chat.Text("step 2")); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, r1, chat.Text("done")); err != nil {
		t.Fatal(err)
	}
	want := "[general] chima: working\n" +
		"[general ↳ m3] chima: step 1\n" +
		"[general ↳ m3] chima (edit b2): step 2\n" +
		"[general] chima (edit b1): done\n"
	if out.String() != want {
		t.Errorf("console shows:\n%s\nwant:\n%s", out.String(), want)
	}

	for _, ref := range []chat.MessageRef{
		{Room: "general", MessageID: "b3"},
		{Room: "general", MessageID: "b0"},
		{Room: "general", MessageID: "m1"},
		{Room: "general"},
		{Room: "random", MessageID: "b1"},
	} {
		if err := a.Update(ctx, ref, chat.Text("x")); !errors.Is(err, ErrUnknownMessage) {
			t.Errorf("Update(%+v) returned %v, want ErrUnknownMessage", ref, err)
		}
	}
	if _, err := a.Send(ctx, chat.MessageRef{}, chat.Text("x")); !errors.Is(err, chat.ErrUnknownRoom) {
		t.Errorf("Send to no room returned %v, want chat.ErrUnknownRoom", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Send(cancelled, r1, chat.Text("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Send with a cancelled ctx returned %v", err)
	}
	if got := chat.CapabilitiesOf(a); got != (chat.Capabilities{Threads: true, Edits: true}) {
		t.Errorf("capabilities %+v, want threads and edits", got)
	}
	if a.Name() != "shell" || a.Self() != (chat.User{ID: "chima", Name: "chima"}) {
		t.Errorf("Name() = %q, Self() = %+v", a.Name(), a.Self())
	}
}

// blockedReader blocks every Read until it is released, like a terminal
// nobody types into. It is not an io.Closer.
type blockedReader struct {
	reading chan struct{} // closed by the first Read
	once    *sync.Once
	release chan struct{}
}

func (r blockedReader) Read([]byte) (int, error) {
	r.once.Do(func() { close(r.reading) })
	<-r.release
	return 0, io.EOF
}

func TestRunReturnsWhenCancelledWhileInputBlocks(t *testing.T) {
	for _, interactive := range []bool{false, true} {
		in := blockedReader{reading: make(chan struct{}), once: new(sync.Once), release: make(chan struct{})}
		// The goroutine blocked on In ends when In returns.
		t.Cleanup(func() { close(in.release) })
		a := New(Options{In: in, Out: io.Discard, Interactive: interactive})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx, chat.HandlerFunc(func(context.Context, chat.Message) {})) }()
		select {
		case <-in.reading:
		case <-time.After(5 * time.Second):
			t.Fatal("Run never read its input")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("interactive %v: Run returned %v", interactive, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("interactive %v: Run did not return after ctx was cancelled", interactive)
		}
	}
}

func TestRunClosesItsInput(t *testing.T) {
	inR, inW := io.Pipe()
	a := New(Options{In: inR, Out: io.Discard})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx, chat.HandlerFunc(func(context.Context, chat.Message) {})); err != nil {
		t.Fatal(err)
	}
	if _, err := inW.Write([]byte("late\n")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("writing to the input after Run returned %v, want io.ErrClosedPipe", err)
	}
	if err := a.Run(context.Background(), nil); err == nil {
		t.Error("a second Run returned no error")
	}
}

func TestRunReportsAnInputError(t *testing.T) {
	broken := errors.New("disk on fire")
	a := New(Options{In: io.MultiReader(strings.NewReader("hi\n"), errReader{broken}), Out: io.Discard})
	var got []string
	err := a.Run(context.Background(), chat.HandlerFunc(func(_ context.Context, m chat.Message) { got = append(got, m.Text) }))
	if !errors.Is(err, broken) {
		t.Errorf("Run returned %v, want %v", err, broken)
	}
	if len(got) != 1 || got[0] != "hi" {
		t.Errorf("delivered %q before the error, want [hi]", got)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
