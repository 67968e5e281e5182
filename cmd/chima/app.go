package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chimaops/chima/adapters/shell"
	"github.com/chimaops/chima/core/approvals"
	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/engine"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// app is the bot's parts wired from one config file.
type app struct {
	cfg    *config.Config
	log    *slog.Logger
	store  *store.Store
	host   *pluginhost.Host
	router *router.Router
	policy *policy.Policy
	bot    *bot.Bot
	// engine assembled the bot, its router and plugin host (withBot).
	engine  *engine.Engine
	metrics *bot.Metrics
	// redact masks the configured secret values in logs, chat, the audit
	// log and stored text.
	redact *redact.Redactor
	// startErrs are the plugins that could not start; the bot runs without.
	startErrs []error
	// storeLock makes this process the only bot on its store (lockStore).
	storeLock io.Closer
	// adapters are the configured chat adapters, built when
	// appOptions.adapters asked for them (chima run).
	adapters *builtAdapters
}

type appOptions struct {
	// withBot opens the store and builds the bot; without it only the
	// plugins, router and policy are built (explain, plugins).
	withBot  bool
	logLevel string
	// finishJobs: when the adapters end by themselves (a console on a
	// pipe reached its end), wait for the open jobs before stopping.
	finishJobs bool
	// adapters builds the configured chat adapters and hands them to the
	// bot (chima run); one-shot commands bring their own console.
	adapters bool
	// interactive: stdin is a terminal, for a console adapter.
	interactive bool
	// replica overrides store.replica (chima run --replica).
	replica string
	// attach names the plugins to attach to, debug processes a person
	// runs, instead of starting them (chima run --attach).
	attach map[string]wire.Reattach
}

// newLogger returns the bot's logger: text lines on w at level, with every
// secret value masked.
func newLogger(level string, w io.Writer, red *redact.Redactor) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(red.Handler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))), nil
}

// secretValues lists the values of every secret the config names: the
// plugins' secrets, the GitHub webhook secret and the store's DSN.
func secretValues(cfg *config.Config, specs []pluginhost.Spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.Secrets...)
	}
	if gh := cfg.Webhooks.GitHub; gh != nil && gh.SecretEnv != "" {
		out = append(out, os.Getenv(gh.SecretEnv))
	}
	if cfg.Store.DSNEnv != "" {
		out = append(out, os.Getenv(cfg.Store.DSNEnv))
	}
	return out
}

