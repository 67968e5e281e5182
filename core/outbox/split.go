package outbox

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/chimaops/chima/core/chat"
)

// The length of an Output is the length, in runes, of its plain-text
// rendering without Fallback (chat.Output.PlainText): title, text, fields,
// code block and buttons, one line each. That is what every adapter shows
// in some form, so an Output of at most MaxText runes is one no service
// refuses. Fallback is kept within MaxText on its own.

// fence is the line that opens and closes a code block in Output.Text.
const fence = "```"

// minBudget is the smallest room for text per part that is worth keeping
// the title, fields and buttons apart for; below it they are folded into
// the text.
const minBudget = 64

// size is the rune length of out's plain-text rendering without Fallback.
func size(out chat.Output) int {
	n, lines := 0, 0
	add := func(k int) {
		if lines > 0 {
			n++ // the newline between two lines
		}
		n += k
		lines++
	}
	if out.Title != "" {
		add(runes(out.Title))
	}
	if out.Text != "" {
		add(runes(out.Text))
	}
	for _, f := range out.Fields {
		add(runes(f.Title) + 2 + runes(f.Value))
	}
	if out.Code != "" {
		add(len(fence)*2 + 2 + runes(strings.TrimRight(out.Code, "\n")))
	}
	for _, b := range out.Buttons {
		add(runes(b.AsText()))
	}
	return n
}

// fits reports whether out needs no splitting or truncating for max.
func fits(out chat.Output, max int) bool {
	if max <= 0 {
		return true
	}
	// Bytes are never fewer than runes: short messages skip the counting.
	short := len(out.Title) + len(out.Text) + len(out.Code) + len(out.Fallback) + 16
	for _, f := range out.Fields {
		short += len(f.Title) + len(f.Value) + 3
	}
	for _, b := range out.Buttons {
		short += len(b.Label) + len(b.Command) + 12
	}
	if short <= max {
		return true
	}
	return size(out) <= max && runes(out.Fallback) <= max
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// shellAndBody separates out into what must stay whole (title, fields,
// buttons, status) and the body that may be cut (text, with the code block
// appended as a fenced block), such that the shell plus any body of at most
// budget runes fits max. When title and fields leave too little room they
// are folded into the body; so are the buttons, as text, when even they
// leave too little.
func shellAndBody(out chat.Output, max int) (shell chat.Output, body string, budget int) {
	body = out.Text
	if out.Code != "" {
		body = joinLines(body, fence+"\n"+strings.TrimRight(out.Code, "\n")+"\n"+fence)
	}
	shell = chat.Output{Title: out.Title, Fields: out.Fields, Buttons: out.Buttons, Status: out.Status, Mentions: out.Mentions}
	budget = room(max, shell)
	if budget < minBudget && (shell.Title != "" || len(shell.Fields) > 0) {
		head := chat.Output{Title: shell.Title, Fields: shell.Fields}
		body = joinLines(head.PlainText(), body)
		shell.Title, shell.Fields = "", nil
		budget = room(max, shell)
	}
	if budget < minBudget && len(shell.Buttons) > 0 {
		for _, b := range shell.Buttons {
			body = joinLines(body, b.AsText())
		}
		shell.Buttons = nil
		budget = max
	}
	return shell, body, budget
}

// room is what shell leaves of max for text: its own lines and the newline
// that joins the text to them.
func room(max int, shell chat.Output) int {
	if n := size(shell); n > 0 {
		return max - n - 1
	}
	return max
}

func joinLines(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n" + b
}

// split returns out as one or more Outputs of at most max runes each (see
// size): out itself when it fits. The text (with the code block folded into
// it) is cut at line boundaries where it can be, never inside a rune, and a
// code block cut in two is closed at the end of one part and reopened at the
// start of the next. The first part carries the title, the last the fields
// and buttons; every part keeps the status and the mentions.
func split(out chat.Output, max int) []chat.Output {
	if fits(out, max) {
		return []chat.Output{out}
	}
	shell, body, budget := shellAndBody(out, max)
	texts := splitText(body, budget)
	parts := make([]chat.Output, len(texts))
	for i, t := range texts {
		// Every part keeps the mentions: the adapter replaces those whose
		// tokens it finds in the part.
		p := chat.Output{Text: t, Status: shell.Status, Mentions: shell.Mentions}
		if i == 0 {
			p.Title = shell.Title
		}
		if i == len(texts)-1 {
			p.Fields, p.Buttons = shell.Fields, shell.Buttons
		}
		parts[i] = p
	}
	return parts
}

// truncate returns out cut to at most max runes (see size), ending in a
// marker that says how much was left out: an edit can only ever be one
// message. out itself is returned when it fits.
func truncate(out chat.Output, max int) chat.Output {
	if fits(out, max) {
		return out
	}
	fallback := out.Fallback
	if runes(fallback) > max {
		fallback = truncateText(fallback, max)
	}
	if size(out) <= max {
		out.Fallback = fallback
		return out
	}
	shell, body, budget := shellAndBody(out, max)
	shell.Text = truncateText(body, budget)
	if runes(out.Fallback) > 0 {
		shell.Fallback = fallback
	}
	return shell
}

// truncateText cuts s to at most n runes, marker included, closing a code
// block left open.
func truncateText(s string, n int) string {
	total := runes(s)
	if total <= n {
		return s
	}
	// The marker is sized for the most that could be left out, so the cut
	// below never has to be redone. A limit too small for it gets a bare cut.
	keep := n - runes(marker(total)) - len(fence) - 1
	if keep < n/2 {
		return prefixRunes(s, n)
	}
	cut := prefixRunes(s, keep)
	// A cut within a line's last stretch goes back to the line's start,
	// where there is one in the second half of what is kept.
	if i := strings.LastIndexByte(cut, '\n'); i > len(cut)/2 {
		cut = cut[:i]
	}
	kept := strings.TrimRight(cut, "\n")
	if openFence(kept) != "" {
		kept += "\n" + fence
	}
	left := total - runes(cut)
	return joinLines(kept, strings.TrimPrefix(marker(left), "\n"))
}

// marker notes n characters left out.
func marker(n int) string { return fmt.Sprintf("\n… (truncated, %d more characters)", n) }

// prefixRunes returns the longest prefix of s of at most n runes.
func prefixRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return s[:i]
}

