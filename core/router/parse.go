package router

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agnivade/levenshtein"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// Kind says what Parse made of a command text.
type Kind int

// The kinds of Result. The zero Kind is not a valid result.
const (
	// Matched: a plugin command with valid arguments.
	Matched Kind = iota + 1
	// Help: the built-in help command; Result.Topic says about what.
	Help
	// Unknown: no command of that name; Result.Suggestion may offer one.
	Unknown
	// Malformed: the command is known but its arguments are wrong.
	Malformed
	// Empty: nothing after the bot's name.
	Empty
	// TooLong: the text exceeds Options.MaxMessageBytes and was not parsed.
	TooLong
	// Schedules: the built-in schedules command, which lists the scheduled
	// commands (the bot answers it).
	Schedules
	// Approve: the built-in `approve <id>` (Result.ApprovalID); Problem is
	// set when the id is missing or not a number.
	Approve
	// Deny: the built-in `deny <id> <reason>` (ApprovalID, Reason);
	// Problem is set when the id or the reason is missing.
	Deny
	// Approvals: the built-in approvals command, which lists the pending
	// approval requests.
	Approvals
)

var kindNames = [...]string{"Invalid", "Matched", "Help", "Unknown", "Malformed", "Empty", "TooLong", "Schedules", "Approve", "Deny", "Approvals"}

// String returns the kind's name, for logs and tests.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Result is what Parse made of a command text.
type Result struct {
	Kind Kind

	// Plugin and Command identify the command: set for Matched, and for
	// Malformed when the text named a command. Command is shared with the
	// router; callers must not modify it.
	Plugin  string
	Command *pluginv1.CommandSpec
	// Args holds the validated, normalised arguments by name (Matched only;
	// never nil then). An absent optional argument has its default, or no
	// entry when it has none.
	Args map[string]string

	// Topic is what help was asked about (Help only): "" for everything, or
	// a lower-case command or plugin name as typed.
	Topic string

	// Suggestion is the closest command name (Unknown only), "" if nothing
	// is close enough.
	Suggestion string
	// Usage is the usage line of the command (Malformed) or of the
	// suggestion (Unknown).
	Usage string
	// Problem is a sentence for the person in chat saying what is wrong:
	// "count must be a whole number, got \"x\"", "missing <app>", "too many
	// arguments", "I didn't understand \"…\"". Secret values are never
	// quoted in it.
	Problem string
	// Argument is the name of the argument at fault, if any.
	Argument string

	// ApprovalID is the approval request approve or deny names (Approve,
	// Deny); Reason is the rest of the line (the reason of a denial).
	ApprovalID int64
	Reason     string
}

// SecretMask stands for a secret argument's value in text shown or stored.
const SecretMask = "[redacted]"

// MaskSecrets returns s with the values of the command's secret arguments
// masked: the command text as typed, before it is echoed in chat, written
// to the audit log or printed by explain. Every value is masked, however
// short: the person typed it as a secret.
func (r Result) MaskSecrets(s string) string {
	if r.Command == nil {
		return s
	}
	for _, a := range r.Command.GetArgs() {
		if v := r.Args[a.GetName()]; a.GetSecret() && v != "" {
			s = strings.ReplaceAll(s, v, SecretMask)
		}
	}
	return s
}

// Parse interprets command text, as returned by Addressed. See the package
// documentation for the grammar. Parse never blocks and is safe to call
// while plugins are registered or removed.
func (r *Router) Parse(text string) Result {
	if len(text) > r.max {
		return Result{Kind: TooLong, Problem: fmt.Sprintf("that is too long for me (%d bytes, at most %d)", len(text), r.max)}
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return Result{Kind: Empty}
	}
	end := indexSpace(text, 0)
	kw := text[:end]
	switch {
	case strings.EqualFold(kw, schedulesCommand):
		return Result{Kind: Schedules}
	case strings.EqualFold(kw, approvalsCommand):
		return Result{Kind: Approvals}
	case strings.EqualFold(kw, approveCommand):
		return parseVote(Approve, text[end:])
	case strings.EqualFold(kw, denyCommand):
		return parseVote(Deny, text[end:])
	}
	if isBuiltin(kw) {
		return Result{Kind: Help, Topic: strings.ToLower(firstWord(text[end:]))}
	}

	t := r.tab.Load()
	named := t.lookup(kw)
	if named != nil && named.re == nil {
		return named.parsePositional(text, end)
	}
	// A command named by the keyword owns the text: "deploy:unlock x in y"
	// is deploy:unlock though deploy's pattern (deploy[:task]) matches it
	// too, and "deploy:lock x" is a malformed deploy:lock — never a deploy
	// with task "lock".
	if named != nil {
		if res, ok := named.parsePattern(text); ok {
			return res
		}
		return named.malformed("I didn't understand "+quote(text), "")
	}
	for _, c := range t.patterns {
		if res, ok := c.parsePattern(text); ok {
			return res
		}
	}
	return t.noMatch(text, strings.ToLower(kw))
}

