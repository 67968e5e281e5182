// Package engine assembles Chima's core into a running bot, for the chima
// command and for programs that embed Chima as a library.
//
// Embedding needs three things: at least one chat adapter (a
// core/chat.Adapter, such as adapters/shell's console), the plugins to run
// (pluginhost.Spec: a plugin is an executable that speaks the plugin
// protocol, built with the sdk), and a place for the store (a SQLite file
// by default). Everything else has a default: the bot's name "chima", the
// prefix "!", a policy that lets everyone run every command everywhere, a
// logger that discards. New builds the parts and starts the plugins; Run
// serves chat until its context ends; Close stops the plugins and closes
// what New opened:
//
//	e, err := engine.New(ctx, engine.Options{
//		Adapters:  []chat.Adapter{shell.New(shell.Options{})},
//		Plugins:   []pluginhost.Spec{{Name: "hello", Path: "./hello"}},
//		StorePath: "chima.db",
//	})
//	if err != nil { … }
//	defer e.Close()
//	err = e.Run(ctx)
//
// An Engine holds no package-level state: several can run in one process,
// each on a store of its own.
package engine

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// Options configure an Engine. Every field has a default, but a bot without
// an adapter hears nobody: give it one in Adapters, or add one with
// Bot().AddAdapter before Run.
type Options struct {
	// Name is the bot's name: the word that addresses it in chat ("chima
	// hello world"); default "chima".
	Name string
	// Prefix is the short way to address it ("!hello world"); default "!".
	Prefix string
	// MaxMessageBytes bounds the text of one command; default
	// router.DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Adapters are the chat services the bot listens on and answers in.
	Adapters []chat.Adapter
	// Plugins are the plugin processes to start. A plugin that cannot
	// start is no error of New: the bot runs without it (StartErrors).
	Plugins []pluginhost.Spec
	// Store keeps jobs, locks, plugins' state and logs, and the audit log.
	// Nil: New opens the SQLite file at StorePath, and Close closes it. A
	// store passed in is the caller's to close.
	Store *store.Store
	// StorePath is the SQLite file opened when Store is nil; default
	// config.DefaultStorePath ("chima.db", in the working directory).
	StorePath string
	// Policy decides who may run which command where. Nil: everyone may
	// run every command everywhere.
	Policy *policy.Policy
	// Logger receives the bot's and the plugin host's logs; nil discards
	// them.
	Logger *slog.Logger
	// Host configures the plugin host (its Version, say). Its Logger
	// defaults to Logger; its HostService is the bot's and is set by New;
	// OnChange and OnRestart, when set, are called after the engine's own
	// (which keep the bot's commands and restart metrics current).
	Host pluginhost.Options
	// Bot holds the rest of the bot's options: command timeout,
	// concurrency, redactor, approvals, scheduler, run-as rules, and so
	// on. Its Router, Policy, Plugins, Store, Adapters and Logger are set
	// by New from the fields above; its Name from Name; its Metrics
	// default to bot.NewMetrics().
	Bot bot.Options
}

// Engine is an assembled bot: router, policy, plugin host, store and the
// bot itself, with its plugins started. Create it with New, serve with
// Run, stop with Close.
type Engine struct {
	bot       *bot.Bot
	host      *pluginhost.Host
	router    *router.Router
	store     *store.Store
	ownStore  bool
	startErrs []error
}

// New assembles the bot Options describe and starts its plugins; nothing
// is served until Run. ctx bounds the plugins' start.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Name == "" {
		o.Name = "chima"
	}
	if o.Prefix == "" {
		o.Prefix = "!"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Policy == nil {
		o.Policy = policy.NewWithPeople(nil, nil, nil)
	}
	e := &Engine{store: o.Store}
	if e.store == nil {
		path := o.StorePath
		if path == "" {
			path = config.DefaultStorePath
		}
		st, err := store.Open(ctx, "sqlite", path)
		if err != nil {
			return nil, fmt.Errorf("engine: open store: %w", err)
		}
		e.store, e.ownStore = st, true
	}
	e.router = router.New(router.Options{Name: o.Name, Prefix: o.Prefix, MaxMessageBytes: o.MaxMessageBytes})

	bo := o.Bot
	bo.Router, bo.Policy, bo.Store, bo.Adapters, bo.Logger, bo.Name = e.router, o.Policy, e.store, o.Adapters, o.Logger, o.Name
	if bo.Metrics == nil {
		bo.Metrics = bot.NewMetrics()
	}

	// The bot is built after the host it calls; the host asks for the
	// Host service only once a plugin starts, by which time e.bot is set.
	ho := o.Host
	if ho.Logger == nil {
		ho.Logger = o.Logger.With("component", "plugins")
	}
	ho.HostService = func(name string) pluginv1.HostServer { return e.bot.HostService(name) }
	onChange, onRestart := o.Host.OnChange, o.Host.OnRestart
	ho.OnChange = func(name string, m *pluginv1.Manifest, s pluginhost.State) {
		e.bot.PluginChanged(name, m, s)
		if onChange != nil {
			onChange(name, m, s)
		}
	}
	ho.OnRestart = func(name string) {
		bo.Metrics.PluginRestarts.WithLabelValues(name).Inc()
		if onRestart != nil {
			onRestart(name)
		}
	}
	e.host = pluginhost.New(ho)
	bo.Plugins = e.host
	e.bot = bot.New(bo)

	// The host logs each failure ("plugin failed", with the next try); the
	// caller may say it once more (StartErrors).
	e.startErrs = e.host.Start(ctx, o.Plugins)
	return e, nil
}

// Run serves chat: it starts the job workers and every adapter, and blocks
// until ctx ends or every adapter has stopped (a console reached the end of
// its input). Then it lets the commands in flight finish, stops the jobs and
// flushes the audit log. It returns nil on a clean stop, whichever way it
// came. Run once; Close after.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.bot.Run(ctx); err != nil {
		return fmt.Errorf("engine: run: %w", err)
	}
	return nil
}

// Close stops the plugins and closes the store New opened. Call it after
// Run has returned, or instead of Run.
func (e *Engine) Close() error {
	e.host.Stop()
	if e.ownStore {
		if err := e.store.Close(); err != nil {
			return fmt.Errorf("engine: close store: %w", err)
		}
	}
	return nil
}

// StartErrors are the plugins that could not start, one error each naming
// the plugin; the bot runs without them, and the host tries again as each
// Spec's restart rules say.
func (e *Engine) StartErrors() []error { return e.startErrs }

// Bot is the assembled bot: for its health, its pages and its events
// queue, and for tests.
func (e *Engine) Bot() *bot.Bot { return e.bot }

// Plugins is the plugin host: the plugins' status and health.
func (e *Engine) Plugins() *pluginhost.Host { return e.host }

// Router is the bot's command router, which knows every plugin's commands.
func (e *Engine) Router() *router.Router { return e.router }

// Store is the store the bot runs on: Options.Store, or the SQLite file New
// opened.
func (e *Engine) Store() *store.Store { return e.store }
