package router

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chimaops/chima/sdk/pluginv1"
)

var (
	commandNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(:[a-z0-9_-]+)?$`)
	argNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// maxArgs bounds the arguments of one command, so presence fits a bit set.
const maxArgs = 64

// command is one CommandSpec, validated and compiled.
type command struct {
	plugin string
	spec   *pluginv1.CommandSpec // private copy
	name   string
	keys   []string // name then aliases, lower case
	usage  string
	args   []arg
	re     *regexp.Regexp // nil for a positional command
	// lit is a literal every match of re starts with (compared ignoring
	// case); a cheap filter before running re.
	lit string
}

// arg is one ArgSpec, validated and compiled.
type arg struct {
	name     string
	typ      pluginv1.ArgType
	required bool
	rest     bool
	secret   bool
	hasDef   bool
	def      string // normalised
	enum     []string
	re       *regexp.Regexp // value pattern, anchored; nil if none
	groups   []int          // pattern commands: capture groups named like it
}

func compilePlugin(name string, m *pluginv1.Manifest) (*plugin, error) {
	p := &plugin{name: name, description: m.GetDescription(), version: m.GetVersion()}
	var errs []error
	seen := make(map[string]string) // key → command name, within this plugin
	for i, s := range m.GetCommands() {
		if s == nil {
			errs = append(errs, fmt.Errorf("%w: command %d is nil", ErrInvalidManifest, i))
			continue
		}
		c, err := compileCommand(name, s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range c.keys {
			if other, dup := seen[k]; dup {
				errs = append(errs, fmt.Errorf("%w: %q is declared by both %q and %q", ErrConflict, k, other, c.name))
				continue
			}
			seen[k] = c.name
		}
		p.commands = append(p.commands, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func compileCommand(pluginName string, s *pluginv1.CommandSpec) (*command, error) {
	s = cloneSpec(s)
	c := &command{plugin: pluginName, spec: s, name: s.GetName()}
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: command %q: %s", ErrInvalidManifest, c.name, fmt.Sprintf(format, a...)))
	}

	for i, k := range append([]string{s.GetName()}, s.GetAliases()...) {
		what := "name"
		if i > 0 {
			what = "alias"
		}
		switch {
		case slices.Contains(builtins, k):
			errs = append(errs, fmt.Errorf("%w: command %q: %q is a built-in command", ErrConflict, c.name, k))
		case !commandNameRE.MatchString(k):
			bad("%s %q must be lower case letters, digits, - and _, optionally followed by :suffix", what, k)
		case slices.Contains(c.keys, k):
			bad("%s %q is declared twice", what, k)
		default:
			c.keys = append(c.keys, k)
		}
	}

	specs := s.GetArgs()
	if len(specs) > maxArgs {
		bad("has %d arguments, at most %d are allowed", len(specs), maxArgs)
		specs = specs[:maxArgs]
	}
	for i, as := range specs {
		if as == nil {
			bad("argument %d is nil", i)
			continue
		}
		a, problems := compileArg(as)
		for _, p := range problems {
			bad("argument %q: %s", as.GetName(), p)
		}
		if slices.ContainsFunc(c.args, func(b arg) bool { return b.name == a.name }) {
			bad("argument %q is declared twice", a.name)
		}
		if a.rest && i != len(specs)-1 {
			bad("argument %q takes the rest of the line, so it must be the last", a.name)
		}
		c.args = append(c.args, a)
	}

	if pat := s.GetPattern(); pat != "" {
		if err := c.compilePattern(pat); err != nil {
			bad("%v", err)
		}
	} else {
		// Positionally, a required argument after an optional one could
		// only be reached by passing "" for the optional one.
		for i := 1; i < len(c.args); i++ {
			if c.args[i].required && !c.args[i-1].required {
				bad("required argument %q follows optional argument %q", c.args[i].name, c.args[i-1].name)
			}
		}
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.usage = s.GetUsage()
	if c.usage == "" {
		c.usage = defaultUsage(c)
	}
	return c, nil
}

func (c *command) compilePattern(pat string) error {
	// Check the pattern on its own first: wrapping an unbalanced pattern
	// such as "a)|(b" could otherwise turn it into a valid, unanchored one.
	parsed, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return fmt.Errorf("pattern is not valid RE2: %v", err)
	}
	re, err := regexp.Compile(`(?i)^(?:` + pat + `)$`)
	if err != nil {
		return fmt.Errorf("pattern is not valid RE2: %v", err)
	}
	c.re = re
	c.lit = literalPrefix(parsed)

	var errs []error
	for g, name := range re.SubexpNames() {
		if name == "" {
			continue
		}
		i := slices.IndexFunc(c.args, func(a arg) bool { return a.name == name })
		if i < 0 {
			errs = append(errs, fmt.Errorf("pattern group %q has no argument of that name", name))
			continue
		}
		c.args[i].groups = append(c.args[i].groups, g)
	}
	for _, a := range c.args {
		if a.required && len(a.groups) == 0 {
			errs = append(errs, fmt.Errorf("required argument %q has no group of that name in the pattern", a.name))
		}
	}
	return errors.Join(errs...)
}

// literalPrefix returns a literal that starts every match of re, or "".
func literalPrefix(re *syntax.Regexp) string {
	for {
		switch re.Op {
		case syntax.OpLiteral:
			return string(re.Rune)
		case syntax.OpConcat, syntax.OpCapture:
			if len(re.Sub) == 0 {
				return ""
			}
			re = re.Sub[0]
		default:
			return ""
		}
	}
}

func compileArg(s *pluginv1.ArgSpec) (arg, []string) {
	a := arg{
		name:     s.GetName(),
		typ:      s.GetType(),
		required: s.GetRequired(),
		rest:     s.GetRest(),
		secret:   s.GetSecret(),
		enum:     s.GetEnum(),
	}
	var problems []string
	if !argNameRE.MatchString(a.name) {
		problems = append(problems, "name must be letters, digits and _")
	}
	if _, ok := pluginv1.ArgType_name[int32(a.typ)]; !ok {
		problems = append(problems, fmt.Sprintf("unknown type %d", a.typ))
	}
	switch {
	case a.typ == pluginv1.ArgType_ARG_TYPE_ENUM && len(a.enum) == 0:
		problems = append(problems, "an enum needs values")
	case a.typ != pluginv1.ArgType_ARG_TYPE_ENUM && len(a.enum) > 0:
		problems = append(problems, "has enum values but is not an enum")
	}
	for i, v := range a.enum {
		if strings.TrimSpace(v) == "" {
			problems = append(problems, "has an empty enum value")
		}
		if slices.ContainsFunc(a.enum[:i], func(w string) bool { return strings.EqualFold(v, w) }) {
			problems = append(problems, fmt.Sprintf("enum value %q is listed twice", v))
		}
	}
	if p := s.GetPattern(); p != "" {
		if _, err := syntax.Parse(p, syntax.Perl); err != nil {
			problems = append(problems, fmt.Sprintf("pattern is not valid RE2: %v", err))
		} else {
			a.re = regexp.MustCompile(`^(?:` + p + `)$`)
		}
	}
	if d := s.GetDefault(); d != "" && len(problems) == 0 {
		if a.required {
			problems = append(problems, "is required, so a default would never be used")
		} else if v, problem := a.check(d, false); problem != "" {
			problems = append(problems, fmt.Sprintf("default %q is not valid: %s", d, problem))
		} else {
			a.hasDef, a.def = true, v
		}
	}
	return a, problems
}

// check validates v (non-empty) against a's type and pattern and returns the
// normalised value, or a problem sentence naming the argument. flag is set
// for a value captured by a pattern group, where a boolean group that
// captured anything but a boolean word (such as "!") means true.
func (a *arg) check(v string, flag bool) (string, string) {
	switch a.typ {
	case pluginv1.ArgType_ARG_TYPE_INT:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
				return "", a.name + " is too big" + a.got(v)
			}
			return "", a.name + " must be a whole number" + a.got(v)
		}
		if !canonicalInt(v) {
			v = strconv.FormatInt(n, 10)
		}
	case pluginv1.ArgType_ARG_TYPE_BOOL:
		b, ok := parseBool(v)
		switch {
		case ok && b:
			v = "true"
		case ok:
			v = "false"
		case flag:
			v = "true"
		default:
			return "", a.name + " must be yes or no" + a.got(v)
		}
	case pluginv1.ArgType_ARG_TYPE_ENUM:
		i := slices.IndexFunc(a.enum, func(e string) bool { return strings.EqualFold(e, v) })
		if i < 0 {
			return "", a.name + " must be one of " + strings.Join(a.enum, ", ") + a.got(v)
		}
		v = a.enum[i]
	case pluginv1.ArgType_ARG_TYPE_DURATION:
		d, err := time.ParseDuration(v)
		if err != nil {
			return "", a.name + " must be a duration such as 90s, 5m or 1h30m" + a.got(v)
		}
		v = d.String()
	}
	if a.re != nil && !a.re.MatchString(v) {
		return "", a.name + " is not in the expected form" + a.got(v)
	}
	return v, ""
}

// got quotes a bad value for a problem sentence, unless it is secret.
func (a *arg) got(v string) string {
	if a.secret {
		return ""
	}
	return ", got " + quote(v)
}

func parseBool(v string) (value, ok bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// canonicalInt reports whether v is spelled as strconv.FormatInt would.
func canonicalInt(v string) bool {
	d := strings.TrimPrefix(v, "-")
	if d == "" || d[0] == '+' || (d[0] == '0' && (len(d) > 1 || len(v) > 1)) {
		return false
	}
	return true
}

func defaultUsage(c *command) string {
	var b strings.Builder
	b.WriteString(c.name)
	for _, a := range c.args {
		b.WriteByte(' ')
		open, end := "[", "]"
		if a.required {
			open, end = "<", ">"
		}
		b.WriteString(open)
		b.WriteString(a.name)
		if a.rest {
			b.WriteString("...")
		}
		b.WriteString(end)
	}
	return b.String()
}
