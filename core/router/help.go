package router

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agnivade/levenshtein"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/sdk/pluginv1"
)

const helpUsage = "help [topic]"

const helpHelp = "Shows what I can do, or how to use one command or plugin. Also answers to \"commands\"."

const schedulesHelp = "Lists the commands I run on a clock, with their next run and how their last run ended."

const (
	approveUsage   = "approve <id>"
	approveHelp    = "Approves the approval request <id> (approvals lists them), or confirms your own when it asks you to."
	denyUsage      = "deny <id> <reason>"
	denyHelp       = "Denies the approval request <id>, saying why; the person who asked may withdraw it this way."
	approvalsUsage = "approvals"
	approvalsHelp  = "Lists the commands waiting for approval, with who asked and who may approve."
)

// Help renders help about topic, as asked with "help [topic]".
//
//   - "" lists every command grouped by plugin (usage — first line of its
//     help), with a note for each plugin whose state, as told by stateOf,
//     is neither "running" nor "" (unknown). stateOf may be nil.
//   - a command name or alias shows its usage, help text, arguments (type,
//     required or default, enum values), the permission it needs, aliases
//     and examples.
//   - a plugin name lists that plugin's commands.
//   - anything else is answered with a problem and, when one is close, a
//     suggestion.
//
// Topics are matched ignoring case; only the first word counts. A command
// wins over a plugin of the same name.
func (r *Router) Help(topic string, stateOf func(plugin string) string) chat.Output {
	return r.HelpFor(topic, stateOf, nil)
}

// Access says whether the caller may run a plugin's command that needs
// permission (the manifest's, "" for none), and if not, why not.
type Access func(plugin, command, permission string) (allowed bool, reason string)

// HelpFor is Help for one caller: lists (all commands, a plugin's) leave out
// the commands may refuses, and say how many they left out; "help <command>"
// still explains a refused command, and adds that the caller may not run it
// and why. A nil may allows everything.
func (r *Router) HelpFor(topic string, stateOf func(plugin string) string, may Access) chat.Output {
	t := r.tab.Load()
	topic = strings.ToLower(firstWord(topic))
	note := func(plugin string) string {
		if stateOf == nil {
			return ""
		}
		switch s := stateOf(plugin); s {
		case "", "running":
			return ""
		default:
			return s
		}
	}

	switch {
	case topic == "":
		return t.helpAll(note, may)
	case isBuiltin(topic):
		return chat.Output{Title: helpUsage, Text: helpHelp}
	case topic == schedulesCommand:
		return chat.Output{Title: schedulesCommand, Text: schedulesHelp}
	case topic == approveCommand:
		return chat.Output{Title: approveUsage, Text: approveHelp}
	case topic == denyCommand:
		return chat.Output{Title: denyUsage, Text: denyHelp}
	case topic == approvalsCommand:
		return chat.Output{Title: approvalsUsage, Text: approvalsHelp}
	}
	for _, k := range []string{topic, strings.TrimRight(topic, "!")} {
		if c := t.byKey[k]; c != nil {
			out := t.helpCommand(c, note(c.plugin))
			if may != nil {
				if ok, reason := may(c.plugin, c.name, c.spec.GetPermission()); !ok {
					out.Text += "\n\nYou cannot run it: " + reason + "."
				}
			}
			return out
		}
	}
	if p := t.plugin(topic); p != nil {
		return helpPlugin(p, note(p.name), may)
	}
	return t.helpUnknown(topic)
}

func (t *table) helpAll(note func(string) string, may Access) chat.Output {
	plugins := slices.Clone(t.plugins)
	slices.SortFunc(plugins, func(a, b *plugin) int { return cmp.Compare(a.name, b.name) })
	var b strings.Builder
	hidden := 0
	for _, p := range plugins {
		cmds, h := visible(p, may)
		hidden += h
		if len(cmds) == 0 && h > 0 {
			continue // nothing of it for this caller
		}
		b.WriteString(p.name)
		if p.description != "" {
			b.WriteString(" — ")
			b.WriteString(firstLine(p.description))
		}
		if n := note(p.name); n != "" {
			b.WriteString(" (not running: ")
			b.WriteString(n)
			b.WriteString(")")
		}
		b.WriteByte('\n')
		writeCommandLines(&b, cmds)
		b.WriteByte('\n')
	}
	b.WriteString("built in\n")
	writeLine(&b, helpUsage, firstLine(helpHelp))
	writeLine(&b, schedulesCommand, schedulesHelp)
	writeLine(&b, approveUsage, approveHelp)
	writeLine(&b, denyUsage, denyHelp)
	writeLine(&b, approvalsUsage, approvalsHelp)
	b.WriteString("\nSay \"help <command>\" for the details of one command.")
	writeHidden(&b, hidden)
	return chat.Output{Title: "What I can do", Text: b.String()}
}

