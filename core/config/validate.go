package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/chimaops/chima/core/schedule"
	"github.com/chimaops/chima/sdk/wire"
)

// Validate checks the Config as a whole: required keys, names, forms,
// ranges, uniqueness and cross references (a policy naming an unknown
// plugin). It does not look at the file system (Load does). It returns nil
// or a *ValidationError listing every problem; for a Config that came from
// Parse or Load, problems carry the file's line numbers.
func (c *Config) Validate() error {
	v := &validator{m: c.meta}
	c.validateBot(v)
	c.validateAdapters(v)
	c.validateStore(v)
	c.validateHTTP(v)
	c.validateWebhooks(v)
	c.validatePlugins(v)
	c.validatePeople(v)
	c.validateRoles(v)
	c.validatePolicies(v)
	c.validateSchedules(v)
	return newValidationError(v.problems)
}

type validator struct {
	m        *meta
	problems []Problem
}

// add records a problem with key, unless decoding already reported one for
// key or a key above it (one mistake, one problem).
func (v *validator) add(key, format string, args ...any) {
	if v.m.isBad(key) {
		return
	}
	v.problems = append(v.problems, Problem{File: v.m.fileName(), Line: v.m.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// firstAt describes where key was, for "duplicate … (first at …)" messages.
func (v *validator) firstAt(key string) string {
	if l := v.m.line(key); l > 0 {
		return "line " + strconv.Itoa(l)
	}
	return key
}

func (c *Config) validateBot(v *validator) {
	b := c.Bot
	switch {
	case b.Name == "":
		v.add("bot.name", "required: the name people address the bot by, like chima")
	case !isName(b.Name):
		v.add("bot.name", "%q: use lowercase letters, digits, '-' and '_' only", b.Name)
	}
	if v.m != nil && v.m.null["bot.prefix"] {
		v.add("bot.prefix", `is empty; a bare ! starts a YAML tag, so quote it: prefix: "!"`)
	} else if b.Prefix != "" {
		n := 0
		for _, r := range b.Prefix {
			n++
			if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) || !unicode.IsPrint(r) {
				v.add("bot.prefix", "%q: a prefix is made of symbols like ! or . (no letters, digits or spaces)", b.Prefix)
				n = 0
				break
			}
		}
		if n > 3 {
			v.add("bot.prefix", "%q: at most 3 characters", b.Prefix)
		}
	}
	if b.CommandTimeout <= 0 {
		v.add("bot.command_timeout", "must be more than 0, got %s", b.CommandTimeout)
	}
	if b.MaxConcurrency < 1 {
		v.add("bot.max_concurrency", "must be at least 1, got %d", b.MaxConcurrency)
	}
	if b.MaxMessageBytes < 1 {
		v.add("bot.max_message_bytes", "must be at least 1, got %d", b.MaxMessageBytes)
	}
}

func (c *Config) validateAdapters(v *validator) {
	names := map[string]string{} // name → key of the entry that has it
	for i, a := range c.Adapters {
		key := indexKey("adapters", i)
		v.uniqueName(names, key+".name", "adapter", a.Name,
			"required: the adapter's name, used in rooms (name:room) and users (name:userid), like console or slack",
			isAdapterName, "start with a lowercase letter, then use lowercase letters, digits and '-' only")
		switch {
		case a.Type == "":
			v.add(key+".type", "required: the kind of chat service, like shell, slack, mattermost or webhook")
		case !isAdapterName(a.Type):
			v.add(key+".type", "%q: not an adapter type (types are lowercase names like shell or slack)", a.Type)
		}
	}
	if len(c.Adapters) == 0 {
		v.add("adapters", "no chat adapter is configured; add one, e.g. adapters: [{name: console, type: shell}]")
	}
	if d := c.Bot.DefaultAdapter; d != "" && !c.hasAdapter(d) && c.adaptersKnown(v) {
		v.add("bot.default_adapter", "%q is not the name of a configured adapter; adapters: %s", d, c.adapterList())
	}
}

// replicaName is what a replica id may be.
var replicaName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (c *Config) validateStore(v *validator) {
	s := c.Store
	switch s.Driver {
	case DriverSQLite:
		if s.Path == "" {
			v.add("store.path", "required for driver sqlite")
		}
		if s.DSNEnv != "" {
			v.add("store.dsn_env", "only used with driver postgres")
		}
		for key, set := range map[string]bool{"store.replica": s.Replica != "", "store.lease": s.Lease != 0} {
			if set {
				v.add(key, "only used with driver postgres: one process owns a SQLite store")
			}
		}
	case DriverPostgres:
		if s.Replica != "" && !replicaName.MatchString(s.Replica) {
			v.add("store.replica", "%q: use 1 to 64 letters, digits and \".-_\"", s.Replica)
		}
		if s.Lease != 0 && s.Lease < 3*time.Second {
			v.add("store.lease", "%s is too short: a replica renews its leases every third of it; use 3s or more (default 30s)", s.Lease)
		}
		switch {
		case s.DSNEnv == "":
			v.add("store.dsn_env", "required for driver postgres: the name of the environment variable holding the DSN")
		case !isHostEnvName(s.DSNEnv):
			// Not quoted back: it may be a DSN with a password in it.
			v.add("store.dsn_env", "is not an upper-case environment variable name; name the variable holding the DSN (like CHIMA_DSN), the DSN itself never goes in the file")
		}
		if v.m.isSet("store.path") {
			v.add("store.path", "only used with driver sqlite")
		}
	default:
		v.add("store.driver", "%q: must be sqlite or postgres", s.Driver)
	}
}

func (c *Config) validateWebhooks(v *validator) {
	r := c.Webhooks.Retry
	if r.Attempts < 0 {
		v.add("webhooks.retry.attempts", "must be at least 1 (or left out for 8), got %d", r.Attempts)
	}
	if r.Backoff < 0 {
		v.add("webhooks.retry.backoff", "must be more than 0 (or left out for 1s), got %s", r.Backoff)
	}
	if r.MaxBackoff < 0 || (r.MaxBackoff > 0 && r.MaxBackoff < r.Backoff) {
		v.add("webhooks.retry.max_backoff", "must be at least the backoff (%s), got %s", r.Backoff, r.MaxBackoff)
	}
	if gh := c.Webhooks.GitHub; gh != nil {
		switch {
		case gh.SecretEnv == "":
			v.add("webhooks.github.secret_env", "required: the name of the environment variable holding the hook's secret")
		case !isHostEnvName(gh.SecretEnv):
			v.add("webhooks.github.secret_env", "is not an upper-case environment variable name; name the variable holding the secret (like CHIMA_GITHUB_WEBHOOK_SECRET), the secret itself never goes in the file")
		}
		if c.HTTP.Addr == "" {
			v.add("webhooks.github", "needs http.addr: webhooks arrive over HTTP")
		}
	}
}

func (c *Config) validateHTTP(v *validator) {
	h := c.HTTP
	if h.Addr != "" {
		_, port, err := net.SplitHostPort(h.Addr)
		if err != nil {
			v.add("http.addr", "%q: must be host:port, like 127.0.0.1:8080 or :8080", h.Addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.add("http.addr", "%q: port must be a number from 0 to 65535", h.Addr)
		}
	}
	if h.BaseURL != "" {
		u, err := url.Parse(h.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("http.base_url", "%q: must be an http:// or https:// URL", h.BaseURL)
		}
	}
}

func (c *Config) validatePlugins(v *validator) {
	names := map[string]string{} // name → key of the plugin that has it
	for i, p := range c.Plugins {
		key := indexKey("plugins", i)
		v.uniqueName(names, key+".name", "plugin", p.Name, "required", isName, "use lowercase letters, digits, '-' and '_' only")
		if p.Path == "" {
			v.add(key+".path", "required: the plugin executable")
		}
		if p.SHA256 != "" && !isHex64(p.SHA256) {
			v.add(key+".sha256", "must be 64 hex digits (the output of sha256sum)")
		}
		if p.AutoMTLS != nil && !*p.AutoMTLS {
			v.add(key+".auto_mtls", "false is no longer supported: every plugin connection uses go-plugin's automatic mutual TLS, "+
				"which the Go SDK and the Python one (sdk/python) speak; remove the key")
		}
		if p.MaxRestarts < 0 {
			v.add(key+".max_restarts", "must be 0 or more, got %d", p.MaxRestarts)
		}
		if p.RestartWindow <= 0 {
			v.add(key+".restart_window", "must be more than 0, got %s", p.RestartWindow)
		}
		// A variable may come from one place only.
		defined := map[string]string{}
		define := func(k, name string) {
			switch {
			case !isEnvName(name):
				v.add(k, "%q is not an environment variable name", name)
			case isReservedEnv(name):
				v.add(k, "%s is reserved for the plugin handshake", name)
			default:
				if first, dup := defined[name]; dup {
					v.add(k, "%s is already set by %s", name, first)
				}
				defined[name] = k
			}
		}
		for _, name := range sortedKeys(p.Env) {
			define(joinKey(key+".env", name), name)
		}
		for j, name := range p.PassEnv {
			define(indexKey(key+".pass_env", j), name)
		}
		for _, name := range sortedKeys(p.Secrets) {
			k := joinKey(key+".secrets", name)
			define(k, name)
			if host := p.Secrets[name]; !isHostEnvName(host) {
				// Not quoted back: it may be the secret itself.
				v.add(k, "is not an upper-case environment variable name; name the host variable holding the secret (like CHIMA_%s), the secret itself never goes in the file", strings.ToUpper(name))
			}
		}
		for name := range p.Settings {
			if strings.TrimSpace(name) == "" {
				v.add(key+".settings", "setting names must not be empty")
			}
		}
		for j, who := range p.RunAs {
			k := indexKey(key+".run_as", j)
			if strings.Contains(who, ":") {
				c.checkAccount(v, k, who, "accounts")
				continue
			}
			if _, ok := c.People[who]; !ok && !v.m.isBad("people") {
				v.add(k, "%q: no person of that name is in people: (people: %s); name a person, or an account as adapter:userid", who, c.personList())
			}
		}
	}
}

func (c *Config) validatePeople(v *validator) {
	owner := map[string]string{} // "adapter:userid" → key of the entry that has it
	for _, person := range sortedKeys(c.People) {
		key := joinKey("people", person)
		if !wire.IsPersonName(person) {
			v.add(key, "person name %q: start with a lowercase letter, then use lowercase letters, digits, '.', '-' and '_' only", person)
		}
		for i, u := range c.People[person] {
			k := indexKey(key, i)
			if c.checkAccount(v, k, u, "accounts") {
				continue
			}
			if first, dup := owner[u]; dup {
				v.add(k, "%q is already listed at %s; an account belongs to one person only", u, v.firstAt(first))
			} else {
				owner[u] = k
			}
		}
	}
}

// checkAccount reports a malformed "adapter:userid" u at key k and returns
// true when it did. what names the list in the message ("users").
func (c *Config) checkAccount(v *validator, k, u, what string) bool {
	adapter, id, ok := strings.Cut(u, ":")
	switch {
	case !ok || adapter == "" || id == "":
		v.add(k, "%q: %s are written adapter:userid, like shell:alice or slack:U024BE7LH", u, what)
	case !c.hasAdapter(adapter) && c.adaptersKnown(v):
		v.add(k, "%q: no adapter named %q is configured (adapters: %s)", u, adapter, c.adapterList())
	case strings.ContainsFunc(id, unicode.IsSpace):
		v.add(k, "%q: user ids have no spaces", u)
	default:
		return false
	}
	return true
}

func (c *Config) validateRoles(v *validator) {
	for _, role := range sortedKeys(c.Roles) {
		key := joinKey("roles", role)
		if !isName(role) {
			v.add(key, "role name %q: use lowercase letters, digits, '-' and '_' only", role)
		}
		r := c.Roles[role]
		for i, u := range r.Users {
			c.checkAccount(v, indexKey(key+".users", i), u, "users")
		}
		for i, name := range r.People {
			if _, ok := c.People[name]; !ok && !v.m.isBad("people") {
				v.add(indexKey(key+".people", i), "%q: no person of that name is in people: (people: %s)", name, c.personList())
			}
		}
		for i, p := range r.Permissions {
			if !isPermissionPattern(p) {
				v.add(indexKey(key+".permissions", i), `%q: a permission is a name like deploy or deploy:lock, a wildcard like deploy:*, or "*"`, p)
			}
		}
	}
}

func (c *Config) validatePolicies(v *validator) {
	plugins := map[string]bool{}
	for _, p := range c.Plugins {
		plugins[p.Name] = true
	}
	seen := map[string]string{}
	for i, p := range c.Policies {
		key := indexKey("policies", i)
		switch plugin, cmd, qualified := strings.Cut(p.Command, "/"); {
		case p.Command == "":
			v.add(key+".command", `required: a command, plugin/command, or "*"`)
		case p.Command == "*":
		case qualified && (!isName(plugin) || !isCommandName(cmd)):
			v.add(key+".command", "%q: expected command, plugin/command or *", p.Command)
		case qualified && !plugins[plugin]:
			v.add(key+".command", "%q: no plugin named %q is configured", p.Command, plugin)
		case !qualified && !isCommandName(p.Command):
			v.add(key+".command", "%q: expected command, plugin/command or *", p.Command)
		}
		if p.Command != "" {
			// Several policies may name a command when their when differ;
			// two with the same when would leave which one holds to order.
			same := p.Command + "\x00" + whenKey(p.When)
			if first, dup := seen[same]; dup {
				v.add(key+".command", "another policy for %q with the same when is at %s; merge them, or narrow one with when", p.Command, v.firstAt(first))
			} else {
				seen[same] = key + ".command"
			}
		}
		for _, arg := range sortedKeys(p.When) {
			k := joinKey(key+".when", arg)
			switch {
			case !isCommand(arg):
				v.add(k, "%q: expected the name of one of the command's arguments", arg)
			case len(p.When[arg]) == 0:
				v.add(k, "list the values of %s the policy applies to, like [production]", arg)
			}
		}
		if a := p.Approval; a != nil {
			c.validateApproval(v, key+".approval", a)
		}
		for j, room := range p.AllowedRooms {
			k := indexKey(key+".allowed_rooms", j)
			adapter, name, qualified := strings.Cut(room, ":")
			if !qualified {
				name = room
			}
			name = strings.TrimPrefix(name, "#")
			switch {
			case qualified && !c.hasAdapter(adapter) && c.adaptersKnown(v):
				v.add(k, "%q: no adapter named %q is configured (write room or adapter:room; adapters: %s)", room, adapter, c.adapterList())
			case name == "" || strings.ContainsFunc(name, unicode.IsSpace):
				v.add(k, "%q: expected a room name, or adapter:room", room)
			}
		}
		if p.Permission != "" && (!isPermissionPattern(p.Permission) || strings.Contains(p.Permission, "*")) {
			v.add(key+".permission", "%q: a permission is a name like deploy or deploy:lock (no wildcards here)", p.Permission)
		}
	}
}

// validateApproval checks a policy's approval at key.
func (c *Config) validateApproval(v *validator, key string, a *ApprovalRule) {
	if len(a.Approvers) == 0 {
		v.add(key+".approvers", "required: the roles or people who may approve, like [release-managers]")
	}
	for i, name := range a.Approvers {
		_, role := c.Roles[name]
		_, person := c.People[name]
		if !role && !person && !v.m.isBad("roles") && !v.m.isBad("people") {
			v.add(indexKey(key+".approvers", i), "%q: no role or person of that name (roles: %s; people: %s)", name, c.roleList(), c.personList())
		}
	}
	if a.Count < 1 {
		v.add(key+".count", "%d: how many people must approve is 1 or more (leave it out for 1)", a.Count)
	}
	switch {
	case a.TTL <= 0:
		v.add(key+".ttl", "%s: how long a request stays open must be positive, like 30m", a.TTL)
	case a.TTL < time.Second:
		v.add(key+".ttl", "%s: a request must stay open at least 1s", a.TTL)
	}
}

// whenKey is a canonical form of a policy's when, for duplicate checks.
func whenKey(when map[string][]string) string {
	var b strings.Builder
	for _, arg := range sortedKeys(when) {
		vals := slices.Clone(when[arg])
		slices.Sort(vals)
		b.WriteString(arg + "=" + strings.Join(vals, ",") + ";")
	}
	return b.String()
}

// roleList names the roles of roles: for problems.
func (c *Config) roleList() string {
	if len(c.Roles) == 0 {
		return "none"
	}
	return strings.Join(sortedKeys(c.Roles), ", ")
}

// isName reports whether s is a non-empty [a-z0-9_-]+ name.
// uniqueName checks the name at key of an entry of kind (adapter, plugin,
// schedule): present (else required says what to write), well formed by
// valid (else form says how), and not taken by an earlier entry of names
// (name → the key that has it), which it then joins.
func (v *validator) uniqueName(names map[string]string, key, kind, name, required string, valid func(string) bool, form string) {
	switch {
	case name == "":
		v.add(key, "%s", required)
	case !valid(name):
		v.add(key, "%q: %s", name, form)
	default:
		if first, dup := names[name]; dup {
			v.add(key, "duplicate %s name %q (first used at %s)", kind, name, v.firstAt(first))
		} else {
			names[name] = key
		}
	}
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// isCommand reports whether s is a command name: a name, dots allowed.
// isCommandName reports whether s can name a plugin's command in a policy:
// words joined by ':' (deploy, deploy:unlock, backup:restore).
func isCommandName(s string) bool {
	for seg := range strings.SplitSeq(s, ":") {
		if !isCommand(seg) {
			return false
		}
	}
	return true
}

func isCommand(s string) bool {
	return s != "" && isName(strings.ReplaceAll(s, ".", "_"))
}

// isPermissionPattern reports whether s is "*", or names joined by ':' with
// an optional final "*" segment ("deploy", "deploy:lock", "deploy:*").
func isPermissionPattern(s string) bool {
	if s == "*" {
		return true
	}
	segs := strings.Split(s, ":")
	for i, seg := range segs {
		if seg == "*" && i == len(segs)-1 && i > 0 {
			continue
		}
		if !isCommand(seg) {
			return false
		}
	}
	return true
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b == '_' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || i > 0 && b >= '0' && b <= '9') {
			return false
		}
	}
	return true
}

// isHostEnvName reports whether s is an upper-case environment variable
// name, as the host variables holding secrets must be: stricter than
// isEnvName so that a secret pasted where its variable's name goes is refused.
func isHostEnvName(s string) bool {
	return isEnvName(s) && strings.ToUpper(s) == s
}

// isReservedEnv reports whether the plugin host sets the variable itself for
// the go-plugin handshake (PLUGIN_PROTOCOL_VERSIONS, PLUGIN_MIN_PORT, …, and
// Chima's magic cookie CHIMA_PLUGIN_MAGIC_COOKIE).
func isReservedEnv(s string) bool {
	return strings.HasPrefix(s, "PLUGIN_") || strings.HasPrefix(s, "CHIMA_PLUGIN_")
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F') {
			return false
		}
	}
	return true
}

