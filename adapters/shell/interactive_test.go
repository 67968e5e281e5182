package shell

import (
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
)

const guard = 5 * time.Second

// console runs the adapter in interactive mode on pipes, as a terminal would.
type console struct {
	a      *Adapter
	in     *io.PipeWriter
	msgs   chan chat.Message
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	screen strings.Builder // everything shown, without escape sequences
	shown  chan struct{}   // has a token when screen grew
}

var escapes = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|[\r\x08]`)

func startConsole(t *testing.T, o Options) *console {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	o.In, o.Out, o.Interactive = inR, outW, true
	c := &console{
		a:     New(o),
		in:    inW,
		msgs:  make(chan chat.Message, 100),
		done:  make(chan error, 1),
		shown: make(chan struct{}, 1),
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 64<<10)
		for {
			n, err := outR.Read(buf)
			c.mu.Lock()
			c.screen.WriteString(escapes.ReplaceAllString(string(buf[:n]), ""))
			c.mu.Unlock()
			select {
			case c.shown <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		c.done <- c.a.Run(ctx, chat.HandlerFunc(func(_ context.Context, m chat.Message) { c.msgs <- m }))
	}()
	t.Cleanup(func() {
		cancel()
		c.wait(t)
		inW.Close()
		outR.Close()
		<-read
	})
	return c
}

func (c *console) typeIn(t *testing.T, keys string) {
	t.Helper()
	if _, err := io.WriteString(c.in, keys); err != nil {
		t.Fatalf("typing %q: %v", keys, err)
	}
}

func (c *console) next(t *testing.T) chat.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(guard):
		t.Fatal("no message reached the handler")
		return chat.Message{}
	}
}

// waitShown waits until the screen shows s.
func (c *console) waitShown(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(guard)
	for {
		c.mu.Lock()
		screen := c.screen.String()
		c.mu.Unlock()
		if strings.Contains(screen, s) {
			return
		}
		select {
		case <-c.shown:
		case <-timeout:
			t.Fatalf("the screen never showed %q; it shows:\n%s", s, screen)
		}
	}
}

// wait waits for Run to return; it may be called again.
func (c *console) wait(t *testing.T) {
	t.Helper()
	select {
	case err, ok := <-c.done:
		if ok {
			close(c.done)
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		}
	case <-time.After(guard):
		t.Fatal("Run did not return")
	}
}

func TestInteractiveShowsThePromptOfTheRoomUserAndThread(t *testing.T) {
	c := startConsole(t, Options{})
	c.waitShown(t, "/help lists the console commands")
	c.waitShown(t, "general you> ")
	c.typeIn(t, "/room ops\n")
	c.waitShown(t, "ops you> ")
	c.typeIn(t, "/user alice\n/thread m7\n")
	c.waitShown(t, "ops ↳ m7 alice> ")
	c.typeIn(t, "/dm\n")
	c.waitShown(t, "@alice alice> ")
}

func TestInteractiveCustomPrompt(t *testing.T) {
	c := startConsole(t, Options{Prompt: func(room, user string) string { return "<" + user + "@" + room + "> " }})
	c.waitShown(t, "<you@general> ")
}

func TestInteractiveCtrlCClearsTheLine(t *testing.T) {
	c := startConsole(t, Options{})
	c.typeIn(t, "chima deploy everything\x03chima status\n")
	if m := c.next(t); m.Text != "chima status" {
		t.Errorf("handler got %q, want %q", m.Text, "chima status")
	}
}

func TestInteractiveKeepsHistory(t *testing.T) {
	c := startConsole(t, Options{})
	c.typeIn(t, "chima status\n")
	c.next(t)
	c.typeIn(t, "\x1b[A\n") // up arrow, enter
	if m := c.next(t); m.Text != "chima status" || m.Ref.MessageID != "m2" {
		t.Errorf("handler got %q (%s), want the previous line again as m2", m.Text, m.Ref.MessageID)
	}
}

func TestInteractiveEditsTheLine(t *testing.T) {
	c := startConsole(t, Options{})
	c.typeIn(t, "chima statsu\x7f\x7fus\n") // two backspaces
	if m := c.next(t); m.Text != "chima status" {
		t.Errorf("handler got %q, want %q", m.Text, "chima status")
	}
}

func TestInteractiveCtrlDEndsRun(t *testing.T) {
	c := startConsole(t, Options{})
	c.typeIn(t, "hello\n")
	c.next(t)
	c.typeIn(t, "\x04")
	c.wait(t)
}

func TestInteractiveQuitEndsRun(t *testing.T) {
	c := startConsole(t, Options{})
	c.typeIn(t, "/quit\n")
	c.wait(t)
}

func TestInteractiveEndOfInputEndsRun(t *testing.T) {
	c := startConsole(t, Options{})
	c.typeIn(t, "last words")
	c.in.Close()
	if m := c.next(t); m.Text != "last words" {
		t.Errorf("handler got %q, want the unfinished line", m.Text)
	}
	c.wait(t)
}

func TestInteractiveCancelWithAHalfTypedLine(t *testing.T) {
	c := startConsole(t, Options{})
	c.typeIn(t, "chima dep")
	c.waitShown(t, "general you> chima dep")
	c.cancel()
	c.wait(t)
	select {
	case m := <-c.msgs:
		t.Errorf("the half-typed line reached the handler: %q", m.Text)
	default:
	}
}

func TestInteractivePostsShowAboveThePrompt(t *testing.T) {
	c := startConsole(t, Options{})
	c.typeIn(t, "chima dep")
	c.waitShown(t, "general you> chima dep")
	ctx := context.Background()
	ref, err := c.a.Send(ctx, chat.MessageRef{Room: "general", ThreadID: "m1"}, chat.Output{Title: "Deploying", Text: "project-x"})
	if err != nil {
		t.Fatal(err)
	}
	c.waitShown(t, "[general ↳ m1] chima: Deploying\n  project-x\ngeneral you> chima dep")
	if err := c.a.Update(ctx, ref, chat.Text("deployed")); err != nil {
		t.Fatal(err)
	}
	c.waitShown(t, "[general ↳ m1] chima (edit b1): deployed\ngeneral you> chima dep")
	c.typeIn(t, "loy\n")
	if m := c.next(t); m.Text != "chima deploy" {
		t.Errorf("handler got %q, want the line typed around the posts", m.Text)
	}
}

// shownCount waits until the screen shows s n times, and fails if it shows it
// more often.
func (c *console) shownCount(t *testing.T, s string, n int) {
	t.Helper()
	timeout := time.After(guard)
	for {
		c.mu.Lock()
		got := strings.Count(c.screen.String(), s)
		screen := c.screen.String()
		c.mu.Unlock()
		if got > n {
			t.Fatalf("the screen shows %q %d times, want %d:\n%s", s, got, n, screen)
		}
		if got == n {
			return
		}
		select {
		case <-c.shown:
		case <-timeout:
			t.Fatalf("the screen shows %q %d times, want %d:\n%s", s, got, n, screen)
		}
	}
}

func TestInteractiveCtrlCSaysHowToQuitAndASecondOneEndsRun(t *testing.T) {
	c := startConsole(t, Options{QuitWindow: time.Hour})
	c.typeIn(t, "chima deploy everything\x03")
	c.shownCount(t, quitHint, 1)
	// Still reading: a line after one Ctrl-C is handled, and starts over.
	c.typeIn(t, "chima status\n")
	if m := c.next(t); m.Text != "chima status" {
		t.Errorf("handler got %q, want %q", m.Text, "chima status")
	}
	c.typeIn(t, "\x03")
	c.shownCount(t, quitHint, 2)
	c.typeIn(t, "\x03")
	c.wait(t)
	c.shownCount(t, quitHint, 2)
}

// While a line is handled readline does not read the terminal, which then
// turns Ctrl-C into SIGINT; the CLI hands that to Interrupt. It counts as the
// key does, together with it.
func TestCtrlCThatArrivesAsSIGINTCountsAsTheKeyDoes(t *testing.T) {
	c := startConsole(t, Options{QuitWindow: time.Hour})
	c.a.Interrupt()
	c.shownCount(t, quitHint, 1)
	c.typeIn(t, "chima status\n")
	if m := c.next(t); m.Text != "chima status" {
		t.Errorf("handler got %q, want %q: one Ctrl-C must not quit", m.Text, "chima status")
	}
	c.typeIn(t, "\x03") // the key, after a line: the count started over
	c.shownCount(t, quitHint, 2)
	c.a.Interrupt() // then SIGINT: the second Ctrl-C
	c.wait(t)
}

func TestInteractiveCtrlCsFurtherApartThanTheQuitWindowDoNotQuit(t *testing.T) {
	c := startConsole(t, Options{QuitWindow: time.Nanosecond})
	c.typeIn(t, "\x03\x03\x03")
	c.shownCount(t, quitHint, 3)
	c.typeIn(t, "chima status\n")
	if m := c.next(t); m.Text != "chima status" {
		t.Errorf("handler got %q, want %q", m.Text, "chima status")
	}
}
