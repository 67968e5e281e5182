package apps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/chimaops/chima/plugins/deploy/internal/validate"
)

// MaxTimeout is the longest timeout an app may set.
const MaxTimeout = 24 * time.Hour

// Set is a loaded apps file.
type Set struct {
	path  string
	apps  map[string]*App
	names []string
}

// Load reads and checks the apps file at path. Relative local repository
// paths in it are taken from the file's directory. On any problem it returns
// a *LoadError listing all of them.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apps file: %w", err)
	}
	return Parse(path, data, filepath.Dir(path))
}

// Parse checks an apps file's content. name is used in messages; baseDir is
// where relative local repository paths start.
func Parse(name string, data []byte, baseDir string) (*Set, error) {
	p := &parser{baseDir: baseDir, data: data}
	set := &Set{path: name, apps: map[string]*App{}}
	for _, a := range p.file(data) {
		set.apps[a.Name] = a
		set.names = append(set.names, a.Name)
	}
	if len(p.problems) > 0 {
		return nil, &LoadError{File: name, Problems: p.problems}
	}
	sort.Strings(set.names)
	return set, nil
}

// Path is the path the set was loaded from.
func (s *Set) Path() string { return s.path }

// Names returns the app names, sorted.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Len is the number of apps.
func (s *Set) Len() int { return len(s.names) }

// Lookup returns the app called name (matched case-insensitively), or an
// *UnknownAppError: "never heard of project-y; known apps: a, b".
func (s *Set) Lookup(name string) (*App, error) {
	if a, ok := s.apps[strings.ToLower(strings.TrimSpace(name))]; ok {
		return a, nil
	}
	return nil, &UnknownAppError{Name: name, Known: s.Names()}
}

// appKeys are the keys an app object may have, in documentation order:
// Chima's own, then those of hubot-deploy and Heaven files that Chima reads
// (besides the patterns heroku_<env>_name and <env>_url).
var appKeys = []string{
	"provider", "auto_merge", "repository", "environments", "allowed_rooms",
	"required_contexts", "default_environment", "default_ref", "environment_urls",
	"timeout", "notify_rooms", "protected_environments", "approvers",
	"script", "fabric", "capistrano", "ansible", "heroku",
	"heroku_name", "deploy_script", "github_api",
	// Read by the ci-status plugin, not by deploy.
	"auto_deploy",
}

var (
	herokuNameKeyRE = regexp.MustCompile(`^heroku_(.+)_name$`)
	envURLKeyRE     = regexp.MustCompile(`^(.+)_url$`)
	varNameRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	envVarRE        = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	herokuAppRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

type parser struct {
	baseDir string
	// data is the whole text parsed, for line numbers.
	data []byte
	// lines maps "app\x00key" to the line the key is on; key "" is the
	// app's own line.
	lines    map[string]int
	problems []Problem
}

// add records a problem about key of app, on the line of the key or, when
// the key is not in the file, of its nearest parent that is.
func (p *parser) add(app, key, format string, args ...any) {
	p.problems = append(p.problems, Problem{App: app, Key: key, Line: p.line(app, key), Message: fmt.Sprintf(format, args...)})
}

// mark remembers that key of app is at byte offset off of the file.
func (p *parser) mark(app, key string, off int) {
	if p.lines == nil {
		p.lines = map[string]int{}
	}
	p.lines[app+"\x00"+key] = lineAt(p.data, off)
}

// line returns the line of key of app, of its nearest parent key in the
// file ("heroku" for "heroku.apps"), of the app, or 0.
func (p *parser) line(app, key string) int {
	if app == "" {
		return 0
	}
	for k := key; ; {
		if l, ok := p.lines[app+"\x00"+k]; ok {
			return l
		}
		if k == "" {
			return 0
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			i = 0
		}
		k = k[:i]
	}
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	off = min(max(off, 0), len(data))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

type member struct {
	key   string
	value json.RawMessage
	// keyOff and valueOff are the byte offsets of the key's end and the
	// value's start in the parser's data.
	keyOff, valueOff int
}

// members returns an object's members in order, duplicates included. The
// input must be a syntactically valid JSON object; base is its offset in
// the parser's data.
func members(raw []byte, base int) []member {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		keyOff := base + int(dec.InputOffset())
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		// The raw value holds no surrounding space, and the decoder stops
		// right after it.
		valueOff := base + int(dec.InputOffset()) - len(v)
		out = append(out, member{key: tok.(string), value: v, keyOff: keyOff, valueOff: valueOff})
	}
	return out
}

// kind names a JSON value's type for messages.
func kind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// column turns a byte offset into "column C" (the line is the problem's
// Line).
func column(data []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	col := int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return fmt.Sprintf("column %d", max(col, 1))
}

// file parses the whole file and returns the valid apps.
func (p *parser) file(data []byte) []*App {
	if len(bytes.TrimSpace(data)) == 0 {
		p.add("", "", "the file is empty; it should be a JSON object of apps")
		return nil
	}
	var top any
	if err := json.Unmarshal(data, &top); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			p.add("", "", "%s: %s", column(data, se.Offset), se.Error())
			p.problems[len(p.problems)-1].Line = lineAt(data, int(se.Offset))
		} else {
			p.add("", "", "%s", err.Error())
		}
		return nil
	}
	if _, ok := top.(map[string]any); !ok {
		p.add("", "", "the file must be a JSON object of apps, like {\"my-app\": {...}}, not %s", kind(data))
		return nil
	}
	var out []*App
	seen := map[string]bool{}
	for _, m := range members(data, 0) {
		p.mark(m.key, "", m.keyOff)
		if seen[m.key] {
			p.add(m.key, "", "the app is defined twice")
			continue
		}
		seen[m.key] = true
		nameOK := true
		if err := validate.Name("app", m.key); err != nil {
			p.add(m.key, "", "invalid app name: %s", reason(err))
			nameOK = false
		}
		before := len(p.problems)
		a := p.app(m.key, m.value, m.valueOff)
		if a != nil && nameOK && len(p.problems) == before {
			out = append(out, a)
		}
	}
	return out
}