// visible returns the commands of p that may allows, and how many it left out.
func visible(p *plugin, may Access) ([]*command, int) {
	if may == nil {
		return p.commands, 0
	}
	cmds := make([]*command, 0, len(p.commands))
	for _, c := range p.commands {
		if ok, _ := may(p.name, c.name, c.spec.GetPermission()); ok {
			cmds = append(cmds, c)
		}
	}
	return cmds, len(p.commands) - len(cmds)
}

// writeHidden says that n commands were left out, without naming them.
func writeHidden(b *strings.Builder, n int) {
	switch {
	case n == 1:
		b.WriteString("\n1 command you do not have the permission for is not listed.")
	case n > 1:
		b.WriteString("\n" + strconv.Itoa(n) + " commands you do not have the permission for are not listed.")
	}
}

func writeCommandLines(b *strings.Builder, cmds []*command) {
	if len(cmds) == 0 {
		b.WriteString("  (no commands)\n")
	}
	for _, c := range cmds {
		writeLine(b, c.usage, firstLine(c.spec.GetHelp()))
	}
}

func writeLine(b *strings.Builder, usage, help string) {
	b.WriteString("  ")
	b.WriteString(usage)
	if help != "" {
		b.WriteString(" — ")
		b.WriteString(help)
	}
	b.WriteByte('\n')
}

func (t *table) helpCommand(c *command, note string) chat.Output {
	s := c.spec
	var b strings.Builder
	b.WriteString(strings.TrimSpace(s.GetHelp()))
	if note != "" {
		para(&b)
		b.WriteString("Plugin " + c.plugin + " is not running right now (" + note + ").")
	}
	if len(c.args) > 0 {
		para(&b)
		b.WriteString("Arguments:")
		for _, a := range c.args {
			b.WriteString("\n  ")
			b.WriteString(a.name)
			b.WriteString(" — ")
			b.WriteString(describeArg(&a, s.GetArgs()))
		}
	}
	if ex := s.GetExamples(); len(ex) > 0 {
		para(&b)
		b.WriteString("Examples:")
		for _, e := range ex {
			b.WriteString("\n  ")
			b.WriteString(e)
		}
	}
	perm := s.GetPermission()
	if perm == "" {
		perm = "none, anyone may run it"
	}
	plugin := c.plugin
	if p := t.plugin(c.plugin); p != nil && len(p.commands) > 1 {
		var others []string
		for _, o := range p.commands {
			if o != c {
				others = append(others, o.name)
			}
		}
		plugin += " (also " + strings.Join(others, ", ") + ")"
	}
	fields := []chat.Field{
		{Title: "Plugin", Value: plugin, Short: true},
		{Title: "Permission", Value: perm, Short: true},
	}
	if al := s.GetAliases(); len(al) > 0 {
		fields = append(fields, chat.Field{Title: "Aliases", Value: strings.Join(al, ", "), Short: true})
	}
	return chat.Output{Title: c.usage, Text: b.String(), Fields: fields}
}

