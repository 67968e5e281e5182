package router

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chimaops/chima/core/chat"
)

// Addressed reports whether m is for the bot and returns the command text
// with the address removed and surrounding space trimmed. A message is
// addressed when it starts with the bot's name ("chima hello", "Chima:
// hello", "chima, hello", "@chima hello"; the name is matched ignoring case
// and must be a whole word, so "chimahello" is not addressed), when it starts
// with the prefix ("!hello", no space needed), when it is a direct message
// (m.Direct), or when the adapter saw a native mention (m.Mentioned, already
// stripped by the adapter). In a direct or mentioned message a leading name
// or prefix is still removed. The text may be empty: the bot was called with
// nothing after its name.
func (r *Router) Addressed(m chat.Message) (text string, ok bool) {
	text = strings.TrimSpace(m.Text)
	if rest, ok := r.stripName(text); ok {
		return rest, true
	}
	if r.prefix != "" && strings.HasPrefix(text, r.prefix) {
		return trimLeftSpace(text[len(r.prefix):]), true
	}
	if m.Direct || m.Mentioned {
		return text, true
	}
	return "", false
}

// stripName removes a leading "name", "@name", "name:" or "name," from text
// (already trimmed).
func (r *Router) stripName(text string) (string, bool) {
	n := len(r.name)
	if n == 0 {
		return "", false
	}
	s := strings.TrimPrefix(text, "@")
	if len(s) < n || !strings.EqualFold(s[:n], r.name) {
		return "", false
	}
	rest := s[n:]
	if rest == "" {
		return "", true
	}
	c, size := utf8.DecodeRuneInString(rest)
	switch {
	case c == ':' || c == ',':
		rest = rest[size:]
	case !isSpace(c):
		return "", false // "chimahello", "chimaera"
	}
	return trimLeftSpace(rest), true
}

func isSpace(c rune) bool {
	if c < utf8.RuneSelf {
		return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
	}
	return unicode.IsSpace(c)
}

func trimLeftSpace(s string) string {
	return strings.TrimLeftFunc(s, isSpace)
}