func reason(err error) string {
	var ve *validate.Error
	if errors.As(err, &ve) && ve.Value != "" {
		return ve.Reason
	}
	return err.Error()
}

// compat holds what an app's hubot-deploy and Heaven keys said, for the
// checks that need the whole app: which key named each environment's Heroku
// app and URL (to name it in problems), and deploy_script, whose meaning
// depends on the provider.
type compat struct {
	herokuKey    map[string]string // env → "heroku.apps", "heroku_<env>_name" or "heroku_name"
	urlKey       map[string]string // env → "environment_urls" or "<env>_url"
	deployScript *string
}

// app decodes and checks one app object, which starts at byte off of the
// parser's data.
func (p *parser) app(name string, raw json.RawMessage, off int) *App {
	if kind(raw) != "an object" {
		p.add(name, "", "the app's settings must be an object, not %s", kind(raw))
		return nil
	}
	a := &App{Name: name, baseDir: p.baseDir}
	seen := map[string]bool{} // keys present
	has := map[string]bool{}  // keys present and not null
	var herokuCompat, urlCompat []member
	var herokuName string
	src := compat{herokuKey: map[string]string{}, urlKey: map[string]string{}}
	for _, m := range members(raw, off) {
		p.mark(name, m.key, m.keyOff)
		if seen[m.key] {
			p.add(name, m.key, "key %q appears twice", m.key)
			continue
		}
		seen[m.key] = true
		if isNull(m.value) {
			continue
		}
		has[m.key] = true
		k, v := m.key, m.value
		switch k {
		case "provider":
			p.str(name, k, v, &a.Provider)
		case "auto_merge":
			p.boolean(name, k, v, &a.AutoMerge)
		case "repository":
			p.str(name, k, v, &a.Repository)
		case "environments":
			p.strs(name, k, v, &a.Environments)
		case "allowed_rooms":
			p.strs(name, k, v, &a.AllowedRooms)
		case "required_contexts":
			if p.strs(name, k, v, &a.RequiredContexts) && a.RequiredContexts == nil {
				a.RequiredContexts = []string{}
			}
		case "default_environment":
			p.str(name, k, v, &a.DefaultEnvironment)
		case "default_ref":
			p.str(name, k, v, &a.DefaultRef)
		case "environment_urls":
			p.strMap(name, k, v, &a.EnvironmentURLs)
		case "timeout":
			p.duration(name, k, v, &a.Timeout)
		case "notify_rooms":
			p.strs(name, k, v, &a.NotifyRooms)
		case "protected_environments":
			p.strs(name, k, v, &a.ProtectedEnvironments)
		case "approvers":
			p.strs(name, k, v, &a.Approvers)
		case "script":
			p.str(name, k, v, &a.Script)
		case "fabric":
			p.object(name, k, v, m.valueOff, map[string]func(string, json.RawMessage){
				"task": func(k string, v json.RawMessage) { p.str(name, k, v, &a.Fabric.Task) },
			})
		case "capistrano":
			p.object(name, k, v, m.valueOff, map[string]func(string, json.RawMessage){
				"task":   func(k string, v json.RawMessage) { p.str(name, k, v, &a.Capistrano.Task) },
				"script": func(k string, v json.RawMessage) { p.str(name, k, v, &a.Capistrano.Script) },
			})
		case "ansible":
			p.object(name, k, v, m.valueOff, map[string]func(string, json.RawMessage){
				"playbook":   func(k string, v json.RawMessage) { p.str(name, k, v, &a.Ansible.Playbook) },
				"inventory":  func(k string, v json.RawMessage) { p.str(name, k, v, &a.Ansible.Inventory) },
				"extra_vars": func(k string, v json.RawMessage) { p.anyMap(name, k, v, &a.Ansible.ExtraVars) },
			})
		case "heroku":
			p.object(name, k, v, m.valueOff, map[string]func(string, json.RawMessage){
				"apps":      func(k string, v json.RawMessage) { p.strMap(name, k, v, &a.Heroku.Apps) },
				"api_url":   func(k string, v json.RawMessage) { p.str(name, k, v, &a.Heroku.APIURL) },
				"token_env": func(k string, v json.RawMessage) { p.str(name, k, v, &a.Heroku.TokenEnv) },
			})
		// hubot-deploy's and Heaven's keys.
		case "heroku_name":
			p.str(name, k, v, &herokuName)
		case "deploy_script":
			var s string
			if p.str(name, k, v, &s) {
				src.deployScript = &s
			}
		case "github_api":
			p.str(name, k, v, &a.GitHubAPI)
		case "auto_deploy":
			// The ci-status plugin's (deploy a branch when it is green):
			// it checks the value; deploy only lets the key be.
		case "github_token":
			p.add(name, k, "github_token: a token does not belong in the apps file; give the plugin a GITHUB_TOKEN secret in chima.yaml instead")
		default:
			switch {
			case herokuNameKeyRE.MatchString(k):
				herokuCompat = append(herokuCompat, m)
			case envURLKeyRE.MatchString(k):
				urlCompat = append(urlCompat, m)
			default:
				p.add(name, k, "unknown key %q%s", k, didYouMean(k, appKeys))
			}
		}
	}
	for env := range a.Heroku.Apps {
		src.herokuKey[env] = "heroku.apps"
	}
	for env := range a.EnvironmentURLs {
		src.urlKey[env] = "environment_urls"
	}
	// hubot-deploy's and Heaven's heroku_<env>_name keys.
	p.envKeys(name, herokuCompat, herokuNameKeyRE, &a.Heroku.Apps, src.herokuKey, "names the Heroku app")
	// heroku_name: the Heroku app of every environment not named otherwise,
	// as Heaven reads it.
	if herokuName != "" {
		for _, env := range a.Environments {
			if _, ok := src.herokuKey[env]; ok {
				continue
			}
			if a.Heroku.Apps == nil {
				a.Heroku.Apps = map[string]string{}
			}
			a.Heroku.Apps[env], src.herokuKey[env] = herokuName, "heroku_name"
		}
	}
	// Heaven's <env>_url keys: the environment's URL.
	p.envKeys(name, urlCompat, envURLKeyRE, &a.EnvironmentURLs, src.urlKey, "gives the URL")
	p.check(a, has, src)
	a.ApplyDefaults()
	return a
}

