package sdk

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// Plugin declares everything a plugin offers. Serve publishes it to the host.
type Plugin struct {
	// Name is the plugin's name, for logs and help. The host may know the
	// plugin under another name from its config; that one wins.
	Name string
	// Version is the plugin's own version.
	Version string
	// Description is one line for help.
	Description string
	// Commands are the chat commands the plugin answers.
	Commands []Command
	// Events are the webhook events the plugin handles.
	Events []EventHandler
	// Jobs are the durable job kinds the plugin runs.
	Jobs []JobHandler
	// Pages serve read-only HTTP pages (a deploy's log) on the host's HTTP
	// server, under their path prefixes.
	Pages []Page
	// Actions handle clicks on the plugin's action buttons (ActionButton).
	// The host shows a button only for a declared action, and hands a click
	// on it to that action's Run.
	Actions []Action
	// Schedules are jobs the host runs on a clock. Configure may set them
	// from the settings: the host reads them after Configure.
	Schedules []Schedule
	// OnJobInterrupted, when set, hears of each of the plugin's jobs that
	// was running when the host died (a kill -9): c.Job is the job, which is
	// not re-run; the handler reports and cleans up. Without it, an
	// EventHandler for EventJobInterrupted hears of them, as before
	// protocol minor 7.
	OnJobInterrupted func(c *Context) error
	// Settings, when set, is a pointer to the plugin's settings struct,
	// which the SDK fills from plugins[].settings of chima.yaml before it
	// calls Configure or Validate. A key's name is the field's `settings`
	// tag ("apps_file", with ",required" to make the key required), else
	// its `json` tag, else the field's name in lower case; a tag "-" skips
	// the field, and an embedded struct without a tag lends its fields. A
	// field may be a string, bool, integer, float, time.Duration (written
	// "30s", "5m"), a type with UnmarshalText (read from a string), a
	// struct, a map with string keys, a slice, a pointer to any of these,
	// or `any` (the value as it is). Decoding is strict: an unknown key
	// (but the host's own chima_* keys at the top), a value of the wrong
	// type or a missing required key is a Problem whose Key is its dotted
	// path ("targets.demo-db.retention.keep_daily", "subscriptions[0].room"),
	// every one reported at once in a *SettingsError, and then Configure or
	// Validate is not called. Scalars are read loosely as far as they stay
	// unambiguous: a number or true/false where a string is wanted is its
	// text, a string that spells a number or bool ("7", "true") is that
	// number or bool. A string where a mapping or list is wanted is read as
	// YAML (or JSON) of one: the form settings had before they could nest,
	// and still have from a host older than protocol minor 8. Keys that are
	// absent leave their fields as they were, so the struct's initial
	// values are the defaults. With Settings and no Validate, `chima config
	// validate` reports what decoding finds.
	Settings any
	// Configure, when set, receives the plugin's settings from chima.yaml
	// before the first call, after Settings (if set) was filled. settings
	// holds the top-level keys as strings (a nested value as its JSON), as
	// Context.Setting does. An error stops the plugin from starting and is
	// shown to the operator; return a *SettingsError to say which settings,
	// files, lines and keys are wrong.
	Configure func(settings map[string]string) error
	// Validate, when set, checks settings as Configure would receive them
	// (Settings filled first, as for Configure), and the files they name,
	// without acting on them: it writes nothing, starts nothing and keeps
	// nothing. `chima config validate` calls it in a process started only
	// for that. It returns nil when the settings are valid, a
	// *SettingsError listing the problems, or another error, which is
	// reported as one problem. A plugin with Configure but neither Validate
	// nor Settings is reported as not validated.
	Validate func(settings map[string]string) error
}

// Problem is one thing wrong with a plugin's settings, or with a file they
// name.
type Problem struct {
	// File is the file the problem is in, such as an apps file, or "" for
	// the settings themselves.
	File string
	// Line is the 1-based line in File, or 0 when unknown.
	Line int
	// Key is the key at fault: a settings key ("apps_file") when File is "",
	// else a dotted key path in File ("project-x.heroku.apps"); "" for the
	// whole file.
	Key string
	// Message says what is wrong, for a person, without repeating File,
	// Line or Key.
	Message string
}

// String renders the problem as "file:line: key: message", leaving out the
// parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// SettingsError says that a plugin's settings are wrong, listing every
// problem found. Configure and Validate return it.
type SettingsError struct {
	// Problems are in the order found; never empty.
	Problems []Problem
}