// loadConfig loads and validates chima.yaml, reporting every problem.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func newApp(ctx context.Context, cfgPath string, o appOptions) (*app, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	specs, err := pluginSpecs(cfg)
	if err != nil {
		return nil, err
	}
	if err := applyAttach(specs, o.attach); err != nil {
		return nil, err
	}
	if !o.withBot {
		// Started only to be described (explain, plugins), beside a bot
		// that may be running: such a plugin must leave the world alone,
		// the deploy plugin the processes and checkouts of that bot's
		// deploys, which its sweep at start would end.
		for _, s := range specs {
			s.Settings["chima_describe_only"] = "true"
		}
	}
	secrets := secretValues(cfg, specs)
	var built *builtAdapters
	adapterLog := newLateHandler()
	if o.adapters {
		// Before the redactor: it must mask the secrets the adapters read.
		if built, err = buildAdapters(cfg, slog.New(adapterLog), o.interactive); err != nil {
			return nil, err
		}
		secrets = append(secrets, built.secrets...)
	}
	red := redact.New(secrets...)
	log, err := newLogger(o.logLevel, os.Stderr, red)
	if err != nil {
		return nil, err
	}
	adapterLog.Set(log.Handler())
	a := &app{cfg: cfg, log: log, metrics: bot.NewMetrics(), redact: red, adapters: built}
	a.policy = policy.NewWithPeople(cfg.People, cfg.Roles, cfg.Policies)

	if o.withBot {
		// Before anything starts: a second bot must not touch the first's
		// jobs, nor start plugins beside its own. SQLite's lock is a file
		// beside the store, PostgreSQL's an advisory lock of the session.
		if cfg.Store.Driver != config.DriverPostgres {
			f, err := lockStore(cfg.Store.Path)
			if err != nil {
				return nil, err
			}
			if f != nil {
				a.storeLock = f
			}
		}
		a.store, err = openStore(ctx, cfg)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("open store: %w", err)
		}
		if cfg.Store.Driver == config.DriverPostgres {
			a.store.SetReplica(store.Replica{ID: replicaID(cfg, o.replica), Lease: cfg.Store.Lease})
			if a.storeLock, err = a.store.HoldRunLock(ctx); err != nil {
				a.close()
				return nil, err
			}
		}
	}

	if !o.withBot {
		a.router = router.New(router.Options{Name: cfg.Bot.Name, Prefix: cfg.Bot.Prefix, MaxMessageBytes: cfg.Bot.MaxMessageBytes})
		ho := a.hostOptions()
		// Only the router hears of the plugins: there is no bot.
		ho.OnChange = func(name string, m *pluginv1.Manifest, s pluginhost.State) {
			if s == pluginhost.StateRunning && m != nil {
				if err := a.router.SetPlugin(name, m); err != nil {
					a.log.Error("plugin commands refused", "plugin", name, "error", err)
				}
			}
		}
		a.host = pluginhost.New(ho)
		// The host logs each failure ("plugin failed", with the next try);
		// warnStartErrs says it once more, readably, on stderr.
		a.startErrs = a.host.Start(ctx, specs)
		return a, nil
	}

	var adapters []chat.Adapter
	if built != nil {
		adapters = built.list
	}
	// Only chima run keeps the clock; one-shot commands run none. The
	// scheduler asks for the bot only once it runs, after New.
	var b *bot.Bot
	var scheduler interface{ Run(context.Context) } // nil, not a nil *Scheduler
	var schedules func(context.Context) (string, error)
	if o.adapters {
		s, list, err := a.newScheduler(func() *bot.Bot { return b })
		if err != nil {
			a.close()
			return nil, err
		}
		scheduler, schedules = s, list
	}
	runAs := map[string][]string{}
	for _, p := range cfg.Plugins {
		if len(p.RunAs) > 0 {
			runAs[p.Name] = p.RunAs
		}
	}
	a.engine, err = engine.New(ctx, engine.Options{
		Name: cfg.Bot.Name, Prefix: cfg.Bot.Prefix, MaxMessageBytes: cfg.Bot.MaxMessageBytes,
		Adapters: adapters, Plugins: specs, Store: a.store, Policy: a.policy, Logger: log,
		Host: a.hostOptions(),
		Bot: bot.Options{
			Scheduler: scheduler, Schedules: schedules, RunAs: runAs,
			Metrics:        a.metrics,
			CommandTimeout: cfg.Bot.CommandTimeout, MaxConcurrency: cfg.Bot.MaxConcurrency,
			Redactor:                  red,
			FinishJobsWhenAdaptersEnd: o.finishJobs,
			DefaultAdapter:            cfg.DefaultAdapter(),
			Lease:                     cfg.Store.Lease,
			Approvals:                 approvals.New(a.store, a.policy, nil),
			EventRetry: store.Retry{
				MaxAttempts: cfg.Webhooks.Retry.Attempts, Backoff: cfg.Webhooks.Retry.Backoff, MaxBackoff: cfg.Webhooks.Retry.MaxBackoff,
			},
		},
	})
	if err != nil {
		a.close()
		return nil, err
	}
	a.bot, a.host, a.router = a.engine.Bot(), a.engine.Plugins(), a.engine.Router()
	b = a.bot
	a.startErrs = a.engine.StartErrors()
	if a.store.Shared() {
		a.registerReplicaMetrics()
	}
	return a, nil
}

// hostOptions are the plugin host's options of every command; the engine
// adds the bot's Host service and keeps the bot's commands and restart
// metrics current.
func (a *app) hostOptions() pluginhost.Options {
	return pluginhost.Options{
		Logger:  a.log.With("component", "plugins"),
		Version: version,
	}
}