// envKeys sets, from each of app's members ms (whose key re matches, the
// environment being its first group), (*dst)[env], noting in from which key
// set it. A second key for the same environment is an error: the one in
// from already does what it says.
func (p *parser) envKeys(app string, ms []member, re *regexp.Regexp, dst *map[string]string, from map[string]string, what string) {
	for _, m := range ms {
		env := re.FindStringSubmatch(m.key)[1]
		var v string
		if !p.str(app, m.key, m.value, &v) {
			continue
		}
		if prev, ok := from[env]; ok {
			p.add(app, m.key, "%s: %s already %s of %q", m.key, prev, what, env)
			continue
		}
		if *dst == nil {
			*dst = map[string]string{}
		}
		(*dst)[env], from[env] = v, m.key
	}
}

// object decodes a nested settings object, which starts at byte off of the
// parser's data, reporting unknown keys.
func (p *parser) object(app, key string, raw json.RawMessage, off int, fields map[string]func(string, json.RawMessage)) {
	if kind(raw) != "an object" {
		p.add(app, key, "%s: want an object, got %s", key, kind(raw))
		return
	}
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	seen := map[string]bool{}
	for _, m := range members(raw, off) {
		full := key + "." + m.key
		p.mark(app, full, m.keyOff)
		if seen[m.key] {
			p.add(app, full, "%s: key %q appears twice", key, m.key)
			continue
		}
		seen[m.key] = true
		f, ok := fields[m.key]
		if !ok {
			p.add(app, full, "%s: unknown key %q%s", key, m.key, didYouMean(m.key, known))
			continue
		}
		if !isNull(m.value) {
			f(full, m.value)
		}
	}
}