// Error lists the problems, one a line.
func (e *SettingsError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Command declares one chat command.
type Command struct {
	// Name is the keyword that starts the command: "hello", "deploy:lock".
	Name string
	// Aliases are other keywords for it.
	Aliases []string
	// Usage is shown when the command is used wrongly: "hello <name>".
	Usage string
	// Help says what the command does.
	Help string
	// Args are the typed arguments; the host validates them.
	Args []Arg
	// Permission is what a user needs to run the command; empty for anyone.
	Permission string
	// Pattern is an optional RE2 pattern for grammars positional arguments
	// can't express; its named groups fill Args of the same name.
	Pattern string
	// Examples are shown in help.
	Examples []string
	// Run handles the command.
	Run func(c *Context) error
}

// ArgType is the type of an argument, checked by the host.
type ArgType int

// Argument types.
const (
	String ArgType = iota
	Int
	Bool
	Enum
	Duration
)

// Arg declares one typed argument of a command.
type Arg struct {
	// Name is how the handler reads it (Context.Arg) and how help and a
	// pattern's named groups refer to it.
	Name string
	// Type is what the host checks the value against before the handler
	// runs: String (the default), Int, Bool, Enum or Duration.
	Type ArgType
	// Required arguments must be given for the command to run (the usage
	// shows them as <name>, optional ones as [name]).
	Required bool
	// Default is used when the argument is absent.
	Default string
	// Enum lists the allowed values of an Enum argument.
	Enum []string
	// Secret arguments are never logged, audited or echoed.
	Secret bool
	// Rest makes the last positional argument take the rest of the line.
	Rest bool
	// Help says what the argument is, in the command's help.
	Help string
	// Pattern is an optional RE2 pattern the value must match in full.
	Pattern string
}

// Action is one kind of button click the plugin handles: a click on a
// button made with ActionButton(label, Name, value, style), wherever the
// plugin posted it (a reply, progress, Post or Update). Run gets the click in
// Context.Interaction: its Value, the message the button was on, and who
// clicked (Context.User, with their roles); replies go to that message's
// thread. A button can outlive what it was for (a Cancel button on a
// deployment that has ended): Run says so to the person, with a UserError.
type Action struct {
	// Name identifies the action within the plugin: "cancel". Letters,
	// digits and "-_.:" only; the plugin's name and Name together stay
	// under 245 bytes.
	Name string
	// Help says what a click does, for operators.
	Help string
	// Command is the command the action stands for, if any ("deploy:cancel"):
	// the host checks a click as that command typed by the person who
	// clicked (the policy's rooms and the permission), so a button grants
	// nothing its command would not. Empty: a click is checked as a command
	// named Name that needs Permission.
	Command string
	// Permission is what the clicker needs when Command is empty; empty for
	// anyone the room rules let in.
	Permission string
	// Run handles a click.
	Run func(c *Context) error
}

// MaxButtonValue is the most bytes an action button's value may hold; the
// host refuses to post a longer one.
const MaxButtonValue = 2000

// CommandButton returns a button that runs command (as typed after the
// bot's name: "deploy:cancel 42") as the person who clicks it, checked
// exactly as if they had typed it; the handler sees Context.Click set.
// Chat services without buttons show the command to type instead.
func CommandButton(label, command string) *Button {
	return &Button{Label: label, Command: command}
}

// ActionButton returns a button whose click is handed to the plugin's Action
// called action, with value (at most MaxButtonValue bytes: an id, not a
// payload; chat services keep it out of sight, but it is not secret). style
// is ButtonDefault, ButtonPrimary or ButtonDanger. Chat services without buttons show just the
// label: give the person a command to type as well where it matters.
func ActionButton(label, action, value string, style ButtonStyle) *Button {
	return &Button{Label: label, Action: action, Value: value, Style: style}
}

// EventHandler handles one webhook event type such as "github:deployment".
type EventHandler struct {
	// Type is the event type: "source:kind" ("github:deployment"),
	// "source:*" for every kind of a source ("generic:*"), or
	// EventJobInterrupted.
	Type string
	// Run handles one event; Context.Event carries its payload.
	Run func(c *Context) error
}

// JobHandler runs one kind of durable job. Returning nil ends the job as
// succeeded; an error ends it as failed with the error as detail.
type JobHandler struct {
	// Kind names the jobs it runs, as Context.Enqueue names them
	// ("deploy.run"); unique within the plugin.
	Kind string
	// Run runs one attempt of a job; Context.Job says which.
	Run func(c *Context) error
}

// Page serves GET requests under Prefix ("/deployments/") with an ordinary
// http.Handler. The host forwards the request; the response is buffered.
type Page struct {
	// Prefix is the start of the paths the page serves: it gets every GET
	// whose path begins with it, unless another page's longer prefix
	// matches too. It begins with "/".
	Prefix string
	// Handler serves the requests; what it writes is buffered and sent as
	// the response.
	Handler http.Handler
}

// EventJobInterrupted is the event type a plugin lists in Events to hear of
// its jobs that were running when the host died; Context.InterruptedJob
// decodes the job. The job is not re-run: the handler reports and cleans up.
// Plugin.OnJobInterrupted is the newer way to hear of them; a host of
// protocol minor 7 calls whichever the plugin has.
const EventJobInterrupted = wire.EventJobInterrupted

// ErrShutdown is the cause (context.Cause) of a handler's context when the
// host stopped it because Chima is shutting down, rather than a person
// cancelling it or a timeout: a job should then report itself interrupted.
// Context.ShuttingDown tests for it.
var ErrShutdown = wire.ErrShutdown

// UserError is a failure meant for the person in chat: bad input, a refused
// action. It is shown as it is; other errors are shown as the plugin failing.
type UserError struct {
	// Summary is the one line the person reads: what went wrong.
	Summary string
	// Detail says more (why, what to do), shown below the summary.
	Detail string
	// Argument names the command argument at fault, if one is. It travels
	// with the error to the host (and to sdktest's Result.Errors); the
	// host does not show it yet, so say it in Summary too.
	Argument string
}

// Error returns the summary, and the detail after a colon when there is one.
func (e *UserError) Error() string {
	if e.Detail == "" {
		return e.Summary
	}
	return e.Summary + ": " + e.Detail
}

// Errorf returns a *UserError whose summary is formatted.
func Errorf(format string, args ...any) error {
	return &UserError{Summary: fmt.Sprintf(format, args...)}
}

// ErrNoHost is returned by host calls when the plugin runs without a host
// service (for example in explain-only mode).
var ErrNoHost = errors.New("no host service available")

// manifest converts the declaration to the protocol's manifest.
func (p *Plugin) manifest() *pluginv1.Manifest {
	m := &pluginv1.Manifest{
		Name:          p.Name,
		Version:       p.Version,
		Description:   p.Description,
		Capabilities:  []string{capabilityMultiplex},
		ProtocolMinor: protocolMinor,
	}
	for _, c := range p.Commands {
		spec := &pluginv1.CommandSpec{
			Name: c.Name, Aliases: c.Aliases, Usage: c.Usage, Help: c.Help,
			Permission: c.Permission, Pattern: c.Pattern, Examples: c.Examples,
		}
		for _, a := range c.Args {
			spec.Args = append(spec.Args, &pluginv1.ArgSpec{
				Name: a.Name, Type: pluginv1.ArgType(a.Type), Required: a.Required,
				Default: a.Default, Enum: a.Enum, Secret: a.Secret, Rest: a.Rest,
				Help: a.Help, Pattern: a.Pattern,
			})
		}
		m.Commands = append(m.Commands, spec)
	}
	for _, e := range p.Events {
		m.Events = append(m.Events, e.Type)
	}
	for _, j := range p.Jobs {
		m.JobKinds = append(m.JobKinds, j.Kind)
	}
	for _, pg := range p.Pages {
		m.HttpPaths = append(m.HttpPaths, pg.Prefix)
	}
	for _, a := range p.Actions {
		m.Actions = append(m.Actions, &pluginv1.ActionSpec{Name: a.Name, Help: a.Help, Command: a.Command, Permission: a.Permission})
	}
	if len(p.Pages) > 0 {
		m.Capabilities = append(m.Capabilities, wire.CapabilityHTTP)
	}
	if p.OnJobInterrupted != nil || slices.ContainsFunc(p.Events, func(e EventHandler) bool { return e.Type == EventJobInterrupted }) {
		m.Capabilities = append(m.Capabilities, wire.CapabilityJobInterrupted)
	}
	m.Schedules = p.scheduleSpecs()
	return m
}
