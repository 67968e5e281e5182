package validate

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length limits, in bytes.
const (
	// MaxRefLen is the longest ref accepted.
	MaxRefLen = 255
	// MaxTaskLen is the longest task name accepted.
	MaxTaskLen = 64
	// MaxNameLen is the longest app or environment name accepted.
	MaxNameLen = 64
	// MaxHostLen is the longest single host name accepted (DNS's limit).
	MaxHostLen = 253
	// MaxHostsLen is the longest comma-separated host list accepted.
	MaxHostsLen = 1024
	// MaxHosts is the largest number of hosts in one list.
	MaxHosts = 64
)

// Metacharacters lists the characters refused in every value because a
// shell, git or a deploy tool would give them a meaning. Whitespace and
// control characters are refused as well.
const Metacharacters = ";&|$`()<>{}[]*?!~'\"\\"

// Error is a rejected value. Its message names the field, quotes the value
// and says why, e.g. `ref "a;b" is not allowed: it contains ";"`.
type Error struct {
	// Field is what the value was meant to be: "ref", "task", "host",
	// "hosts", "app", "environment".
	Field string
	// Value is the rejected value as given.
	Value string
	// Reason says what is wrong, starting with "it": "it contains \";\"".
	Reason string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("an empty %s is not allowed", e.Field)
	}
	return fmt.Sprintf("%s %s is not allowed: %s", e.Field, quote(e.Value), e.Reason)
}

// quote quotes a value for a message, shortening very long ones.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

func reject(field, value, format string, args ...any) error {
	return &Error{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// common applies the rules shared by every field.
func common(field, v string, max int) error {
	switch {
	case v == "":
		return reject(field, v, "it is empty")
	case len(v) > max:
		return reject(field, v, "it is longer than %d characters", max)
	case !utf8.ValidString(v):
		return reject(field, v, "it is not valid UTF-8")
	case v[0] == '-':
		return reject(field, v, `it starts with "-"`)
	case strings.Contains(v, ".."):
		return reject(field, v, `it contains ".."`)
	case strings.Contains(v, "@{"):
		return reject(field, v, `it contains "@{"`)
	}
	for _, r := range v {
		switch {
		case r == '\n' || r == '\r':
			return reject(field, v, "it contains a line break")
		case r < 0x20 || r == 0x7f || unicode.IsControl(r):
			return reject(field, v, "it contains a control character")
		case unicode.IsSpace(r):
			return reject(field, v, "it contains whitespace")
		case strings.ContainsRune(Metacharacters, r):
			return reject(field, v, "it contains %q", string(r))
		case !unicode.IsGraphic(r):
			return reject(field, v, "it contains an invisible character (%U)", r)
		}
	}
	return nil
}

// Ref checks a git ref given in chat: a branch, a tag, a full ref such as
// refs/heads/main, or a commit SHA. On top of the common rules it follows
// `git check-ref-format`: no component may start with "." or end with
// ".lock", the ref may not start or end with "/" or contain "//", may not end
// with ".", may not be "@", and may not contain "^" or ":".
func Ref(ref string) error {
	const field = "ref"
	if err := common(field, ref, MaxRefLen); err != nil {
		return err
	}
	if IsFullSHA(ref) {
		return nil
	}
	if i := strings.IndexAny(ref, "^:"); i >= 0 {
		return reject(field, ref, "it contains %q", ref[i:i+1])
	}
	switch {
	case ref == "@":
		return reject(field, ref, `it is "@"`)
	case strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/"):
		return reject(field, ref, `it starts or ends with "/"`)
	case strings.Contains(ref, "//"):
		return reject(field, ref, `it contains "//"`)
	case strings.HasSuffix(ref, "."):
		return reject(field, ref, `it ends with "."`)
	}
	for _, part := range strings.Split(ref, "/") {
		if strings.HasPrefix(part, ".") {
			return reject(field, ref, `a part of it starts with "."`)
		}
		if strings.HasSuffix(part, ".lock") {
			return reject(field, ref, `a part of it ends with ".lock"`)
		}
	}
	return nil
}

// IsFullSHA reports whether s is a full commit id: 40 (SHA-1) or 64
// (SHA-256) lowercase hexadecimal digits.
func IsFullSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

var taskRE = regexp.MustCompile(`^[a-z0-9][-_.:a-z0-9]*$`)

// Task checks a task name such as "deploy" or "deploy:migrate": lowercase
// letters, digits, "-", "_", "." and ":", starting with a letter or digit.
func Task(task string) error {
	const field = "task"
	if err := common(field, task, MaxTaskLen); err != nil {
		return err
	}
	if !taskRE.MatchString(task) {
		return reject(field, task, `it must be lowercase letters, digits, "-", "_", "." or ":", starting with a letter or digit`)
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[-_.0-9a-z]+$`)

// Name checks an app or environment name: lowercase letters, digits, "-",
// "_" and "." (the grammar's [-_.0-9a-z]), not starting with "-". Field is
// the word used in the message, e.g. "app" or "environment".
func Name(field, name string) error {
	if err := common(field, name, MaxNameLen); err != nil {
		return err
	}
	if !nameRE.MatchString(name) {
		return reject(field, name, `it must be lowercase letters, digits, "-", "_" or "."`)
	}
	return nil
}

// Host checks one host: a host name (labels of letters, digits, "-" and "_"
// separated by dots) or an IPv4 address. Ports, user names and IPv6
// addresses are not accepted.
func Host(host string) error {
	const field = "host"
	if err := common(field, host, MaxHostLen); err != nil {
		return err
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Is4() {
			return nil
		}
		return reject(field, host, "it is an IPv6 address; use a host name")
	}
	if strings.Contains(host, ":") {
		return reject(field, host, `it contains ":"; give host names without ports`)
	}
	if strings.Contains(host, "@") {
		return reject(field, host, `it contains "@"; give host names without user names`)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return reject(field, host, "it has an empty part between dots")
		}
		if len(label) > 63 {
			return reject(field, host, "a part of it is longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return reject(field, host, `a part of it starts or ends with "-"`)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return reject(field, host, "it contains %q; host names are letters, digits, \"-\", \"_\" and dots", string(r))
			}
		}
	}
	return nil
}

// Hosts checks a comma-separated host list such as "web1,web2.example.com"
// and returns the hosts in order. An empty list is valid and returns nil.
// Each host must pass Host; a host may be listed only once.
func Hosts(hosts string) ([]string, error) {
	const field = "hosts"
	if hosts == "" {
		return nil, nil
	}
	if err := common(field, hosts, MaxHostsLen); err != nil {
		return nil, err
	}
	parts := strings.Split(hosts, ",")
	if len(parts) > MaxHosts {
		return nil, reject(field, hosts, "it lists more than %d hosts", MaxHosts)
	}
	seen := make(map[string]bool, len(parts))
	for _, h := range parts {
		if h == "" {
			return nil, reject(field, hosts, "it has an empty entry; separate hosts with single commas")
		}
		if err := Host(h); err != nil {
			return nil, err
		}
		key := strings.ToLower(h)
		if seen[key] {
			return nil, reject(field, hosts, "it lists %q twice", h)
		}
		seen[key] = true
	}
	return parts, nil
}