// isBuiltin reports whether kw asks for help.
// parseVote reads the rest of `approve <id> [reason]` or `deny <id>
// <reason>`. An id may be written #12.
func parseVote(k Kind, rest string) Result {
	rest = strings.TrimSpace(rest)
	idText, reason, _ := strings.Cut(rest, " ")
	r := Result{Kind: k, Reason: strings.TrimSpace(reason)}
	usage := "approve <id>"
	if k == Deny {
		usage = "deny <id> <reason>"
	}
	r.Usage = usage
	id, err := strconv.ParseInt(strings.TrimPrefix(idText, "#"), 10, 64)
	switch {
	case idText == "":
		r.Problem = "which request? Say " + usage + " (approvals lists them)"
	case err != nil || id <= 0:
		r.Problem = "the id of an approval request is a number, got " + quote(idText)
	case k == Deny && r.Reason == "":
		r.Problem = "say why: " + usage
	}
	r.ApprovalID = id
	return r
}

func isBuiltin(kw string) bool {
	for _, b := range builtins[:2] {
		if strings.EqualFold(kw, b) {
			return true
		}
	}
	return false
}

// parsePositional parses the arguments of c from text[pos:].
func (c *command) parsePositional(text string, pos int) Result {
	args := make(map[string]string, len(c.args))
	var seen uint64
	for i := range c.args {
		a := &c.args[i]
		pos = skipSpace(text, pos)
		if pos == len(text) {
			break
		}
		var v string
		if a.rest {
			v, pos = text[pos:], len(text)
		} else {
			var problem string
			v, pos, problem = nextToken(text, pos)
			if problem != "" {
				return c.malformed(problem, a.name)
			}
		}
		if v == "" { // "" stands for an absent argument
			continue
		}
		norm, problem := a.check(v, false)
		if problem != "" {
			return c.malformed(problem, a.name)
		}
		args[a.name] = norm
		seen |= 1 << i
	}
	if skipSpace(text, pos) < len(text) {
		return c.malformed("too many arguments", "")
	}
	return c.finish(args, seen)
}

// parsePattern matches text against c's pattern; ok is false when it does
// not match at all.
func (c *command) parsePattern(text string) (res Result, ok bool) {
	if !hasFoldPrefix(text, c.lit) {
		return Result{}, false
	}
	m := c.re.FindStringSubmatchIndex(text)
	if m == nil {
		return Result{}, false
	}
	args := make(map[string]string, len(c.args))
	var seen uint64
	for i := range c.args {
		a := &c.args[i]
		for _, g := range a.groups {
			lo, hi := m[2*g], m[2*g+1]
			if lo < 0 || hi <= lo { // did not take part, or empty: absent
				continue
			}
			norm, problem := a.check(text[lo:hi], true)
			if problem != "" {
				return c.malformed(problem, a.name), true
			}
			args[a.name] = norm
			seen |= 1 << i
			break
		}
	}
	return c.finish(args, seen), true
}

// finish applies defaults and checks required arguments.
func (c *command) finish(args map[string]string, seen uint64) Result {
	for i := range c.args {
		a := &c.args[i]
		if seen&(1<<i) != 0 {
			continue
		}
		if a.required {
			return c.malformed("missing <"+a.name+">", a.name)
		}
		if a.hasDef {
			args[a.name] = a.def
		}
	}
	return Result{Kind: Matched, Plugin: c.plugin, Command: c.spec, Args: args}
}

func (c *command) malformed(problem, argument string) Result {
	return Result{Kind: Malformed, Plugin: c.plugin, Command: c.spec, Usage: c.usage, Problem: problem, Argument: argument}
}

// noMatch explains text (whose lower-case keyword is kw) that matched no
// command.
func (t *table) noMatch(text, kw string) Result {
	for _, k := range keywordForms(kw) {
		if c := t.byKey[k]; c != nil {
			res := c.malformed("I didn't understand "+quote(text), "")
			return res
		}
	}
	res := Result{Kind: Unknown, Problem: "I don't know the command " + quote(kw)}
	if c := t.closest(kw); c != nil {
		res.Suggestion, res.Usage = c.name, c.usage
	}
	return res
}

