package router

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// DefaultMaxMessageBytes is the command length limit used when
// Options.MaxMessageBytes is zero or negative.
const DefaultMaxMessageBytes = 16 << 10

// Sentinel errors returned (wrapped) by SetPlugin. Test with errors.Is.
var (
	// ErrConflict means a command name or alias is already taken, by another
	// plugin, by another command of the same plugin, or by a built-in
	// command such as "help".
	ErrConflict = errors.New("command name already taken")
	// ErrInvalidManifest means a manifest declares something the router
	// cannot use: a bad command name, a pattern that does not compile, an
	// argument spec that makes no sense.
	ErrInvalidManifest = errors.New("invalid plugin manifest")
)

// builtins are the keywords the router answers itself (help, commands)
// or hands to the bot (schedules); no plugin command may take them.
var builtins = []string{"help", "commands", schedulesCommand, approveCommand, denyCommand, approvalsCommand}

// schedulesCommand lists the scheduled commands (Kind Schedules).
const schedulesCommand = "schedules"

// approveCommand, denyCommand and approvalsCommand approve, deny and list
// approval requests (Kinds Approve, Deny, Approvals).
const (
	approveCommand   = "approve"
	denyCommand      = "deny"
	approvalsCommand = "approvals"
)

// Options configure a Router.
type Options struct {
	// Name is the bot's name as people type it, such as "chima" (a leading
	// "@" is ignored). Matching is case-insensitive. Empty means the bot is addressed only through
	// Prefix, direct messages and native mentions.
	Name string
	// Prefix is an optional command prefix such as "!": "!deploy x" is
	// addressed to the bot. Matched exactly, with no space needed after it.
	Prefix string
	// MaxMessageBytes is the longest command text Parse accepts; longer text
	// is TooLong. Zero or negative means DefaultMaxMessageBytes.
	MaxMessageBytes int
}

// Router maps chat text to plugin commands. It is safe for concurrent use;
// the zero value is not usable, call New.
type Router struct {
	name   string
	prefix string
	max    int

	mu  sync.Mutex // serialises writers; readers only Load tab
	tab atomic.Pointer[table]
}

// New returns a Router with no plugins.
func New(o Options) *Router {
	r := &Router{name: strings.TrimPrefix(strings.TrimSpace(o.Name), "@"), prefix: o.Prefix, max: o.MaxMessageBytes}
	if r.max <= 0 {
		r.max = DefaultMaxMessageBytes
	}
	r.tab.Store(buildTable(nil))
	return r
}

// Entry is one registered command and the plugin that owns it.
type Entry struct {
	// Plugin is the name the plugin was registered under.
	Plugin string
	// Spec is the command as declared; callers must not modify it.
	Spec *pluginv1.CommandSpec
}

