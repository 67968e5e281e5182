package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/chimaops/chima/plugins/internal/configpath"
	"github.com/chimaops/chima/sdk"
)

// Kinds of target.
const (
	kindPostgres  = "postgres"
	kindMySQL     = "mysql" // MySQL and MariaDB, dumped with mariadb-dump
	kindSQLite    = "sqlite"
	kindDirectory = "directory"
)

// Target is one thing to back up, as declared in the `targets` setting:
// the SDK decodes it (Plugin.Settings), strictly.
type Target struct {
	// Name is the target's key in the settings: what people type.
	Name string `settings:"-"`
	// Kind is postgres, mysql (or mariadb), sqlite or directory.
	Kind string `settings:"kind"`
	// DSNEnv names the environment variable (a plugin secret) holding the
	// database's DSN: a postgres:// URL, or for MySQL/MariaDB either
	// user:pass@tcp(host:port)/db or mysql://user:pass@host:port/db.
	DSNEnv string `settings:"dsn_env"`
	// Path is the SQLite file or the directory.
	Path string `settings:"path"`
	// Excludes are restic --exclude patterns for a directory.
	Excludes []string `settings:"excludes"`
	// Repository is the restic repository: a local path (relative to
	// chima.yaml) or anything restic takes (sftp:, s3:, rest:, rclone:…).
	Repository string `settings:"repository"`
	// RepositoryEnv gives the repository's backend its credentials: restic's
	// variable (AWS_ACCESS_KEY_ID, B2_ACCOUNT_KEY, …; see backendEnv) to the
	// environment variable, a plugin secret, holding its value. Restic gets
	// them in its environment, never on its command line.
	RepositoryEnv map[string]string `settings:"repository_env"`
	// RepositoryOptions are restic's extended options for the backend
	// ("s3.region=us-east-1", "s3.bucket-lookup=path"), each passed as one
	// --option flag: on restic's command line, so never a secret.
	RepositoryOptions []string `settings:"repository_options"`
	// PasswordFile is a file holding the repository's password.
	PasswordFile string `settings:"password_file"`
	// PasswordEnv names the environment variable (a plugin secret) holding
	// the repository's password.
	PasswordEnv string `settings:"password_env"`
	// Init creates the repository on the first backup when it is missing.
	Init bool `settings:"init"`
	// Retention is the policy `restic forget --prune` applies after each
	// backup; none when empty.
	Retention Retention `settings:"retention"`
	// Schedule is a cron expression for scheduled backups; none when empty.
	Schedule string `settings:"schedule"`
	// VerifySchedule is a cron expression for scheduled verifications.
	VerifySchedule string `settings:"verify_schedule"`
	// Scratch is where restores go by default and verifications restore
	// to: a directory for sqlite and directory targets, a database name
	// (on the server of ScratchDSNEnv, else of DSNEnv) for databases.
	Scratch string `settings:"scratch"`
	// ScratchDSNEnv names the environment variable holding the DSN of the
	// server scratch databases are made on; DSNEnv's server when empty.
	ScratchDSNEnv string `settings:"scratch_dsn_env"`
	// Room is where scheduled runs report ("ops", "slack:ops").
	Room string `settings:"room"`
	// AlertAfter is how old the last verified backup may be before
	// backup:status warns ("26h"); never when zero.
	AlertAfter time.Duration `settings:"alert_after"`
}

// Retention is a grandfather-father-son policy for restic forget.
type Retention struct {
	KeepLast    int    `settings:"keep_last"`
	KeepHourly  int    `settings:"keep_hourly"`
	KeepDaily   int    `settings:"keep_daily"`
	KeepWeekly  int    `settings:"keep_weekly"`
	KeepMonthly int    `settings:"keep_monthly"`
	KeepYearly  int    `settings:"keep_yearly"`
	KeepWithin  string `settings:"keep_within"`
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
	keepWithinRE = regexp.MustCompile(`^([0-9]+[yMdhms])+$`)
	cronParser   = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
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

// checkTargets checks the targets of the settings, resolves relative paths
// against dir and fills in defaults. Problems name the key path
// (targets.<name>.<key>). strict also checks that the paths are there (for
// Validate: a directory missing when the plugin starts fails its backups,
// not every target's).
func checkTargets(decoded map[string]*Target, dir string, getenv func(string) string, strict bool) (map[string]*Target, []sdk.Problem) {
	var problems []sdk.Problem
	add := func(key, format string, args ...any) {
		problems = append(problems, sdk.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if len(decoded) == 0 {
		add("targets", "is required: a map of target name to {kind, path or dsn_env, repository, …}")
		return nil, problems
	}
	resolve := func(p string) string { return configpath.Resolve(dir, p) }
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
		checkRepository(key, t, getenv, add)
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
		if t.AlertAfter < 0 {
			add(key+".alert_after", "cannot be negative")
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
