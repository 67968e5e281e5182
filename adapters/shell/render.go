package shell

import (
	"strings"

	"github.com/chimaops/chima/core/chat"
)

// header says where a bot post appears and who wrote it.
type header struct {
	room, thread string
	bot          string
	// edit is the id of the message an update replaces, or "".
	edit string
}

// ANSI styles, used only in interactive mode.
const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
)

var statusColour = map[string]string{
	"good":    "\x1b[1;32m",
	"warning": "\x1b[1;33m",
	"danger":  "\x1b[1;31m",
	"info":    "\x1b[1;36m",
}

// render formats one bot post for the console, ending with a newline:
//
//	[general ↳ m3] chima: Title
//	  text
//	  Field: value
//	    code
//	  [Label] type: command   ([Label] when the button has no command)
//
// The title, or else the first line of text, shares the header's line. With
// ansi the title is bold and coloured by out.Status. Control characters other
// than tab and newline are dropped so that output cannot drive the terminal.
func render(h header, out chat.Output, ansi bool) string {
	var b strings.Builder
	b.WriteString("[")
	b.WriteString(clean(h.room))
	if h.thread != "" {
		b.WriteString(" ↳ ")
		b.WriteString(clean(h.thread))
	}
	b.WriteString("] ")
	b.WriteString(clean(h.bot))
	if h.edit != "" {
		b.WriteString(" (edit ")
		b.WriteString(clean(h.edit))
		b.WriteString(")")
	}
	b.WriteString(":")

	// Text and field values are marked up; the console shows them plain.
	// The fallback is plain text already.
	text := chat.PlainMarkup(out.Text)
	if out.Title == "" && out.Text == "" && len(out.Fields) == 0 && out.Code == "" && len(out.Buttons) == 0 {
		text = out.Fallback
	}
	inline := true // the next line of title or text goes on the header's line
	line := func(indent, s string) {
		if inline {
			inline = false
			if s != "" {
				b.WriteString(" ")
				b.WriteString(s)
			}
			return
		}
		b.WriteString("\n")
		if s != "" {
			b.WriteString(indent)
			b.WriteString(s)
		}
	}
	if out.Title != "" {
		for _, l := range lines(out.Title) {
			if ansi && l != "" {
				style := statusColour[out.Status]
				if style == "" {
					style = ansiBold
				}
				l = style + l + ansiReset
			}
			line("  ", l)
		}
	}
	if text != "" {
		for _, l := range lines(text) {
			line("  ", l)
		}
	}
	inline = false
	for _, f := range out.Fields {
		vs := lines(chat.PlainMarkup(f.Value))
		if f.Title != "" {
			vs[0] = clean(f.Title) + ": " + vs[0]
		}
		line("  ", vs[0])
		for _, v := range vs[1:] {
			line("    ", v)
		}
	}
	if out.Code != "" {
		for _, l := range lines(strings.TrimRight(out.Code, "\n")) {
			line("    ", l)
		}
	}
	for _, btn := range out.Buttons {
		// A button without a command is only clickable, which a console
		// is not: it shows as its label (Button.AsText).
		line("  ", clean(btn.AsText()))
	}
	b.WriteString("\n")
	return b.String()
}

// lines splits cleaned s into lines, without trailing white space.
func lines(s string) []string {
	ls := strings.Split(clean(s), "\n")
	for i, l := range ls {
		ls[i] = strings.TrimRight(l, " \t")
	}
	return ls
}

// clean drops control characters other than tab and newline (escape
// sequences, carriage returns, C1 controls) from s.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			return -1
		}
		return r
	}, s)
}
