package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a config file.
type Problem struct {
	// File is the config file as it was named to Load or Parse ("" when the
	// Config was built in code).
	File string
	// Line is the 1-based line of the key or list item at fault (0 when unknown).
	Line int
	// Key is the key path at fault, e.g. "plugins[1].path" ("" for the whole file).
	Key string
	// Msg says what is wrong, for a person.
	Msg string
}

// String renders the problem as "file:line: key: msg", leaving out the parts
// that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError is the error Load, Parse and Validate return: every
// problem found, in file order.
type ValidationError struct {
	// Problems is never empty.
	Problems []Problem
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// newValidationError returns nil when there are no problems (as a plain nil
// error, never a typed nil), else the problems sorted by line; problems with
// no line come last, in the order found.
func newValidationError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	slices.SortStableFunc(problems, func(a, b Problem) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return &ValidationError{Problems: problems}
}

// meta remembers, for a parsed Config, where each key was in the file and
// which keys already have a problem (so one mistake is reported once).
type meta struct {
	file  string
	lines map[string]int  // key path → line of the key or list item
	null  map[string]bool // keys present with a null (empty) value
	bad   map[string]bool // keys whose value could not be decoded
}

func newMeta(file string) *meta {
	return &meta{file: file, lines: map[string]int{}, null: map[string]bool{}, bad: map[string]bool{}}
}

// parentKey strips the last segment of a key path: "plugins[1].path" →
// "plugins[1]" → "plugins" → "".
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		// either a list index or a quoted map key: find its opening bracket
		if i := strings.LastIndex(key, "["); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexAny(key, ".["); i >= 0 {
		return key[:i]
	}
	return ""
}

// line returns the line of key, or of its nearest ancestor present in the file.
func (m *meta) line(key string) int {
	if m == nil {
		return 0
	}
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := m.lines[k]; ok {
			return l
		}
	}
	return 0
}

// isSet reports whether key is in the file with a non-null value.
func (m *meta) isSet(key string) bool {
	if m == nil {
		return false
	}
	_, ok := m.lines[key]
	return ok && !m.null[key]
}

// isBad reports whether key or one of its ancestors already has a problem.
func (m *meta) isBad(key string) bool {
	if m == nil {
		return false
	}
	for k := key; k != ""; k = parentKey(k) {
		if m.bad[k] {
			return true
		}
	}
	return false
}

func (m *meta) fileName() string {
	if m == nil {
		return ""
	}
	return m.file
}

// joinKey appends a map key or struct field name to a key path, quoting it
// when it would be ambiguous in a path ("env.GREETING", `roles["a.b"]`).
func joinKey(path, name string) string {
	plain := name != ""
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