// keywordForms returns the keyword without a trailing "!", then also without
// a ":suffix": "deploy:prod!" → "deploy:prod", "deploy".
func keywordForms(kw string) []string {
	forms := make([]string, 0, 2)
	k := strings.TrimRight(kw, "!")
	if k != "" {
		forms = append(forms, k)
	}
	if base, _, ok := strings.Cut(k, ":"); ok && base != "" {
		forms = append(forms, base)
	}
	return forms
}

// closest returns the command whose name or alias is nearest to kw:
// within Levenshtein distance max(2, len/3), or a prefix either way. Nil if
// nothing is close. The whole keyword is tried first, then its forms without
// "!" and ":suffix", so "deplo:lokc" suggests "deploy:lock" but "deplyo:x"
// suggests "deploy". On equal distance a prefix match wins.
func (t *table) closest(kw string) *command {
	for _, q := range append([]string{kw}, keywordForms(kw)...) {
		var best *command
		bestScore := 0
		for _, s := range t.suggest {
			d, ok := nearness(q, s.key)
			if !ok {
				continue
			}
			score := 2 * (d + s.penalty)
			if !strings.HasPrefix(s.key, q) {
				score++
			}
			if best == nil || score < bestScore {
				best, bestScore = s.cmd, score
			}
		}
		if best != nil {
			return best
		}
	}
	return nil
}

// nearness returns the edit distance between query q and key k and whether
// they are close enough to suggest one for the other.
func nearness(q, k string) (int, bool) {
	n, m := utf8.RuneCountInString(q), utf8.RuneCountInString(k)
	if n == 0 || m == 0 {
		return 0, false
	}
	d := levenshtein.ComputeDistance(q, k)
	if d < min(n, m) && d <= max(2, n/3) {
		return d, true
	}
	if min(n, m) >= 2 && (strings.HasPrefix(k, q) || strings.HasPrefix(q, k)) {
		return d, true
	}
	return 0, false
}

// hasFoldPrefix reports whether s starts with lit, comparing runes under
// Unicode simple case folding as regexp's (?i) does.
func hasFoldPrefix(s, lit string) bool {
	for _, l := range lit {
		if s == "" {
			return false
		}
		c, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if c != l && !foldEqual(c, l) {
			return false
		}
	}
	return true
}

func foldEqual(a, b rune) bool {
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return a|0x20 == b|0x20 && 'a' <= a|0x20 && a|0x20 <= 'z'
	}
	for f := unicode.SimpleFold(a); f != a; f = unicode.SimpleFold(f) {
		if f == b {
			return true
		}
	}
	return false
}

// nextToken returns the token starting at text[pos] (not a space), and the
// position after it. A token is a run of non-space characters, or a quoted
// string: "…", “…” (any of the three quote marks opens and closes), which
// may contain spaces and is returned without its quotes.
func nextToken(text string, pos int) (tok string, next int, problem string) {
	if pos >= len(text) {
		return "", pos, ""
	}
	c, size := utf8.DecodeRuneInString(text[pos:])
	if !isQuote(c) {
		end := indexSpace(text, pos)
		return text[pos:end], end, ""
	}
	start := pos + size
	for i, q := range text[start:] {
		if !isQuote(q) {
			continue
		}
		end := start + i
		next = end + utf8.RuneLen(q)
		if next < len(text) {
			if after, _ := utf8.DecodeRuneInString(text[next:]); !isSpace(after) {
				return "", next, "put a space after the closing quote"
			}
		}
		return text[start:end], next, ""
	}
	return "", len(text), "missing closing quote"
}

func isQuote(c rune) bool { return c == '"' || c == '“' || c == '”' }

// firstWord returns the first white-space separated word of s.
func firstWord(s string) string {
	start := skipSpace(s, 0)
	return s[start:indexSpace(s, start)]
}

// indexSpace returns the index of the first space in text at or after pos,
// or len(text).
func indexSpace(text string, pos int) int {
	for i := pos; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if isSpace(r) {
			return i
		}
		i += size
	}
	return len(text)
}

// skipSpace returns the index of the first non-space in text at or after
// pos, or len(text).
func skipSpace(text string, pos int) int {
	for pos < len(text) {
		c := text[pos]
		if c < utf8.RuneSelf {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' && c != '\f' {
				return pos
			}
			pos++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[pos:])
		if !isSpace(r) {
			return pos
		}
		pos += size
	}
	return pos
}

// quote renders chat text for a problem sentence: quoted, escaped and cut
// short when long.
func quote(s string) string {
	const limit = 60
	if utf8.RuneCountInString(s) > limit {
		i := 0
		for n := 0; n < limit; n++ {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		return strconv.Quote(s[:i] + "…")
	}
	return strconv.Quote(s)
}
