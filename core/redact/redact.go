// Package redact masks the values of configured secrets (a plugin's
// secrets, the webhook secret, the store's DSN) wherever Chima writes text:
// chat replies, the audit log, stored text such as lock reasons, and logs.
//
// A Redactor is built once from the secret values and handed to each sink;
// a nil *Redactor masks nothing, so sinks need no special case when no
// secret is configured.
package redact

import (
	"bytes"
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
type Redactor struct {
	secrets  []string
	replacer *strings.Replacer
}

// New returns a Redactor for the given secret values. Empty values, values
// shorter than MinLen and duplicates are dropped. It returns nil, which
// masks nothing, when no value is left.
func New(secrets ...string) *Redactor {
	var kept []string
	for _, s := range secrets {
		if len(s) >= MinLen && !slices.Contains(kept, s) {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	// Longest first: where one secret contains another, the whole of the
	// longer one is masked, not its inner part alone.
	slices.SortFunc(kept, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(kept))
	for _, s := range kept {
		pairs = append(pairs, s, Mask)
	}
	return &Redactor{secrets: kept, replacer: strings.NewReplacer(pairs...)}
}

// String returns s with every secret value masked.
func (r *Redactor) String(s string) string {
	if r == nil || !r.containsString(s) {
		return s
	}
	return r.replacer.Replace(s)
}

// Bytes returns b with every secret value masked; b itself when it holds
// none.
func (r *Redactor) Bytes(b []byte) []byte {
	if r == nil || !r.containsBytes(b) {
		return b
	}
	return []byte(r.replacer.Replace(string(b)))
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

// Contains reports whether s holds a secret value.
func (r *Redactor) Contains(s string) bool {
	return r != nil && r.containsString(s)
}

func (r *Redactor) containsString(s string) bool {
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			return true
		}
	}
	return false
}

func (r *Redactor) containsBytes(b []byte) bool {
	for _, sec := range r.secrets {
		if bytes.Contains(b, []byte(sec)) {
			return true
		}
	}
	return false
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
	if !r.containsString(s) {
		return v
	}
	return r.replacer.Replace(s)
}
