package shell

import (
	"bufio"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/chzyer/readline"
)

// Line length limits of the non-interactive reader.
const (
	initialLineBuffer = 64 << 10
	maxLineLength     = 1 << 20
)

// cancelReader lets the adapter stop reading In at once, even while a Read
// of In is blocked (a terminal waiting for a key, a pipe nobody writes to).
// One goroutine of its own reads In into fresh buffers and hands them over;
// Close makes pending and later Reads return io.EOF without waiting for In.
// That goroutine ends with its blocked Read of In: when In returns or is
// closed (Run closes In when it is an io.Closer).
type cancelReader struct {
	chunks chan chunk
	done   chan struct{}
	once   sync.Once

	// Only the one goroutine that calls Read touches these.
	rest []byte
	err  error
}

type chunk struct {
	b   []byte
	err error
}

func newCancelReader(in io.Reader) *cancelReader {
	c := &cancelReader{chunks: make(chan chunk), done: make(chan struct{})}
	go c.pump(in)
	return c
}

func (c *cancelReader) pump(in io.Reader) {
	for {
		buf := make([]byte, 4096)
		n, err := in.Read(buf)
		if n == 0 && err == nil {
			continue
		}
		select {
		case c.chunks <- chunk{buf[:n], err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read reads what In gave, or returns io.EOF once Close was called.
func (c *cancelReader) Read(p []byte) (int, error) {
	select {
	case <-c.done:
		return 0, io.EOF
	default:
	}
	if len(c.rest) == 0 && c.err == nil {
		select {
		case ch := <-c.chunks:
			c.rest, c.err = ch.b, ch.err
		case <-c.done:
			return 0, io.EOF
		}
	}
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return 0, c.err
}

// Close makes Read return io.EOF from now on, including a Read in progress.
func (c *cancelReader) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

// lineReader is where the console's lines come from.
type lineReader interface {
	// ReadLine returns the next line without its end of line; io.EOF when
	// the input ended or the reader was stopped; errInterrupt when the
	// person pressed Ctrl-C (the line being typed is dropped).
	ReadLine() (string, error)
	// SetPrompt changes the prompt shown before the next line.
	SetPrompt(prompt string)
	// Writer returns the writer through which output is shown; in
	// interactive mode it redraws the prompt and the line being edited.
	Writer() io.Writer
	// Close releases the reader once ReadLine has returned an error and the
	// input is stopped. It returns once nothing of the reader runs anymore.
	Close()
}

// scanLines reads plain lines, for pipes and tests.
type scanLines struct {
	s   *bufio.Scanner
	out io.Writer
}

func newScanLines(in io.Reader, out io.Writer) *scanLines {
	s := bufio.NewScanner(in)
	s.Buffer(make([]byte, initialLineBuffer), maxLineLength)
	return &scanLines{s: s, out: out}
}

func (l *scanLines) ReadLine() (string, error) {
	if l.s.Scan() {
		return l.s.Text(), nil
	}
	if err := l.s.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

func (l *scanLines) SetPrompt(string)  {}
func (l *scanLines) Writer() io.Writer { return l.out }
func (l *scanLines) Close()            {}

// errInterrupt is what ReadLine returns for a Ctrl-C.
var errInterrupt = errors.New("interrupted by Ctrl-C")

// editLines reads lines with readline: line editing, history in memory,
// completion of console commands. Ctrl-C drops the line (ReadLine returns
// errInterrupt), Ctrl-D on an empty line ends the input.
type editLines struct {
	rl *readline.Instance
}

// newEditLines reads in (the cancelReader over the console's input) and
// writes out. inTTY and outTTY say whether the console's input and output are
// the process's own terminal.
func newEditLines(in io.Reader, out io.Writer, inTTY, outTTY bool, prompt string) (*editLines, error) {
	cfg := &readline.Config{
		Prompt:              prompt,
		Stdin:               io.NopCloser(in),
		Stdout:              out,
		Stderr:              out,
		HistoryLimit:        1000, // no HistoryFile: history stays in memory
		AutoComplete:        completer,
		InterruptPrompt:     "^C",
		EOFPrompt:           "",
		ForceUseInteractive: true,
	}
	// readline assumes the terminal is the process's own. When In or Out is
	// something else (a pipe, a test), leave the process's terminal alone.
	if !inTTY {
		cfg.FuncMakeRaw = func() error { return nil }
		cfg.FuncExitRaw = func() error { return nil }
	}
	if !inTTY || !outTTY {
		cfg.FuncGetWidth = func() int { return 80 }
		cfg.FuncOnWidthChanged = func(func()) {}
	}
	rl, err := readline.NewEx(cfg)
	if err != nil {
		return nil, err
	}
	return &editLines{rl: rl}, nil
}

var completer = readline.NewPrefixCompleter(
	readline.PcItem("/room"),
	readline.PcItem("/user"),
	readline.PcItem("/dm"),
	readline.PcItem("/thread"),
	readline.PcItem("/help"),
	readline.PcItem("/quit"),
)

// isTerminal reports whether f is the process's own terminal, the only one
// readline's raw mode and width handling know.
func isTerminal(f any) bool {
	switch f {
	case os.Stdin, os.Stdout, os.Stderr:
		return readline.IsTerminal(int(f.(*os.File).Fd()))
	}
	return false
}

func (l *editLines) ReadLine() (string, error) {
	line, err := l.rl.Readline()
	if errors.Is(err, readline.ErrInterrupt) {
		return "", errInterrupt
	}
	return line, err
}

func (l *editLines) SetPrompt(prompt string) { l.rl.SetPrompt(prompt) }
func (l *editLines) Writer() io.Writer       { return l.rl.Stdout() }

// Close closes readline. Its input must have ended already (ReadLine returned
// an error after the cancelReader underneath was closed).
//
// readline v1.5.1 can leave its line-editing goroutine blocked on an
// end-of-input notice nobody reads: Close queues one and the goroutine, when
// still running (after Ctrl-D or /quit), sends another. One more Readline
// after Close takes the queued notice so that goroutine can end; it returns at
// once because Close guarantees a notice is queued.
func (l *editLines) Close() {
	l.rl.SetPrompt("")
	l.rl.Close()
	_, _ = l.rl.Readline()
}
