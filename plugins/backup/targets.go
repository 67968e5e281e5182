package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/chimaops/chima/sdk"
)

// Kinds of target.
const (
	kindPostgres  = "postgres"
	kindMySQL     = "mysql" // MySQL and MariaDB, dumped with mariadb-dump
	kindSQLite    = "sqlite"
	kindDirectory = "directory"
)

// Target is one thing to back up, as declared in the `targets` setting.
type Target struct {
	// Name is the target's key in the settings: what people type.
	Name string `yaml:"-"`
	// Kind is postgres, mysql (or mariadb), sqlite or directory.
	Kind string `yaml:"kind"`
	// DSNEnv names the environment variable (a plugin secret) holding the
	// database's DSN: a postgres:// URL, or for MySQL/MariaDB either
	// user:pass@tcp(host:port)/db or mysql://user:pass@host:port/db.
	DSNEnv string `yaml:"dsn_env"`
	// Path is the SQLite file or the directory.
	Path string `yaml:"path"`
	// Excludes are restic --exclude patterns for a directory.
	Excludes []string `yaml:"excludes"`
	// Repository is the restic repository: a local path (relative to
	// chima.yaml) or anything restic takes (sftp:, s3:, rest:, rclone:…).
	Repository string `yaml:"repository"`
	// PasswordFile is a file holding the repository's password.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names the environment variable (a plugin secret) holding
	// the repository's password.
	PasswordEnv string `yaml:"password_env"`
	// Init creates the repository on the first backup when it is missing.
	Init bool `yaml:"init"`
	// Retention is the policy `restic forget --prune` applies after each
	// backup; none when empty.
	Retention Retention `yaml:"retention"`
	// Schedule is a cron expression for scheduled backups; none when empty.
	Schedule string `yaml:"schedule"`
	// VerifySchedule is a cron expression for scheduled verifications.
	VerifySchedule string `yaml:"verify_schedule"`
	// Scratch is where restores go by default and verifications restore
	// to: a directory for sqlite and directory targets, a database name
	// (on the server of ScratchDSNEnv, else of DSNEnv) for databases.
	Scratch string `yaml:"scratch"`
	// ScratchDSNEnv names the environment variable holding the DSN of the
	// server scratch databases are made on; DSNEnv's server when empty.
	ScratchDSNEnv string `yaml:"scratch_dsn_env"`
	// Room is where scheduled runs report ("ops", "slack:ops").
	Room string `yaml:"room"`
	// AlertAfter is how old the last verified backup may be before
	// backup:status warns ("26h"); never when zero.
	AlertAfter duration `yaml:"alert_after"`
}

// duration is a time.Duration written as Go writes one ("26h", "90m").
type duration struct{ time.Duration }

// UnmarshalYAML reads "26h".
func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q is not a duration such as 26h", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// Retention is a grandfather-father-son policy for restic forget.
type Retention struct {
	KeepLast    int    `yaml:"keep_last"`
	KeepHourly  int    `yaml:"keep_hourly"`
	KeepDaily   int    `yaml:"keep_daily"`
	KeepWeekly  int    `yaml:"keep_weekly"`
	KeepMonthly int    `yaml:"keep_monthly"`
	KeepYearly  int    `yaml:"keep_yearly"`
	KeepWithin  string `yaml:"keep_within"`
}

// empty says whether the policy keeps everything (no forget runs).
func (r Retention) empty() bool { return r == Retention{} }

// args are the restic forget flags of the policy.
func (r Retention) args() []string {
	var out []string
	add := func(flag string, n int) {
		if n > 0 {
			out = append(out, fmt.Sprintf("--%s=%d", flag, n))
		}
	}
	add("keep-last", r.KeepLast)
	add("keep-hourly", r.KeepHourly)
	add("keep-daily", r.KeepDaily)
	add("keep-weekly", r.KeepWeekly)
	add("keep-monthly", r.KeepMonthly)
	add("keep-yearly", r.KeepYearly)
	if r.KeepWithin != "" {
		out = append(out, "--keep-within="+r.KeepWithin)
	}
	return out
}