// SetPlugin registers the commands of plugin, replacing any it had before.
// The manifest is validated first and, on any error, nothing changes: the
// previous commands of plugin (if any) stay registered. Errors wrap
// ErrConflict (a name or alias owned by another plugin or built in) or
// ErrInvalidManifest (bad command names, patterns that are not valid RE2, a
// named group without an argument, argument specs that make no sense); all
// problems found are reported together.
//
// The router keeps its own copy of m's commands.
func (r *Router) SetPlugin(plugin string, m *pluginv1.Manifest) error {
	if plugin == "" {
		return fmt.Errorf("register plugin: %w: empty plugin name", ErrInvalidManifest)
	}
	if m == nil {
		return fmt.Errorf("register plugin %q: %w: no manifest", plugin, ErrInvalidManifest)
	}
	p, err := compilePlugin(plugin, m)
	if err != nil {
		return fmt.Errorf("register plugin %q: %w", plugin, err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.tab.Load()
	var errs []error
	for _, c := range p.commands {
		for _, k := range c.keys {
			if o, ok := old.byKey[k]; ok && o.plugin != plugin {
				errs = append(errs, fmt.Errorf("%w: %q is already a command of plugin %q", ErrConflict, k, o.plugin))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("register plugin %q: %w", plugin, errors.Join(errs...))
	}
	plugins := slices.Clone(old.plugins)
	if i := old.pluginIndex(plugin); i >= 0 {
		plugins[i] = p // keep its place in the pattern order
	} else {
		plugins = append(plugins, p)
	}
	r.tab.Store(buildTable(plugins))
	return nil
}

// RemovePlugin unregisters every command of plugin. Removing a plugin that
// is not registered does nothing.
func (r *Router) RemovePlugin(plugin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.tab.Load()
	i := old.pluginIndex(plugin)
	if i < 0 {
		return
	}
	r.tab.Store(buildTable(slices.Delete(slices.Clone(old.plugins), i, i+1)))
}

// Commands lists every registered command with its plugin, sorted by
// command name. The built-in help command is not listed.
func (r *Router) Commands() []Entry {
	return slices.Clone(r.tab.Load().sorted)
}

// plugin is one registered plugin, compiled.
type plugin struct {
	name        string
	description string
	version     string
	commands    []*command // manifest order
}

// table is an immutable snapshot of all registered commands. It is never
// modified after buildTable returns.
type table struct {
	plugins  []*plugin           // registration order
	byKey    map[string]*command // lower-case names and aliases
	patterns []*command          // commands with a pattern, plugin then manifest order
	sorted   []Entry             // by command name
	suggest  []suggestKey        // what Unknown keywords are compared with
}

// suggestKey is one string a mistyped keyword may be close to.
type suggestKey struct {
	key     string
	cmd     *command
	penalty int // 1 for the bare base of a "name:suffix" command
}

func buildTable(plugins []*plugin) *table {
	t := &table{plugins: plugins, byKey: make(map[string]*command)}
	for _, p := range plugins {
		for _, c := range p.commands {
			for _, k := range c.keys {
				t.byKey[k] = c
			}
			if c.re != nil {
				t.patterns = append(t.patterns, c)
			}
			t.sorted = append(t.sorted, Entry{Plugin: p.name, Spec: c.spec})
		}
	}
	slices.SortFunc(t.sorted, func(a, b Entry) int { return strings.Compare(a.Spec.GetName(), b.Spec.GetName()) })
	for _, e := range t.sorted {
		c := t.byKey[e.Spec.GetName()]
		for _, k := range c.keys {
			t.suggest = append(t.suggest, suggestKey{key: k, cmd: c})
		}
	}
	// "deploy:lock" is also reachable from a mistyped "deplyo" when there
	// is no plain "deploy" to suggest instead.
	for _, e := range t.sorted {
		c := t.byKey[e.Spec.GetName()]
		for _, k := range c.keys {
			if base, _, ok := strings.Cut(k, ":"); ok {
				if _, exists := t.byKey[base]; !exists {
					t.suggest = append(t.suggest, suggestKey{key: base, cmd: c, penalty: 1})
				}
			}
		}
	}
	return t
}

func (t *table) pluginIndex(name string) int {
	return slices.IndexFunc(t.plugins, func(p *plugin) bool { return p.name == name })
}

func (t *table) plugin(name string) *plugin {
	if i := t.pluginIndex(name); i >= 0 {
		return t.plugins[i]
	}
	return nil
}

// lookup finds the command whose name or alias is kw, ignoring case,
// without allocating for short keywords.
func (t *table) lookup(kw string) *command {
	if len(kw) <= 64 {
		var buf [64]byte
		ascii := true
		for i := 0; i < len(kw); i++ {
			c := kw[i]
			if c >= 0x80 {
				ascii = false
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if ascii {
			return t.byKey[string(buf[:len(kw)])]
		}
	}
	return t.byKey[strings.ToLower(kw)]
}

// cloneSpec copies a command spec so later changes by the caller cannot race
// with readers of the table.
func cloneSpec(s *pluginv1.CommandSpec) *pluginv1.CommandSpec {
	return proto.Clone(s).(*pluginv1.CommandSpec)
}