// isAdapterName reports whether s is an adapter's name or type:
// [a-z][a-z0-9-]*. No '_' or ':', so that "name:room" splits one way.
func isAdapterName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-') {
			return false
		}
	}
	return true
}

// adaptersKnown reports whether adapters: could be read, so that names
// referring to adapters can be checked: after one mistake there (the old
// mapping form) every "shell:alice" would be a problem too.
func (c *Config) adaptersKnown(v *validator) bool { return !v.m.isBad("adapters") }

// adapterList names the configured adapters for problems.
func (c *Config) adapterList() string {
	if len(c.Adapters) == 0 {
		return "none"
	}
	return strings.Join(c.AdapterNames(), ", ")
}

// personList names the people of people: for problems.
func (c *Config) personList() string {
	if len(c.People) == 0 {
		return "none"
	}
	return strings.Join(sortedKeys(c.People), ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (c *Config) validateSchedules(v *validator) {
	names := map[string]string{}
	for i, s := range c.Schedules {
		key := indexKey("schedules", i)
		v.uniqueName(names, key+".name", "schedule", s.Name, "required: the schedule's name, like nightly-db", isName, "use lowercase letters, digits, '-' and '_' only")
		if s.Cron == "" {
			v.add(key+".cron", `required: when it runs, like "0 3 * * *", "@daily" or "@every 10m"`)
		} else if _, err := schedule.Parse(s.Cron, s.Timezone); err != nil {
			k := key + ".cron"
			if s.Timezone != "" && strings.Contains(err.Error(), "time zone") {
				k = key + ".timezone"
			}
			v.add(k, "%s", err.Error())
		}
		if strings.TrimSpace(s.Command) == "" {
			v.add(key+".command", "required: the chat command to run, like \"backup db-prod\"")
		}
		adapter, room, qualified := strings.Cut(s.Room, ":")
		if !qualified {
			room = s.Room
		}
		switch {
		case s.Room == "":
			v.add(key+".room", "required: where it runs, adapter:room or a room of the default adapter")
		case qualified && !c.hasAdapter(adapter) && c.adaptersKnown(v):
			v.add(key+".room", "%q: no adapter named %q is configured (write room or adapter:room; adapters: %s)", s.Room, adapter, c.adapterList())
		case room == "" || strings.ContainsFunc(room, unicode.IsSpace):
			v.add(key+".room", "%q: expected a room name, or adapter:room", s.Room)
		case !qualified && c.DefaultAdapter() == "" && c.adaptersKnown(v):
			v.add(key+".room", "%q: with several adapters, name the room's adapter (adapter:room) or set bot.default_adapter", s.Room)
		}
		if s.As == "" {
			v.add(key+".as", "required: the user id it runs as, checked by policy as if they had typed it")
		}
	}
}
