// Package config loads and validates chima.yaml, the one file that says what a
// Chima bot is: its name, the chat adapters it listens on, where it keeps its
// state, its HTTP server, the plugins it runs and who may do what where.
//
// Loading is all or nothing: Load and Parse either return a Config that has
// passed every check, or a *ValidationError listing every problem found, each
// with file, line and key path:
//
//	chima.yaml:4: bot.nmae: unknown key (did you mean "name"?)
//	chima.yaml:12: plugins[1].path: file not found: bin/plugins/nope
//
// Relative paths (a plugin's path, the SQLite file) are resolved against the
// directory of the config file, so a config works whatever the working
// directory of the process. Secrets are never in the file: the file names the
// environment variables that hold them (PluginConfig.Secrets, StoreConfig.DSNEnv).
package config

import "time"

// Defaults applied by Load and Parse to keys that are absent (or null) in the file.
const (
	// DefaultCommandTimeout is bot.command_timeout's default.
	DefaultCommandTimeout = 30 * time.Second
	// DefaultMaxConcurrency is bot.max_concurrency's default.
	DefaultMaxConcurrency = 64
	// DefaultMaxMessageBytes is bot.max_message_bytes's default.
	DefaultMaxMessageBytes = 4000
	// DefaultStoreDriver is store.driver's default.
	DefaultStoreDriver = DriverSQLite
	// DefaultStorePath is store.path's default for sqlite, beside the config file.
	DefaultStorePath = "chima.db"
	// DefaultMaxRestarts is plugins[].max_restarts's default.
	DefaultMaxRestarts = 5
	// DefaultRestartWindow is plugins[].restart_window's default.
	DefaultRestartWindow = time.Minute
)

// Store drivers accepted in store.driver.
const (
	// DriverSQLite is the embedded SQLite store, the default.
	DriverSQLite = "sqlite"
	// DriverPostgres is PostgreSQL, for several replicas sharing the work.
	DriverPostgres = "postgres"
)

// Config is the whole of chima.yaml. The zero value is not valid; get one from
// Load or Parse, which apply defaults, resolve relative paths and validate.
type Config struct {
	// Bot is the bot's identity and its limits.
	Bot BotConfig `yaml:"bot"`
	// Adapters are the chat services the bot listens on, each a named
	// instance of an adapter type ("slack", "shell"). Several may run at once,
	// of one type or of several.
	Adapters []AdapterConfig `yaml:"adapters"`
	// Store says where durable state (jobs, locks, audit, deployments) lives.
	Store StoreConfig `yaml:"store"`
	// HTTP configures the server for webhooks, health and metrics.
	HTTP HTTPConfig `yaml:"http"`
	// Webhooks configures the webhook receivers on the HTTP server.
	Webhooks WebhooksConfig `yaml:"webhooks"`
	// Plugins are the plugin processes the bot runs, in start order.
	Plugins []PluginConfig `yaml:"plugins"`
	// People maps a person's name to the accounts they speak from, each
	// "adapter:userid" ("slack:U024BE7LH", "shell:alice"): one person across
	// adapters, whose roles apply whichever account they use. An account
	// belongs to one person at most.
	People map[string][]string `yaml:"people"`
	// Roles maps a role name to its members and permissions.
	Roles map[string]Role `yaml:"roles"`
	// Policies restrict where commands may run and which permission they need.
	Policies []Policy `yaml:"policies"`
	// Schedules are chat commands the bot runs on a clock.
	Schedules []Schedule `yaml:"schedules"`

	// meta remembers where each key was in the file, for error messages.
	meta *meta
	// dir is the base directory of relative paths.
	dir string
}

// BotConfig is the bot's identity and its limits.
type BotConfig struct {
	// Name is how people address the bot: "chima …", "@chima …", "chima: …".
	// Required; lowercase letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// Prefix is an optional short prefix that addresses the bot too ("!deploy …"):
	// one to three characters, none of them a letter, digit or space.
	Prefix string `yaml:"prefix"`
	// CommandTimeout bounds how long one command may run (default 30s).
	CommandTimeout time.Duration `yaml:"command_timeout"`
	// MaxConcurrency is the number of commands in flight at once (default 64).
	MaxConcurrency int `yaml:"max_concurrency"`
	// MaxMessageBytes is the size above which an incoming message is refused
	// (default 4000).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// DefaultAdapter is the adapter a bare room name means ("deployment"
	// rather than "slack:deployment"), in plugins' notify rooms for
	// example. Optional with one adapter configured, which it then
	// defaults to; it must name a configured adapter. See
	// Config.DefaultAdapter.
	DefaultAdapter string `yaml:"default_adapter"`
}

// AdapterNames returns the names of the configured chat adapters, in
// config order.
func (c *Config) AdapterNames() []string {
	out := make([]string, 0, len(c.Adapters))
	for _, a := range c.Adapters {
		out = append(out, a.Name)
	}
	return out
}

// hasAdapter reports whether an adapter of that name is configured.
func (c *Config) hasAdapter(name string) bool {
	for _, a := range c.Adapters {
		if a.Name == name {
			return true
		}
	}
	return false
}