// failed reports whether a problem about key of app was already reported.
func (p *parser) failed(app, key string) bool {
	for _, pr := range p.problems {
		if pr.App == app && pr.Key == key {
			return true
		}
	}
	return false
}

func (p *parser) decode(app, key string, raw json.RawMessage, dst any, want string) bool {
	if err := json.Unmarshal(raw, dst); err != nil {
		p.add(app, key, "%s: want %s, got %s", key, want, kind(raw))
		return false
	}
	return true
}

func (p *parser) str(app, key string, raw json.RawMessage, dst *string) bool {
	return p.decode(app, key, raw, dst, "a string")
}

func (p *parser) boolean(app, key string, raw json.RawMessage, dst *bool) bool {
	return p.decode(app, key, raw, dst, "true or false")
}

func (p *parser) strs(app, key string, raw json.RawMessage, dst *[]string) bool {
	var list []string
	if !p.decode(app, key, raw, &list, "a list of strings") {
		return false
	}
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			p.add(app, key, "%s: entry %d is empty", key, i+1)
			return false
		}
	}
	*dst = list
	return true
}

func (p *parser) strMap(app, key string, raw json.RawMessage, dst *map[string]string) bool {
	return p.decode(app, key, raw, dst, "an object of strings")
}

func (p *parser) anyMap(app, key string, raw json.RawMessage, dst *map[string]any) bool {
	return p.decode(app, key, raw, dst, "an object")
}

func (p *parser) duration(app, key string, raw json.RawMessage, dst *time.Duration) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.add(app, key, "%s: want a duration such as \"30m\" or \"1h30m\", got %s", key, kind(raw))
		return
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.add(app, key, "%s: %q is not a duration such as \"30m\" or \"1h30m\"", key, s)
	case d <= 0:
		p.add(app, key, "%s: %q must be positive", key, s)
	case d > MaxTimeout:
		p.add(app, key, "%s: %q is longer than the maximum of %s", key, s, MaxTimeout)
	default:
		*dst = d
	}
}

