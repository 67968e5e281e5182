package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/chimaops/chima/core/chat"
)

// Name is the adapter's default name (Options.Name), and its type in
// config's adapters: entries.
const Name = "shell"

// Defaults of Options.Room and Options.User.
const (
	DefaultRoom = "general"
	DefaultUser = "you"
)

// ErrUnknownMessage is returned by Update for a reference to a message the
// adapter did not post.
var ErrUnknownMessage = errors.New("unknown message")

// Options configures the console.
type Options struct {
	// Name is the adapter's name in message refs (default "shell"): the
	// name of its entry in config's adapters:.
	Name string
	// In is what the person types (default os.Stdin). Run owns it: when Run
	// ends it closes In if In is an io.Closer other than os.Stdin.
	In io.Reader
	// Out shows the conversation (default os.Stdout).
	Out io.Writer
	// Room is the room the console starts in (default "general").
	Room string
	// User is the user id the console starts as (default "you").
	User string
	// BotName is the bot's name and user id (default "chima").
	BotName string
	// Interactive edits lines with readline: history in memory, a prompt,
	// completion of console commands, Ctrl-D to leave, and Ctrl-C as in
	// node's REPL: it clears the line and says how to quit, and a second
	// Ctrl-C within QuitWindow leaves. Leave it false for pipes and tests:
	// lines are then read plainly and no prompt is shown.
	Interactive bool
	// Prompt renders the interactive prompt for the current room and user
	// (default "room user> "). In a thread, room reads "general ↳ m3"; in
	// direct-message mode it is "@user".
	Prompt func(room, user string) string
	// QuitWindow is how soon after a Ctrl-C a second one leaves, in
	// interactive mode (default DefaultQuitWindow). A line entered in
	// between starts over.
	QuitWindow time.Duration
}

// DefaultQuitWindow is Options.QuitWindow's default.
const DefaultQuitWindow = 3 * time.Second

// quitHint is what the console says on a first Ctrl-C.
const quitHint = "(To quit, press Ctrl-C again, Ctrl-D, or type /quit)"

// Adapter is the local console adapter. It implements chat.Adapter,
// chat.Editor and chat.Threader; it renders no buttons, so the core shows
// them as commands to type. Send and Update are safe for concurrent use with
// each other and with Run.
type Adapter struct {
	opts Options
	self chat.User

	mu      sync.Mutex // serialises output and guards the fields below
	w       io.Writer  // Out, or readline's writer that redraws the prompt
	posts   []location // where bot post "b<i+1>" went
	running bool

	// Ctrl-C presses: keys read by readline and SIGINTs passed to
	// Interrupt both count.
	ctrlMu      sync.Mutex
	interrupted time.Time     // the last Ctrl-C not followed by a line
	quit        chan struct{} // closed by the second Ctrl-C within QuitWindow
	quitOnce    sync.Once

	// The console's state, touched only by Run's goroutine.
	lines  lineReader
	room   string
	user   string
	thread string
	dm     bool
	said   int // user messages delivered so far: ids "m1", "m2", …
}

type location struct{ room, thread string }

var (
	_ chat.Adapter  = (*Adapter)(nil)
	_ chat.Editor   = (*Adapter)(nil)
	_ chat.Threader = (*Adapter)(nil)
)