// DefaultAdapter returns the adapter a bare room name means: bot.default_adapter,
// else the only configured adapter, else "" (a bare room then means nothing and
// a plugin must name the adapter of each room it posts to).
func (c *Config) DefaultAdapter() string {
	if c.Bot.DefaultAdapter != "" {
		return c.Bot.DefaultAdapter
	}
	if len(c.Adapters) == 1 {
		return c.Adapters[0].Name
	}
	return ""
}

// StoreConfig says where durable state lives.
type StoreConfig struct {
	// Driver is "sqlite" (the default) or "postgres".
	Driver string `yaml:"driver"`
	// Path is the SQLite database file (default "chima.db"). After loading it
	// is resolved against the config file's directory. Only for sqlite.
	Path string `yaml:"path"`
	// DSNEnv names the environment variable that holds the PostgreSQL DSN.
	// Required for postgres, not allowed for sqlite.
	DSNEnv string `yaml:"dsn_env"`
	// Replica names this process among the replicas sharing a postgres
	// store: stable across its restarts, unique among those running.
	// Default: the host name; `chima run --replica` overrides it.
	Replica string `yaml:"replica"`
	// Lease is how long a replica's claim on a running job lasts without
	// renewal (default 30s): a replica that dies loses its jobs, as
	// interrupted, this long after. Only for postgres.
	Lease time.Duration `yaml:"lease"`
}

// HTTPConfig configures the HTTP server (webhooks, health, metrics, logs).
type HTTPConfig struct {
	// Addr is the host:port to listen on; empty disables the server.
	Addr string `yaml:"addr"`
	// BaseURL is the public URL of the server, used for links posted in chat
	// (deploy logs). Defaults to http://Addr ("localhost" when Addr's host is
	// empty or a wildcard address). Normalised without a trailing slash.
	BaseURL string `yaml:"base_url"`
}

// WebhooksConfig configures the webhook receivers.
type WebhooksConfig struct {
	// GitHub receives GitHub webhooks at POST /webhooks/github.
	GitHub *GitHubWebhookConfig `yaml:"github"`
	// Retry says how a delivery a plugin did not take is handed to it
	// again.
	Retry WebhookRetryConfig `yaml:"retry"`
}

