package shell_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/adapters/shell"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
)

// TestMain fails the run when a goroutine of the adapter or of readline
// outlives the tests: every Run must have returned and cleaned up.
func TestMain(m *testing.M) {
	os.Exit(chattest.RunWithoutLeaks(m, "chimaops/chima/adapters/shell.", "github.com/chzyer/readline"))
}

func TestConformance(t *testing.T) {
	t.Run("plain input", func(t *testing.T) {
		chattest.RunConformance(t, pipeHarness(false))
	})
	t.Run("interactive input", func(t *testing.T) {
		chattest.RunConformance(t, pipeHarness(true))
	})
}

// pipeHarness runs the adapter against a pipePeer: a person at a console.
func pipeHarness(interactive bool) chattest.Harness {
	h := chattest.Harness{
		// A console has every room a person can type; this one they cannot.
		UnknownRoom: "no such room",
	}
	if !interactive {
		// Interactive output carries readline's redrawing; the plain
		// console's bytes are the render.
		h.Golden = "testdata/golden"
	}
	h.New = func(t *testing.T) (chat.Adapter, chattest.Peer) {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		a := shell.New(shell.Options{In: inR, Out: outW, Interactive: interactive})
		p := &pipePeer{
			in:    inW,
			bot:   a.Self().Name,
			room:  "general",
			user:  "you",
			posts: make(chan chattest.PeerMessage, 1024),
			raw:   map[string][]byte{},
			edits: make(chan chattest.PeerMessage, 1024),
			done:  make(chan struct{}),
		}
		go p.read(outR)
		t.Cleanup(func() {
			inW.Close()
			outR.Close()
			<-p.done
		})
		return a, p
	}
	return h
}

// pipePeer is a person typing into the console's input pipe and reading its
// output pipe. Each write of the adapter to its output arrives as one read of
// the pipe (io.Pipe copies a write straight into reads, one write at a time),
// so one read holds one post, one notice or one piece of readline's redrawing.
type pipePeer struct {
	in  *io.PipeWriter
	bot string

	// The console's state as the peer set it; only Say and SayDirect touch
	// it.
	room, user, thread string
	dm                 bool

	posts, edits chan chattest.PeerMessage
	done         chan struct{}

	mu  sync.Mutex
	raw map[string][]byte // the console's bytes of each post, by id
}

// Say types the console commands that put the console in room, as user, in
// thread, then the text.
func (p *pipePeer) Say(t *testing.T, room, user, thread, text string) {
	t.Helper()
	var b strings.Builder
	if p.dm {
		b.WriteString("/dm\n")
		p.dm, p.thread = false, ""
	}
	if room != p.room {
		fmt.Fprintf(&b, "/room %s\n", room)
		p.room, p.thread = room, ""
	}
	p.switchUser(&b, user)
	if thread != p.thread {
		fmt.Fprintf(&b, "/thread %s\n", thread)
		p.thread = thread
	}
	p.typeText(t, &b, text)
}

// SayDirect types the console commands that make user write to the bot
// directly (/dm), then the text.
func (p *pipePeer) SayDirect(t *testing.T, user, text string) {
	t.Helper()
	var b strings.Builder
	p.switchUser(&b, user)
	if !p.dm {
		b.WriteString("/dm\n")
		p.dm, p.thread = true, ""
	}
	p.typeText(t, &b, text)
}

// DirectRoom is the console's direct conversation with user, "@user".
func (p *pipePeer) DirectRoom(_ *testing.T, user string) string { return "@" + user }

func (p *pipePeer) switchUser(b *strings.Builder, user string) {
	if user != p.user {
		fmt.Fprintf(b, "/user %s\n", user)
		p.user = user
		if p.dm {
			p.thread = "" // the console leaves the thread with the conversation
		}
	}
}

func (p *pipePeer) typeText(t *testing.T, b *strings.Builder, text string) {
	t.Helper()
	if strings.HasPrefix(text, "/") {
		text = "/" + text
	}
	b.WriteString(text + "\n")
	if _, err := io.WriteString(p.in, b.String()); err != nil {
		t.Fatalf("typing %q: %v", b.String(), err)
	}
}

// Raw returns the bytes the console wrote for the post msg.
func (p *pipePeer) Raw(t *testing.T, msg chattest.PeerMessage) []byte {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	b, ok := p.raw[msg.ID]
	if !ok {
		t.Fatalf("the console wrote no post %q", msg.ID)
	}
	return b
}

func (p *pipePeer) Said(t *testing.T) chattest.PeerMessage {
	t.Helper()
	return wait(t, p.posts, "post")
}

func (p *pipePeer) Edited(t *testing.T) chattest.PeerMessage {
	t.Helper()
	return wait(t, p.edits, "edit")
}

func wait(t *testing.T, c chan chattest.PeerMessage, what string) chattest.PeerMessage {
	t.Helper()
	select {
	case m := <-c:
		return m
	case <-time.After(chattest.Guard):
		t.Fatalf("no %s of the bot on the console within %s", what, chattest.Guard)
		return chattest.PeerMessage{}
	}
}

var (
	ansiSeq = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|[\r\x08]`)
	header  = regexp.MustCompile(`^\[([^\]]+?)(?: ↳ ([^\]]+))?\] (\S+)(?: \(edit (\S+)\))?:(?: (.*))?$`)
)

// read parses the console's output until it is closed.
func (p *pipePeer) read(out io.Reader) {
	defer close(p.done)
	buf := make([]byte, 1<<20)
	n := 0 // bot posts seen: the console numbers them b1, b2, …
	for {
		k, err := out.Read(buf)
		if m, edit, ok := parsePost(string(buf[:k]), p.bot); ok {
			if edit {
				p.edits <- m
			} else {
				n++
				m.ID = fmt.Sprintf("b%d", n)
				p.mu.Lock()
				p.raw[m.ID] = bytes.Clone(buf[:k])
				p.mu.Unlock()
				p.posts <- m
			}
		}
		if err != nil {
			return
		}
	}
}

// parsePost parses one write of the console as a bot post or edit.
func parsePost(s, bot string) (m chattest.PeerMessage, edit bool, ok bool) {
	s = ansiSeq.ReplaceAllString(s, "")
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	h := header.FindStringSubmatch(lines[0])
	if h == nil || h[3] != bot {
		return m, false, false
	}
	text := []string{h[5]}
	for _, l := range lines[1:] {
		text = append(text, strings.TrimSpace(l))
	}
	m = chattest.PeerMessage{Room: h[1], Thread: h[2], ID: h[4], Text: strings.TrimSpace(strings.Join(text, "\n"))}
	return m, h[4] != "", true
}

// RoomID returns name: console rooms are their names.
func (p *pipePeer) RoomID(_ *testing.T, name string) string { return name }

// UserID returns name: console users are their names.
func (p *pipePeer) UserID(_ *testing.T, name string) string { return name }