// New returns a console adapter; zero Options fields take their defaults.
func New(o Options) *Adapter {
	if o.In == nil {
		o.In = os.Stdin
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Name == "" {
		o.Name = Name
	}
	if o.Room == "" {
		o.Room = DefaultRoom
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.BotName == "" {
		o.BotName = "chima"
	}
	if o.Prompt == nil {
		o.Prompt = func(room, user string) string { return room + " " + user + "> " }
	}
	if o.QuitWindow <= 0 {
		o.QuitWindow = DefaultQuitWindow
	}
	return &Adapter{
		opts: o,
		self: chat.User{ID: o.BotName, Name: o.BotName},
		w:    o.Out,
		room: o.Room,
		user: o.User,
		quit: make(chan struct{}),
	}
}

// Interrupt is a Ctrl-C that reached the process as SIGINT rather than as a
// key: the terminal sends SIGINT whenever readline is not reading it (while a
// line is handled, before the console starts). It counts as the key does:
// the first says how to quit, a second within QuitWindow quits. The CLI
// calls it instead of stopping the bot while an interactive console runs;
// Run calls it for the key.
func (a *Adapter) Interrupt() {
	a.ctrlMu.Lock()
	now := time.Now()
	second := !a.interrupted.IsZero() && now.Sub(a.interrupted) < a.opts.QuitWindow
	a.interrupted = now
	a.ctrlMu.Unlock()
	if second {
		a.quitOnce.Do(func() { close(a.quit) })
		return
	}
	a.notice("%s", quitHint)
}

// lineEntered starts the count of Ctrl-Cs over.
func (a *Adapter) lineEntered() {
	a.ctrlMu.Lock()
	a.interrupted = time.Time{}
	a.ctrlMu.Unlock()
}

// Name returns Options.Name.
func (a *Adapter) Name() string { return a.opts.Name }

// Self returns the bot, named Options.BotName.
func (a *Adapter) Self() chat.User { return a.self }

// SupportsThreads reports true: a console line can be posted in a thread
// (/thread ID) and replies show which thread they are in.
func (a *Adapter) SupportsThreads() bool { return true }

// Run reads the console line by line and hands each message to h until ctx
// ends, the input ends (Ctrl-D, end of file), the person types /quit or, in
// interactive mode, presses Ctrl-C twice within Options.QuitWindow; then it
// returns nil. The bot stops when its adapters have, as on SIGTERM. Console
// commands (/help lists them) are handled here and never reach h. Run can be
// called once.
//
// Run returns promptly when ctx ends even while a read of In is blocked: In is
// read through a reader that Run can abandon at once, and Run then closes In
// (when it is an io.Closer other than os.Stdin) so the read ends too. A read
// of os.Stdin cannot be interrupted; it ends with the process.
func (a *Adapter) Run(ctx context.Context, h chat.Handler) error {
	a.mu.Lock()
	if a.running {
		a.mu.Unlock()
		return errors.New("shell: Run was already called")
	}
	a.running = true
	a.mu.Unlock()

	in := newCancelReader(a.opts.In)
	if a.opts.Interactive {
		el, err := newEditLines(in, a.opts.Out, isTerminal(a.opts.In), isTerminal(a.opts.Out), a.prompt())
		if err != nil {
			a.stopInput(in)
			return fmt.Errorf("shell: start line editing: %w", err)
		}
		a.lines = el
	} else {
		a.lines = newScanLines(in, a.opts.Out)
	}
	a.mu.Lock()
	a.w = a.lines.Writer()
	a.mu.Unlock()
	if a.opts.Interactive {
		a.notice("Chima shell: you are %s in %s. /help lists the console commands.", a.user, a.room)
	}

	// The reader waits for each line to be handled before it reads the next,
	// so that the next prompt shows the room, user and thread it switched to.
	lines := make(chan string)
	handled := make(chan struct{}, 1)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		for {
			line, err := a.lines.ReadLine()
			if errors.Is(err, errInterrupt) {
				a.Interrupt()
				continue
			}
			if err != nil {
				readErr <- err
				return
			}
			a.lineEntered()
			select {
			case lines <- line:
				select {
				case <-handled:
				case <-stop:
				}
			case <-stop: // Run has ended: keep reading until the input stops.
			}
		}
	}()

	var err error
	readerDone := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-a.quit:
			break loop
		case err = <-readErr:
			readerDone = true
			break loop
		case line := <-lines:
			if ctx.Err() != nil {
				break loop
			}
			if quit := a.handleLine(ctx, h, line); quit {
				break loop
			}
			handled <- struct{}{}
		}
	}

	close(stop)
	a.stopInput(in)
	if !readerDone {
		err = <-readErr // comes at once: its input now ends
	}
	a.mu.Lock()
	a.w = a.opts.Out
	a.mu.Unlock()
	a.lines.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("shell: read the console: %w", err)
	}
	return nil
}

// stopInput ends the reading of In: at once for the line reader, and for the
// goroutine blocked on In as soon as In is closed.
func (a *Adapter) stopInput(in *cancelReader) {
	in.Close()
	if c, ok := a.opts.In.(io.Closer); ok && a.opts.In != io.Reader(os.Stdin) {
		_ = c.Close()
	}
}

// handleLine handles one console line and reports whether the person quit.
func (a *Adapter) handleLine(ctx context.Context, h chat.Handler, line string) (quit bool) {
	text := strings.TrimSpace(line)
	switch {
	case text == "":
		return false
	case strings.HasPrefix(text, "//"):
		text = text[1:]
	case strings.HasPrefix(text, "/"):
		return a.command(text)
	}
	if a.user == a.self.ID {
		a.notice("%s is the bot's own user: a service never delivers the bot's own messages to it. /user NAME switches user.", a.user)
		return false
	}
	a.said++
	h.HandleMessage(ctx, chat.Message{
		Ref: chat.MessageRef{
			Adapter:   a.opts.Name,
			Room:      a.currentRoom(),
			MessageID: "m" + strconv.Itoa(a.said),
			ThreadID:  a.thread,
		},
		User:   chat.User{ID: a.user, Name: a.user},
		Text:   text,
		Direct: a.dm,
		Time:   time.Now(),
	})
	return false
}

