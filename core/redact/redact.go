// Package redact masks the values of configured secrets (a plugin's
// secrets, the webhook secret, the store's DSN) wherever Chima writes text:
// chat replies, the audit log, stored text such as lock reasons, and logs.
//
// A Redactor is built once from the secret values and handed to each sink;
// a nil *Redactor masks nothing, so sinks need no special case when no
// secret is configured.
package redact

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Mask replaces every occurrence of a secret value.
const Mask = "[redacted]"

// MinLen is the shortest value masked: shorter "secrets" would mask ordinary
// words and numbers all over the output.
const MinLen = 4

// Redactor masks a fixed set of secret values. It is safe for concurrent use.
//
// Matching ignores ASCII case: Chima lower-cases command keywords, help
// topics and names before it quotes them back ("I don't know the command
// …"), and a secret echoed in another case has leaked all the same.
type Redactor struct {
	// lower holds the secrets in ASCII lower case, longest first.
	lower []string
}

// New returns a Redactor for the given secret values. Empty values, values
// shorter than MinLen and duplicates (ignoring ASCII case) are dropped. It
// returns nil, which masks nothing, when no value is left.
func New(secrets ...string) *Redactor {
	var kept []string
	for _, s := range secrets {
		l := asciiLower(s)
		if len(l) >= MinLen && !slices.Contains(kept, l) {
			kept = append(kept, l)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	// Longest first: where one secret contains another, the whole of the
	// longer one is masked, not its inner part alone.
	slices.SortStableFunc(kept, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return &Redactor{lower: kept}
}

// String returns s with every secret value masked, in any ASCII case.
func (r *Redactor) String(s string) string {
	if r == nil || !containsAny(r.lower, s) {
		return s
	}
	return r.replace(s)
}

// Bytes returns b with every secret value masked; b itself when it holds
// none.
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil || !containsAny(r.lower, b) {
		return b
	}
	return []byte(r.replace(string(b)))
}

// Text masks b like Bytes when b is text (valid UTF-8 without control bytes
// other than tab, newline and carriage return, which JSON always is), and
// returns binary values such as protobuf unchanged: masking would change
// their lengths and corrupt them.
func (r *Redactor) Text(b []byte) []byte {
	if r == nil || !isText(b) {
		return b
	}
	return r.Bytes(b)
}

// Contains reports whether s holds a secret value, in any ASCII case.
func (r *Redactor) Contains(s string) bool {
	return r != nil && containsAny(r.lower, s)
}

// containsAny reports whether s holds one of secrets, ignoring ASCII case.
// It searches s as it is, so the check that runs on every reply and log
// line allocates nothing.
func containsAny[T string | []byte](secrets []string, s T) bool {
	for _, sec := range secrets {
		if indexFold(s, sec) >= 0 {
			return true
		}
	}
	return false
}

// indexFold returns the offset of the first occurrence of sec, which is in
// ASCII lower case, in s, ignoring ASCII case; -1 when there is none.
func indexFold[T string | []byte](s T, sec string) int {
	c0, u0 := sec[0], upper(sec[0])
	for i := 0; i+len(sec) <= len(s); i++ {
		if c := s[i]; c != c0 && c != u0 {
			continue
		}
		j := 1
		for j < len(sec) && lower(s[i+j]) == sec[j] {
			j++
		}
		if j == len(sec) {
			return i
		}
	}
	return -1
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// replace masks every secret in s. Matches are taken left to right without
// overlap and, where two start at one offset, the longer wins.
func (r *Redactor) replace(s string) string {
	var b strings.Builder
	for i := 0; ; {
		at, n := -1, 0
		for _, sec := range r.lower {
			if j := indexFold(s[i:], sec); j >= 0 && (at < 0 || j < at) {
				at, n = j, len(sec)
			}
		}
		if at < 0 {
			b.WriteString(s[i:])
			return b.String()
		}
		b.WriteString(s[i : i+at])
		b.WriteString(Mask)
		i += at + n
	}
}

// asciiLower returns s with ASCII letters lower-cased and every other byte
// kept, so the result has the length of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lower(c)
	}
	return string(b)
}

func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(b)
}

// Any masks a value of unknown type for a log line: strings, errors,
// Stringers and byte slices are turned into masked strings when they hold
// a secret; other values are formatted and masked only when their text
// holds one.
func (r *Redactor) Any(v any) any {
	if r == nil {
		return v
	}
	var s string
	switch x := v.(type) {
	case nil:
		return v
	case string:
		return r.String(x)
	case error:
		s = x.Error()
	case fmt.Stringer:
		s = x.String()
	case []byte:
		s = string(x)
	default:
		s = fmt.Sprintf("%+v", x)
	}
	if !containsAny(r.lower, s) {
		return v
	}
	return r.replace(s)
}