// pluginSpecs turns the config's plugins into start specs with their clean
// environments. A missing secret stops start-up: nothing runs half-configured.
func pluginSpecs(cfg *config.Config) ([]pluginhost.Spec, error) {
	var specs []pluginhost.Spec
	var problems []string
	for _, p := range cfg.Plugins {
		if p.Disabled {
			continue
		}
		env, secrets, err := p.Environ(os.LookupEnv)
		if err != nil {
			problems = append(problems, err.Error()) // it names the plugin
			continue
		}
		maxRestarts := p.MaxRestarts
		if maxRestarts == 0 {
			maxRestarts = -1 // 0 in config means never restart
		}
		settings := map[string]any{}
		for k, v := range p.Settings {
			settings[k] = v
		}
		// What every plugin may want to know of the bot it serves.
		settings["chima_config_dir"] = cfg.Dir()
		settings["chima_base_url"] = cfg.HTTP.BaseURL
		settings["chima_bot_name"] = cfg.Bot.Name
		// The chat adapters the bot runs and the one a bare room name
		// means, so that a plugin can check the rooms it will post to
		// when it starts, not fail on them later.
		settings["chima_adapters"] = strings.Join(cfg.AdapterNames(), ",")
		settings["chima_default_adapter"] = cfg.DefaultAdapter()
		specs = append(specs, pluginhost.Spec{
			Name: p.Name, Path: p.Path, Args: p.Args, Env: env, Secrets: secrets,
			SHA256: p.SHA256, Settings: settings,
			MaxRestarts: maxRestarts, RestartWindow: p.RestartWindow,
		})
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return specs, nil
}

// openTool builds the app for a one-shot command (send, explain, plugins):
// logs only errors unless --log-level says otherwise, and warns on stderr of
// plugins that did not start.
func openTool(ctx context.Context, g *globalFlags, withBot bool) (*app, error) {
	a, err := newApp(ctx, g.config, appOptions{withBot: withBot, logLevel: firstNonEmpty(g.logLevel, "error")})
	if err != nil {
		return nil, err
	}
	a.warnStartErrs()
	return a, nil
}

// pluginStatus is the host's Status with secret values masked in each
// plugin's last error (a plugin's own words when it refused to start), for
// /plugins and `chima plugins`.
func (a *app) pluginStatus() []pluginhost.Status {
	status := a.host.Status()
	for i := range status {
		status[i].LastError = a.redact.String(status[i].LastError)
		if a.bot != nil {
			status[i].Problems = a.bot.PluginProblems(status[i].Name)
		}
	}
	return status
}

// health is the host's Health, then the audit log's (unhealthy while its
// writes fail), with secret values masked: /healthz answers whoever asks.
func (a *app) health(ctx context.Context) error {
	if err := a.host.Health(); err != nil {
		return errors.New(a.redact.String(err.Error()))
	}
	if a.bot != nil {
		if err := a.bot.AuditHealth(); err != nil {
			return errors.New(a.redact.String("audit log: " + err.Error()))
		}
		// A plugin's schedule that its manifest got wrong never runs:
		// that is worth a page, as a plugin that is down is.
		if err := a.bot.SchedulesHealth(); err != nil {
			return errors.New(a.redact.String("schedules: " + err.Error()))
		}
	}
	if a.store != nil && a.store.Shared() {
		if err := a.store.DB().PingContext(ctx); err != nil {
			return errors.New(a.redact.String("store: " + err.Error()))
		}
	}
	return nil
}

// healthDetails is what /healthz says below "ok" on a shared store: which
// replica answered, and the job leases it holds.
func (a *app) healthDetails(ctx context.Context) string {
	if a.store == nil || !a.store.Shared() {
		return ""
	}
	n, err := a.store.LeasesHeld(ctx)
	if err != nil {
		return fmt.Sprintf("replica %s, store postgres: %s\n", a.store.ReplicaID(), a.redact.String(err.Error()))
	}
	return fmt.Sprintf("replica %s, %d job leases, store postgres\n", a.store.ReplicaID(), n)
}

// registerReplicaMetrics exports, on a shared store, the job leases this
// replica holds (read at each scrape), labelled with its id.
func (a *app) registerReplicaMetrics() {
	a.metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "chima_replica_job_leases",
		Help:        "Running jobs whose lease this replica holds.",
		ConstLabels: prometheus.Labels{"replica": a.store.ReplicaID()},
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n, err := a.store.LeasesHeld(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
}

// warnStartErrs says on stderr which plugins did not start, and why.
func (a *app) warnStartErrs() {
	for _, err := range a.startErrs {
		fmt.Fprintln(os.Stderr, "chima: warning:", a.redact.String(err.Error()))
	}
}

// console returns the adapter name, room and user of the console `chima
// send` talks through: the first shell adapter's, with flags taking
// precedence.
func (a *app) console(room, user string) (name, r, u string) {
	name, c := consoleConfig(a.cfg)
	return name, firstNonEmpty(room, c.Room, shell.DefaultRoom), firstNonEmpty(user, c.User, shell.DefaultUser)
}

// close stops the plugins and closes the store.
func (a *app) close() {
	switch {
	case a.engine != nil:
		if err := a.engine.Close(); err != nil { // the store is ours, closed below
			a.log.Error("stop the bot", "error", err)
		}
	case a.host != nil:
		a.host.Stop()
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			a.log.Error("close store", "error", err)
		}
	}
	if a.storeLock != nil {
		a.storeLock.Close()
	}
}