// describeArg says in words what argument a accepts.
func describeArg(a *arg, specs []*pluginv1.ArgSpec) string {
	var parts []string
	switch a.typ {
	case pluginv1.ArgType_ARG_TYPE_INT:
		parts = append(parts, "a whole number")
	case pluginv1.ArgType_ARG_TYPE_BOOL:
		parts = append(parts, "yes or no")
	case pluginv1.ArgType_ARG_TYPE_ENUM:
		parts = append(parts, "one of "+strings.Join(a.enum, ", "))
	case pluginv1.ArgType_ARG_TYPE_DURATION:
		parts = append(parts, "a duration such as 90s or 5m")
	default:
		parts = append(parts, "text")
	}
	if a.rest {
		parts[0] += ", the rest of the line"
	}
	if a.re != nil {
		for _, s := range specs {
			if s.GetName() == a.name {
				parts = append(parts, "matching "+s.GetPattern())
			}
		}
	}
	switch {
	case a.required:
		parts = append(parts, "required")
	case a.hasDef && !a.secret:
		parts = append(parts, "default "+a.def)
	default:
		parts = append(parts, "optional")
	}
	if a.secret {
		parts = append(parts, "secret")
	}
	for _, s := range specs {
		if s.GetName() == a.name && s.GetHelp() != "" {
			return strings.Join(parts, ", ") + ". " + sentence(s.GetHelp())
		}
	}
	return strings.Join(parts, ", ")
}

func helpPlugin(p *plugin, note string, may Access) chat.Output {
	title := "The " + p.name + " plugin"
	if p.version != "" {
		title += " (" + p.version + ")"
	}
	var b strings.Builder
	if p.description != "" {
		b.WriteString(strings.TrimSpace(p.description))
		b.WriteByte('\n')
	}
	if note != "" {
		b.WriteString("It is not running right now (" + note + ").\n")
	}
	cmds, hidden := visible(p, may)
	if len(cmds) > 0 || hidden == 0 {
		writeCommandLines(&b, cmds)
	}
	writeHidden(&b, hidden)
	return chat.Output{Title: title, Text: strings.TrimRight(b.String(), "\n")}
}

func (t *table) helpUnknown(topic string) chat.Output {
	text := "I have no help about " + quote(topic) + "."
	var fields []chat.Field
	c := t.closest(topic)
	best := 0
	if c != nil {
		best = distanceToCommand(topic, c)
	}
	var plugin string
	for _, p := range t.plugins {
		if d, ok := nearness(topic, p.name); ok && ((c == nil && plugin == "") || d < best) {
			plugin, best = p.name, d
		}
	}
	switch {
	case plugin != "":
		text += " Did you mean the " + quote(plugin) + " plugin?"
	case c != nil:
		text += " Did you mean " + quote(c.name) + "?"
		fields = append(fields, chat.Field{Title: "Usage", Value: c.usage})
	}
	text += " Say \"help\" to list everything I can do."
	return chat.Output{Text: text, Fields: fields, Status: "warning"}
}

// Reply renders the answer the bot gives by itself for a result no plugin
// handles: Unknown (with the suggestion and its usage), Malformed (the
// problem and the usage), Empty and TooLong. For Matched and Help it returns
// the zero Output; render Help with Router.Help.
func (res Result) Reply() chat.Output {
	switch res.Kind {
	case Unknown:
		text := sentence(res.Problem)
		var fields []chat.Field
		if res.Suggestion != "" {
			text += " Did you mean " + quote(res.Suggestion) + "?"
			fields = append(fields, chat.Field{Title: "Usage", Value: res.Usage})
		} else {
			text += " Say \"help\" to list everything I can do."
		}
		return chat.Output{Text: text, Fields: fields, Status: "warning"}
	case Malformed:
		text := sentence(res.Problem)
		if name := res.Command.GetName(); name != "" {
			text += " Say \"help " + name + "\" for details."
		}
		return chat.Output{Text: text, Fields: []chat.Field{{Title: "Usage", Value: res.Usage}}, Status: "warning"}
	case Empty:
		return chat.Output{Text: "Yes? Say \"help\" to see what I can do."}
	case TooLong:
		return chat.Output{Text: sentence(res.Problem), Status: "warning"}
	}
	return chat.Output{}
}

// sentence capitalises s and ends it with a full stop if it has no final
// punctuation.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, size := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[size:]
	if last, _ := utf8.DecodeLastRuneInString(s); !strings.ContainsRune(".!?…", last) {
		s += "."
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

func para(b *strings.Builder) {
	if b.Len() > 0 {
		b.WriteString("\n\n")
	}
}

// distanceToCommand is the smallest edit distance between q and c's keys.
func distanceToCommand(q string, c *command) int {
	best := -1
	for _, k := range c.keys {
		if d := levenshtein.ComputeDistance(q, k); best < 0 || d < best {
			best = d
		}
	}
	return best
}