var (
	targetNameRE = regexp.MustCompile(`^[a-z0-9][-_.a-z0-9]*$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dbNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// unknownFieldRE is the YAML decoder's way of saying "unknown key".
	unknownFieldRE = regexp.MustCompile(`field (\S+) not found in type \S+`)
	keepWithinRE   = regexp.MustCompile(`^([0-9]+[yMdhms])+$`)
	cronParser     = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
)

// remoteRepo says whether a repository string is one restic reaches
// itself (a backend prefix) rather than a local path.
func remoteRepo(repo string) bool {
	for _, p := range []string{"sftp:", "s3:", "rest:", "rclone:", "b2:", "azure:", "gs:", "swift:"} {
		if strings.HasPrefix(repo, p) {
			return true
		}
	}
	return false
}

// parseTargets decodes the `targets` setting (YAML or JSON, strictly: an
// unknown key is an error), resolves relative paths against dir and checks
// every target. Problems name the setting key and the target. strict also
// checks that the paths are there (for Validate: a directory missing when
// the plugin starts fails its backups, not every target's).
func parseTargets(text, dir string, getenv func(string) string, strict bool) (map[string]*Target, []sdk.Problem) {
	var problems []sdk.Problem
	add := func(key, format string, args ...any) {
		problems = append(problems, sdk.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(text) == "" {
		add("targets", "is required: a YAML or JSON map of target name to {kind, path or dsn_env, repository, …}")
		return nil, problems
	}
	// The keys' lines say which target a decoding problem is in.
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		add("targets", "is not a YAML/JSON map of targets: %v", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, problems
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode || len(doc.Content[0].Content) == 0 {
		add("targets", "declares no target: it must be a map of target name to {kind, path or dsn_env, repository, …}")
		return nil, problems
	}
	type keyLine struct {
		name string
		line int
	}
	var lines []keyLine
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		lines = append(lines, keyLine{m.Content[i].Value, m.Content[i].Line})
	}
	var decoded map[string]*Target
	dec := yaml.NewDecoder(strings.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(&decoded); err != nil {
		msgs := []string{err.Error()}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			msgs = te.Errors
		}
		for _, msg := range msgs {
			msg = unknownFieldRE.ReplaceAllString(strings.TrimPrefix(msg, "yaml: "), "unknown key $1")
			key := "targets"
			var line int
			if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
				for _, kl := range lines {
					if kl.line <= line {
						key = "targets." + kl.name
					}
				}
			}
			add(key, "%s", msg)
		}
		return nil, problems
	}
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) || dir == "" {
			return p
		}
		return filepath.Join(dir, p)
	}
	targets := map[string]*Target{}
	names := make([]string, 0, len(decoded))
	for name := range decoded {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := "targets." + name
		if !targetNameRE.MatchString(name) {
			add(key, "%q is not a target name: lower-case letters, digits and -_. only", name)
			continue
		}
		t := decoded[name]
		if t == nil {
			add(key, "is empty: a target needs at least kind and repository")
			continue
		}
		t.Name = name
		t.Kind = strings.ToLower(t.Kind)
		if t.Kind == "mariadb" {
			t.Kind = kindMySQL
		}
		switch t.Kind {
		case kindPostgres, kindMySQL:
			if t.DSNEnv == "" {
				add(key+".dsn_env", "is required for a %s target: the environment variable holding its DSN", t.Kind)
			} else if !envNameRE.MatchString(t.DSNEnv) {
				add(key+".dsn_env", "%q is not an environment variable name", t.DSNEnv)
			} else if getenv != nil && getenv(t.DSNEnv) == "" {
				add(key+".dsn_env", "environment variable %s is not set (declare it in the plugin's secrets)", t.DSNEnv)
			} else if getenv != nil {
				if _, err := parseDSN(t.Kind, getenv(t.DSNEnv)); err != nil {
					add(key+".dsn_env", "the DSN in %s: %v", t.DSNEnv, err)
				}
			}
			if t.Path != "" {
				add(key+".path", "a %s target is reached by dsn_env, not a path", t.Kind)
			}
			if t.Scratch != "" && !dbNameRE.MatchString(t.Scratch) {
				add(key+".scratch", "%q is not a database name (letters, digits, _)", t.Scratch)
			}
			if t.ScratchDSNEnv != "" && !envNameRE.MatchString(t.ScratchDSNEnv) {
				add(key+".scratch_dsn_env", "%q is not an environment variable name", t.ScratchDSNEnv)
			}
			if t.Scratch == "" {
				t.Scratch = strings.NewReplacer("-", "_", ".", "_").Replace(name) + "_scratch"
			}
			if getenv != nil && t.DSNEnv != "" && (t.ScratchDSNEnv == "" || getenv(t.ScratchDSNEnv) == getenv(t.DSNEnv)) {
				if d, err := parseDSN(t.Kind, getenv(t.DSNEnv)); err == nil && d.Database == t.Scratch {
					add(key+".scratch", "%q is the target's own database: a scratch place must be another", t.Scratch)
				}
			}
		case kindSQLite, kindDirectory:
			if t.Path == "" {
				add(key+".path", "is required for a %s target", t.Kind)
			}
			t.Path = resolve(t.Path)
			if t.DSNEnv != "" {
				add(key+".dsn_env", "a %s target is reached by path, not a DSN", t.Kind)
			}
			if t.Path != "" && strict {
				st, err := os.Stat(t.Path)
				switch {
				case err != nil && !(t.Kind == kindSQLite && errors.Is(err, os.ErrNotExist)):
					add(key+".path", "%v", err)
				case err == nil && t.Kind == kindDirectory && !st.IsDir():
					add(key+".path", "%s is not a directory", t.Path)
				case err == nil && t.Kind == kindSQLite && st.IsDir():
					add(key+".path", "%s is a directory, not an SQLite file", t.Path)
				}
			}
			if t.Scratch == "" {
				add(key+".scratch", "is required: the directory restores and verifications go to")
			}
			t.Scratch = resolve(t.Scratch)
			if t.Scratch != "" && t.Path != "" && (t.Scratch == t.Path || strings.HasPrefix(t.Path+"/", strings.TrimSuffix(t.Scratch, "/")+"/") ||
				(t.Kind == kindDirectory && strings.HasPrefix(t.Scratch+"/", t.Path+"/"))) {
				add(key+".scratch", "%s overlaps the target's own path %s: a scratch place must be elsewhere", t.Scratch, t.Path)
			}
		case "":
			add(key+".kind", "is required: postgres, mysql, mariadb, sqlite or directory")
		default:
			add(key+".kind", "%q is not a kind: postgres, mysql, mariadb, sqlite or directory", t.Kind)
		}
		if len(t.Excludes) > 0 && t.Kind != kindDirectory {
			add(key+".excludes", "only a directory target has excludes")
		}
		if t.Repository == "" {
			add(key+".repository", "is required: a local path or anything restic takes (sftp:, s3:, rest:, rclone:)")
		} else if !remoteRepo(t.Repository) {
			t.Repository = resolve(t.Repository)
		}
		switch {
		case t.PasswordFile != "" && t.PasswordEnv != "":
			add(key+".password_file", "set password_file or password_env, not both")
		case t.PasswordFile != "":
			t.PasswordFile = resolve(t.PasswordFile)
			if _, err := os.Stat(t.PasswordFile); err != nil {
				add(key+".password_file", "%v", err)
			}
		case t.PasswordEnv != "":
			if !envNameRE.MatchString(t.PasswordEnv) {
				add(key+".password_env", "%q is not an environment variable name", t.PasswordEnv)
			} else if getenv != nil && getenv(t.PasswordEnv) == "" {
				add(key+".password_env", "environment variable %s is not set (declare it in the plugin's secrets)", t.PasswordEnv)
			}
		case getenv != nil && getenv("RESTIC_PASSWORD_FILE") != "":
			t.PasswordFile = getenv("RESTIC_PASSWORD_FILE")
		case getenv != nil && getenv("RESTIC_PASSWORD") != "":
			t.PasswordEnv = "RESTIC_PASSWORD"
		default:
			add(key+".password_file", "the repository needs a password: set password_file, or password_env naming a secret, or give the plugin a RESTIC_PASSWORD_FILE")
		}
		for field, spec := range map[string]string{"schedule": t.Schedule, "verify_schedule": t.VerifySchedule} {
			if spec == "" {
				continue
			}
			if _, err := cronParser.Parse(spec); err != nil {
				add(key+"."+field, "bad cron spec %q: %v", spec, err)
			}
		}
		if w := t.Retention.KeepWithin; w != "" && !keepWithinRE.MatchString(w) {
			add(key+".retention.keep_within", "%q is not a restic duration such as 30d or 1y6m", w)
		}
		for _, n := range []int{t.Retention.KeepLast, t.Retention.KeepHourly, t.Retention.KeepDaily, t.Retention.KeepWeekly, t.Retention.KeepMonthly, t.Retention.KeepYearly} {
			if n < 0 {
				add(key+".retention", "keep counts cannot be negative")
				break
			}
		}
		targets[name] = t
	}
	// Problems come in a stable order: by key.
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
	return targets, problems
}