// isFence reports whether line opens or closes a code block.
func isFence(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), fence) }

// openFence returns the line that opened the code block still open at the
// end of s, or "".
func openFence(s string) string {
	open := ""
	for line := range strings.SplitSeq(s, "\n") {
		if isFence(line) {
			if open == "" {
				open = strings.TrimSpace(line)
			} else {
				open = ""
			}
		}
	}
	return open
}

// splitText cuts s into parts of at most n runes each: between lines where
// it can (the newline between two parts is dropped), within a line, at a
// space if there is one in the second half of the part, only when the line
// alone is too long. A code block cut in two is closed at the end of a part
// and reopened, with its opening line (```go), at the start of the next.
func splitText(s string, n int) []string {
	if runes(s) <= n {
		return []string{s}
	}
	var (
		parts    []string
		b        strings.Builder
		used     int    // runes in b
		lines    int    // lines in b
		reopened int    // lines in b that reopen a fence (0 or 1)
		open     string // the fence line open at the end of b, or ""
	)
	closing := func(open string) int {
		if open == "" {
			return 0
		}
		return 1 + len(fence)
	}
	write := func(line string) {
		if lines > 0 {
			b.WriteByte('\n')
			used++
		}
		b.WriteString(line)
		used += runes(line)
		lines++
	}
	flush := func() {
		if open != "" {
			b.WriteString("\n" + fence)
		}
		parts = append(parts, b.String())
		b.Reset()
		used, lines, reopened = 0, 0, 0
		// A reopened fence that alone would not leave room for a rune is
		// dropped: the part cannot show code as code anyway.
		if open != "" && runes(open)+1+closing(open)+1 <= n {
			write(open)
			reopened = 1
		} else {
			open = ""
		}
	}
	sep := func() int {
		if lines > 0 {
			return 1
		}
		return 0
	}
	for line := range strings.SplitSeq(s, "\n") {
		next := open
		if isFence(line) {
			if open == "" {
				next = strings.TrimSpace(line)
			} else {
				next = ""
			}
		}
		if used+sep()+runes(line)+closing(next) > n && lines > reopened {
			flush()
		}
		if used+sep()+runes(line)+closing(next) <= n {
			write(line)
			open = next
			continue
		}
		// The line alone is too long for a part: cut it.
		rest := line
		for rest != "" {
			avail := n - used - sep() - closing(open)
			if avail < 1 {
				flush()
				continue
			}
			chunk := cutLine(rest, avail)
			write(chunk)
			rest = rest[len(chunk):]
			if rest != "" {
				flush()
			}
		}
		open = next
	}
	return append(parts, b.String())
}

// cutLine returns the prefix of line to put in a part with room for n runes:
// up to a space in the second half of that room when there is one.
func cutLine(line string, n int) string {
	p := prefixRunes(line, n)
	if len(p) == len(line) {
		return p
	}
	if i := strings.LastIndexByte(p, ' '); i >= len(p)/2 && i > 0 {
		return p[:i+1]
	}
	return p
}