const help = `console commands:
  /room NAME   post in room NAME (leaves the thread and direct messages)
  /user NAME   post as user NAME
  /dm          toggle direct messages to the bot (room "@user")
  /thread ID   post in the thread of message ID; /thread alone leaves it
  /help        show this list
  /quit        leave (Ctrl-D, or Ctrl-C twice, too)
  //text       send "/text" to the bot`

// command runs a console command and reports whether it was /quit.
func (a *Adapter) command(text string) (quit bool) {
	args := strings.Fields(text)
	name := strings.ToLower(args[0])
	args = args[1:]
	usage := func(u string) { a.notice("usage: %s", u) }
	switch name {
	case "/room":
		if len(args) != 1 {
			usage("/room NAME")
			return false
		}
		a.room, a.thread, a.dm = args[0], "", false
	case "/user":
		if len(args) != 1 {
			usage("/user NAME")
			return false
		}
		if a.dm {
			a.thread = "" // another user, another conversation
		}
		a.user = args[0]
	case "/dm":
		if len(args) != 0 {
			usage("/dm")
			return false
		}
		a.dm, a.thread = !a.dm, ""
	case "/thread":
		switch len(args) {
		case 0:
			a.thread = ""
		case 1:
			a.thread = args[0]
		default:
			usage("/thread [ID]")
			return false
		}
	case "/help":
		a.notice("%s", help)
		return false
	case "/quit", "/exit":
		return true
	default:
		a.notice("unknown console command %s: /help lists them; start a line with // to send it to the bot", name)
		return false
	}
	a.lines.SetPrompt(a.prompt())
	return false
}

// currentRoom is the room the next line is posted in: a direct-message
// conversation is a room of its own, "@user", as on chat services.
func (a *Adapter) currentRoom() string {
	if a.dm {
		return "@" + a.user
	}
	return a.room
}

func (a *Adapter) prompt() string {
	room := a.currentRoom()
	if a.thread != "" {
		room += " ↳ " + a.thread
	}
	return a.opts.Prompt(room, a.user)
}

// notice shows a line from the console itself, marked with "* ".
func (a *Adapter) notice(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	var b strings.Builder
	for l := range strings.SplitSeq(msg, "\n") {
		b.WriteString("* ")
		b.WriteString(l)
		b.WriteString("\n")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, _ = io.WriteString(a.w, b.String())
}

// Send shows out in to.Room (in thread to.ThreadID when set) and returns its
// reference; bot posts are numbered "b1", "b2", … A room that is not one
// word a person could type after /room (empty, with white space or control
// characters) is one the console does not have: chat.ErrUnknownRoom.
func (a *Adapter) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if err := ctx.Err(); err != nil {
		return chat.MessageRef{}, err
	}
	if !consoleRoom(to.Room) {
		return chat.MessageRef{}, fmt.Errorf("shell: send to %q: %w: a console room is one word a person can type after /room", to.Room, chat.ErrUnknownRoom)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.posts = append(a.posts, location{room: to.Room, thread: to.ThreadID})
	ref := chat.MessageRef{Adapter: a.opts.Name, Room: to.Room, MessageID: "b" + strconv.Itoa(len(a.posts)), ThreadID: to.ThreadID}
	s := render(header{room: to.Room, thread: to.ThreadID, bot: a.self.Name}, out, a.opts.Interactive)
	if _, err := io.WriteString(a.w, s); err != nil {
		return chat.MessageRef{}, fmt.Errorf("shell: send to %s: %w", to, err)
	}
	return ref, nil
}

// consoleRoom reports whether the console has room: every room a person
// can switch to with /room (one word without control characters) or a
// direct conversation "@user".
func consoleRoom(room string) bool {
	return room != "" && clean(room) == room && !strings.ContainsFunc(room, unicode.IsSpace)
}

// Update shows out as the new content of the bot post ref, marked as an edit
// of it, where the post was.
func (a *Adapter) Update(ctx context.Context, ref chat.MessageRef, out chat.Output) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n, err := strconv.Atoi(strings.TrimPrefix(ref.MessageID, "b"))
	if err != nil || !strings.HasPrefix(ref.MessageID, "b") || n < 1 || n > len(a.posts) || a.posts[n-1].room != ref.Room {
		return fmt.Errorf("shell: update %s: %w", ref, ErrUnknownMessage)
	}
	at := a.posts[n-1]
	s := render(header{room: at.room, thread: at.thread, bot: a.self.Name, edit: ref.MessageID}, out, a.opts.Interactive)
	if _, err := io.WriteString(a.w, s); err != nil {
		return fmt.Errorf("shell: update %s: %w", ref, err)
	}
	return nil
}