// check applies the cross-key rules to a decoded app.
func (p *parser) check(a *App, has map[string]bool, src compat) {
	name := a.Name
	envs := strings.Join(a.Environments, ", ")
	notEnv := func(key, env string) {
		p.add(name, key, "%s: %q is not one of the environments (%s)", key, env, envs)
	}

	switch {
	case p.failed(name, "provider"):
	case !has["provider"]:
		p.add(name, "provider", "provider is missing; use one of %s", strings.Join(Providers, ", "))
	case !slices.Contains(Providers, a.Provider):
		p.add(name, "provider", "provider: %q is not a provider%s; use one of %s",
			a.Provider, didYouMean(a.Provider, Providers), strings.Join(Providers, ", "))
	}

	switch {
	case p.failed(name, "repository"):
	case !has["repository"]:
		p.add(name, "repository", `repository is missing; give "owner/name" on GitHub, a local path or a git URL`)
	case strings.TrimSpace(a.Repository) == "":
		p.add(name, "repository", "repository: is empty")
	case strings.HasPrefix(a.Repository, "~"):
		p.add(name, "repository", "repository: %q starts with \"~\", which is not expanded; use an absolute path", a.Repository)
	case strings.HasPrefix(a.Repository, "-"):
		p.add(name, "repository", "repository: %q starts with \"-\"", a.Repository)
	case strings.ContainsAny(a.Repository, "\x00\n\r"):
		p.add(name, "repository", "repository: contains a control character")
	}

	envOK := len(a.Environments) > 0
	switch {
	case p.failed(name, "environments"):
	case !has["environments"]:
		p.add(name, "environments", "environments is missing; list at least one, e.g. [\"staging\", \"production\"]")
	case len(a.Environments) == 0:
		p.add(name, "environments", "environments: list at least one environment")
	}
	canon := map[string]string{}
	for _, env := range a.Environments {
		if err := validate.Name("environment", env); err != nil {
			p.add(name, "environments", "environments: %q is not a valid name: %s", env, reason(err))
			envOK = false
			continue
		}
		c := CanonicalEnv(env)
		if prev, dup := canon[c]; dup {
			if prev == env {
				p.add(name, "environments", "environments: %q is listed twice", env)
			} else {
				p.add(name, "environments", "environments: %q and %q are the same environment", prev, env)
			}
			envOK = false
		}
		canon[c] = env
	}

	if a.DefaultEnvironment != "" && envOK && !a.HasEnv(a.DefaultEnvironment) {
		notEnv("default_environment", a.DefaultEnvironment)
	}
	if a.DefaultRef != "" {
		if err := validate.Ref(a.DefaultRef); err != nil {
			p.add(name, "default_ref", "default_ref: %s", err)
		}
	}
	for _, key := range []string{"allowed_rooms", "notify_rooms"} {
		list := a.AllowedRooms
		if key == "notify_rooms" {
			list = a.NotifyRooms
		}
		for _, r := range list {
			if strings.ContainsFunc(r, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
				p.add(name, key, "%s: %q contains whitespace or control characters", key, r)
			} else if ParseRoom(r).Name == "" {
				p.add(name, key, "%s: %q names no room", key, r)
			}
		}
	}
	for _, rc := range a.RequiredContexts {
		if strings.ContainsAny(rc, "\x00\n\r") {
			p.add(name, "required_contexts", "required_contexts: %q contains a control character", rc)
		}
	}
	for _, env := range sortedKeys(a.EnvironmentURLs) {
		key := firstKey(src.urlKey[env], "environment_urls")
		if envOK && !a.HasEnv(env) {
			notEnv(key, env)
		}
		if err := checkURL(a.EnvironmentURLs[env]); err != nil {
			if key == "environment_urls" {
				p.add(name, key, "environment_urls: %s: %v", env, err)
			} else {
				p.add(name, key, "%s: %v", key, err)
			}
		}
	}
	if a.GitHubAPI != "" {
		if err := checkURL(a.GitHubAPI); err != nil {
			p.add(name, "github_api", "github_api: %v", err)
		}
	}
	if ds := src.deployScript; ds != nil && !p.failed(name, "provider") {
		switch {
		case a.Provider == "shell" && has["script"]:
			p.add(name, "deploy_script", "deploy_script: script already names the shell provider's script; keep one of them")
		case a.Provider == "shell":
			a.Script = *ds
		case a.Provider == "capistrano" && a.Capistrano.Script != "":
			p.add(name, "deploy_script", "deploy_script: capistrano.script already names the script that runs Capistrano; keep one of them")
		case a.Provider == "capistrano":
			a.Capistrano.Script = *ds
		case slices.Contains(Providers, a.Provider):
			p.add(name, "deploy_script", "deploy_script: the %s provider runs no deploy script; deploy_script is for the shell and capistrano providers", a.Provider)
		}
	}
	for _, env := range a.ProtectedEnvironments {
		if envOK && !a.HasEnv(env) {
			notEnv("protected_environments", env)
		}
	}
	if len(a.Approvers) > 0 && len(a.ProtectedEnvironments) == 0 {
		p.add(name, "approvers", "approvers: %s has no protected_environments, whose deploys they would approve", name)
	}
	for _, who := range a.Approvers {
		if who == "" || strings.ContainsFunc(who, unicode.IsSpace) {
			p.add(name, "approvers", "approvers: %q: name a role or a person of chima.yaml, like release-managers", who)
		}
	}

	if a.Script != "" && !isLocalPath(a.Script) {
		key := "script"
		if !has["script"] {
			key = "deploy_script"
		}
		p.add(name, key, "%s: %q must be a relative path inside the repository", key, a.Script)
	}
	if s := a.Capistrano.Script; s != "" && !isLocalPath(s) {
		key := "capistrano.script"
		if src.deployScript != nil && *src.deployScript == s {
			key = "deploy_script"
		}
		p.add(name, key, "%s: %q must be a relative path inside the repository", key, s)
	}
	if a.Fabric.Task != "" {
		if err := validate.Task(a.Fabric.Task); err != nil {
			p.add(name, "fabric.task", "fabric.task: %s", err)
		}
	}
	if a.Capistrano.Task != "" {
		if err := validate.Task(a.Capistrano.Task); err != nil {
			p.add(name, "capistrano.task", "capistrano.task: %s", err)
		}
	}
	if a.Ansible.Playbook != "" && !isLocalPath(a.Ansible.Playbook) {
		p.add(name, "ansible.playbook", "ansible.playbook: %q must be a relative path inside the repository", a.Ansible.Playbook)
	}
	if inv := a.Ansible.Inventory; inv != "" && !isLocalPath(inv) && !(filepath.IsAbs(inv) && filepath.Clean(inv) == inv) {
		p.add(name, "ansible.inventory", "ansible.inventory: %q must be a relative path inside the repository or a clean absolute path", inv)
	}
	for _, k := range sortedKeys(a.Ansible.ExtraVars) {
		switch {
		case !varNameRE.MatchString(k):
			p.add(name, "ansible.extra_vars", "ansible.extra_vars: %q is not a valid variable name", k)
		case slices.Contains(ReservedAnsibleVars, k):
			p.add(name, "ansible.extra_vars", "ansible.extra_vars: %q is set by the deploy itself", k)
		}
	}
	badHerokuName := false
	for _, env := range sortedKeys(a.Heroku.Apps) {
		key := firstKey(src.herokuKey[env], "heroku.apps")
		if envOK && !a.HasEnv(env) {
			notEnv(key, env)
		}
		if app := a.Heroku.Apps[env]; !herokuAppRE.MatchString(app) && !(key == "heroku_name" && badHerokuName) {
			p.add(name, key, "%s: %q is not a Heroku app name (lowercase letters, digits and dashes)", key, app)
			badHerokuName = badHerokuName || key == "heroku_name"
		}
	}
	if a.Heroku.APIURL != "" {
		if err := checkURL(a.Heroku.APIURL); err != nil {
			p.add(name, "heroku.api_url", "heroku.api_url: %v", err)
		}
	}
	if a.Heroku.TokenEnv != "" && !envVarRE.MatchString(a.Heroku.TokenEnv) {
		p.add(name, "heroku.token_env", "heroku.token_env: %q is not an environment variable name (A-Z, 0-9, _)", a.Heroku.TokenEnv)
	}
	if a.Provider == "heroku" && envOK {
		for _, env := range a.Environments {
			if a.Heroku.Apps[env] == "" {
				p.add(name, "heroku.apps", "heroku.apps: no Heroku app for environment %q", env)
			}
		}
	}
}

func firstKey(keys ...string) string {
	for _, k := range keys {
		if k != "" {
			return k
		}
	}
	return ""
}

// isLocalPath reports whether p is a relative path that stays inside its
// base directory.
func isLocalPath(p string) bool {
	return filepath.IsLocal(p) && !strings.ContainsAny(p, "\x00\n\r") && !strings.HasPrefix(p, "-")
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q holds credentials; URLs in the apps file must not", u.Redacted())
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// didYouMean returns ` (did you mean "x"?)` when word looks like a typo of
// one of candidates, and "" otherwise.
func didYouMean(word string, candidates []string) string {
	w := strings.ToLower(word)
	best, bestDist := "", -1
	for _, c := range candidates {
		d := levenshtein(w, c)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(1, len([]rune(w))/3)
	if best != "" && bestDist <= limit {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	for _, c := range candidates {
		if len(w) >= 4 && (strings.HasPrefix(c, w) || strings.HasPrefix(w, c)) {
			return fmt.Sprintf(" (did you mean %q?)", c)
		}
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