// WebhookRetryConfig says how often, and how far apart, a webhook delivery
// is handed again to a plugin that refused it or could not take it. Zero
// fields take the defaults: 8 attempts, from 1s, doubling, up to 5m.
type WebhookRetryConfig struct {
	// Attempts caps the attempts per plugin; after the last failed one
	// the delivery ends failed for that plugin (`chima events` shows it).
	Attempts int `yaml:"attempts"`
	// Backoff is the wait after the first failed attempt, doubled after
	// each next one, up to MaxBackoff.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// GitHubWebhookConfig configures the GitHub webhook receiver.
type GitHubWebhookConfig struct {
	// SecretEnv names the environment variable holding the hook's secret,
	// which every delivery's X-Hub-Signature-256 is checked against.
	SecretEnv string `yaml:"secret_env"`
}

// PluginConfig configures one plugin process.
type PluginConfig struct {
	// Name identifies the plugin in config, policies ("plugin/command") and
	// logs. Required, unique; lowercase letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// Path is the plugin executable. Required. After loading it is resolved
	// against the config file's directory; Load checks it exists and is
	// executable (unless the plugin is disabled).
	Path string `yaml:"path"`
	// Args are passed to the executable.
	Args []string `yaml:"args"`
	// SHA256 optionally pins the executable: 64 hex digits, lowercased on load.
	// Load refuses a binary that does not match.
	SHA256 string `yaml:"sha256"`
	// AutoMTLS is kept so that configs which say `auto_mtls: true` still
	// load: every plugin connection uses go-plugin's automatic mutual TLS
	// (the Go SDK and the Python one, sdk/python, both speak it), and
	// Validate refuses false.
	AutoMTLS *bool `yaml:"auto_mtls"`
	// Env is literal, non-secret environment for the plugin process.
	Env map[string]string `yaml:"env"`
	// PassEnv names host environment variables passed through unchanged.
	PassEnv []string `yaml:"pass_env"`
	// Secrets maps a variable name in the plugin's environment to the name of
	// the host environment variable holding the value. Values are read when
	// the plugin starts (see Environ) and never logged.
	Secrets map[string]string `yaml:"secrets"`
	// Settings are free-form, non-secret settings handed to the plugin when
	// it describes itself: any YAML, nested mappings and lists included,
	// held as a JSON document decoded with UseNumber holds it (maps of
	// string keys, []any, string, json.Number, bool, nil for null).
	Settings map[string]any `yaml:"settings"`
	// Disabled keeps the plugin configured but not started.
	Disabled bool `yaml:"disabled"`
	// MaxRestarts is the number of crashes within RestartWindow after which
	// the plugin is marked failed instead of restarted again (default 5;
	// 0 means it is never restarted).
	MaxRestarts int `yaml:"max_restarts"`
	// RestartWindow is the window MaxRestarts counts crashes in (default 1m).
	RestartWindow time.Duration `yaml:"restart_window"`
	// RunAs lists who the plugin may run chat commands as (Host.RunCommand):
	// people of Config.People ("alice", and then any of their accounts) or
	// accounts ("slack:U024BE7LH"). Empty: nobody, the plugin cannot run
	// commands. Policy still checks each command as that person.
	RunAs []string `yaml:"run_as"`
}

// Role is a named set of users and the permissions they hold.
type Role struct {
	// Users are members in "adapter:userid" form ("shell:alice", "slack:U024BE7LH").
	// An account that belongs to a person (Config.People) grants the role to
	// that person, on every adapter.
	Users []string `yaml:"users"`
	// People are members named in Config.People ("alice").
	People []string `yaml:"people"`
	// Permissions the members hold: a name ("deploy"), a prefix wildcard
	// ("deploy:*" matches "deploy:lock" but not "deploy") or "*" (everything).
	Permissions []string `yaml:"permissions"`
}

// Policy restricts one command, the commands of every plugin, or all commands.
// Several policies may name one command: When narrows a policy to some
// argument values, so that one policy gives deploy its rooms and another
// asks for approval in production:
//
//	policies:
//	  - command: deploy
//	    allowed_rooms: [deployment]
//	  - command: deploy
//	    when: {env: [production]}
//	    approval: {approvers: [release-managers], count: 1, ttl: 30m}
type Policy struct {
	// Command is "command", "plugin/command" or "*" (every command). The
	// policies of the most specific level that has any apply:
	// "plugin/command", then "command", then "*"; of those, every one whose
	// When matches the command's arguments.
	Command string `yaml:"command"`
	// When, if set, limits the policy to commands whose arguments have one
	// of the listed values: {env: [production, live]}. Every argument
	// named must match. The argument names are checked against the
	// commands' declared arguments at start.
	When map[string][]string `yaml:"when"`
	// Approval, when set, makes a command this policy applies to wait for
	// approval before it runs.
	Approval *ApprovalRule `yaml:"approval"`
	// AllowedRooms lists where the command may run: "room" (that room name on
	// any adapter; a leading '#' is ignored) or "adapter:room". Empty means anywhere.
	AllowedRooms []string `yaml:"allowed_rooms"`
	// Permission, when set, replaces the permission the plugin declares for
	// the command. Beware on "*": it replaces the declared permission of every
	// command that has no more specific policy, which can loosen as well as
	// tighten access.
	Permission string `yaml:"permission"`
}

// Defaults of a policy's approval.
const (
	// DefaultApprovalTTL is approval.ttl's default: how long a request
	// stays open.
	DefaultApprovalTTL = 30 * time.Minute
	// DefaultApprovalCount is approval.count's default.
	DefaultApprovalCount = 1
)

// ApprovalRule says who must approve a command before it runs.
type ApprovalRule struct {
	// Approvers are roles (roles:) or people (people:) who may approve.
	// Required.
	Approvers []string `yaml:"approvers"`
	// Count is how many distinct people must approve (default 1). The
	// requester never counts.
	Count int `yaml:"count"`
	// TTL is how long a request stays open before it expires (default 30m).
	TTL time.Duration `yaml:"ttl"`
}

// Schedule is one chat command the bot runs on a clock, through the same
// router, policy and audit as a typed one:
//
//	schedules:
//	  - {name: nightly-db, cron: "0 3 * * *", command: "backup db-prod", room: "slack:ops", as: alice, timezone: Europe/Berlin, catch_up: true}
type Schedule struct {
	// Name identifies the schedule in the audit ("schedule nightly-db") and
	// the store. Required, unique; lowercase letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// Cron is when it runs: five cron fields, six with seconds first, or
	// a descriptor (@daily, @hourly, @every 10m). Required.
	Cron string `yaml:"cron"`
	// Timezone is the IANA zone the cron is read in (default: the
	// process's local zone).
	Timezone string `yaml:"timezone"`
	// Command is the chat command, as typed after the bot's name. It must
	// be a command of a configured plugin (checked once plugins have
	// described themselves, at start).
	Command string `yaml:"command"`
	// Room is where it runs and answers: "adapter:room", or a bare room of
	// the default adapter. Required.
	Room string `yaml:"room"`
	// As is the user id the command runs as, on the room's adapter; policy
	// checks it as if that person had typed the command. Required.
	As string `yaml:"as"`
	// CatchUp runs a slot missed while the bot was down once at start
	// (never once per missed slot); without it missed slots are skipped.
	CatchUp bool `yaml:"catch_up"`
}

// Problem returns a problem about key of schedules[i] ("" for the entry),
// with the file and line it is at: for checks that can only be made once
// the bot runs (a command no plugin has).
func (c *Config) Problem(key, msg string) Problem {
	return Problem{File: c.meta.fileName(), Line: c.meta.line(key), Key: key, Msg: msg}
}
