package main

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chimaops/chima/sdk"
)

// The variables repository_env may set: those restic's backends read for
// their credentials and settings (restic's "Environment Variables" list),
// and nothing that changes which repository or password restic uses.
var (
	backendEnvPrefixes = []string{
		"AWS_",                    // s3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION, AWS_PROFILE, …
		"RESTIC_AWS_ASSUME_ROLE_", // s3: an assumed role
		"B2_",                     // b2: B2_ACCOUNT_ID, B2_ACCOUNT_KEY
		"AZURE_",                  // azure: AZURE_ACCOUNT_NAME, AZURE_ACCOUNT_KEY, AZURE_ACCOUNT_SAS, …
		"GOOGLE_",                 // gs: GOOGLE_PROJECT_ID, GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_ACCESS_TOKEN
		"OS_", "ST_",              // swift: OpenStack and v1 auth
		"RCLONE_", // rclone: its own configuration variables
	}
	backendEnvNames = []string{"RESTIC_REST_USERNAME", "RESTIC_REST_PASSWORD"} // rest
)

// backendEnv says whether name is a variable repository_env may set.
func backendEnv(name string) bool {
	if !envNameRE.MatchString(name) || strings.ToUpper(name) != name {
		return false
	}
	for _, p := range backendEnvPrefixes {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	for _, n := range backendEnvNames {
		if name == n {
			return true
		}
	}
	return false
}

// backendEnvList names what repository_env takes, for its problems.
func backendEnvList() string {
	var out []string
	for _, p := range backendEnvPrefixes {
		out = append(out, p+"*")
	}
	return strings.Join(append(out, backendEnvNames...), ", ")
}

// backendOf is the restic backend of a repository: the prefix before the
// colon of a remote one, "local" for a path.
func backendOf(repo string) string {
	if !remoteRepo(repo) {
		return "local"
	}
	b, _, _ := strings.Cut(repo, ":")
	return b
}

var (
	// optionKeyRE is restic's extended option name: backend.option.
	optionKeyRE = regexp.MustCompile(`^[a-z0-9]+\.[a-z0-9][a-z0-9-]*$`)
	// optionValueRE keeps an option's value one plain word: no blank, no
	// quote and nothing a shell or a flag parser would read.
	optionValueRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+,%=-]*$`)
)

// checkRepository checks repository_env and repository_options of t; add
// reports a problem at a key under prefix (targets.<name>).
func checkRepository(prefix string, t *Target, getenv func(string) string, add func(key, format string, args ...any)) {
	for _, name := range slices.Sorted(maps.Keys(t.RepositoryEnv)) {
		key := prefix + ".repository_env." + name
		secret := t.RepositoryEnv[name]
		switch {
		case !backendEnv(name):
			add(key, "%q is not a variable restic's backends read: repository_env takes %s", name, backendEnvList())
		case secret == "":
			add(key, "names no secret: give the environment variable (a plugin secret) that holds %s", name)
		case !envNameRE.MatchString(secret):
			add(key, "%q is not an environment variable name", secret)
		case getenv != nil && getenv(secret) == "":
			add(key, "environment variable %s is not set (declare it in the plugin's secrets)", secret)
		}
	}
	backend := backendOf(t.Repository)
	for i, opt := range t.RepositoryOptions {
		key := fmt.Sprintf("%s.repository_options[%d]", prefix, i)
		name, value, ok := strings.Cut(opt, "=")
		switch {
		case !ok || !optionKeyRE.MatchString(name):
			add(key, "%q is not a restic option: want backend.option=value, such as s3.region=us-east-1", opt)
		case !optionValueRE.MatchString(value):
			add(key, "the value of %s must be one plain word (letters, digits and ._:/@+,%%=-, no blank, quote or shell character)", name)
		case t.Repository != "" && !strings.HasPrefix(name, backend+"."):
			add(key, "%s is an option of restic's %s backend, and the repository is %s", name, strings.SplitN(name, ".", 2)[0], backend)
		}
	}
}

// optionArgs are t's repository options as restic flags; one argument
// each, so no value is read as another flag.
func (t *Target) optionArgs() []string {
	out := make([]string, 0, len(t.RepositoryOptions))
	for _, o := range t.RepositoryOptions {
		out = append(out, "--option="+o)
	}
	return out
}

// secrets are the values a run for t must never show: the repository's
// password, its backend's credentials, and the password of a repository
// URL's authority (rest:https://user:pass@host/), which restic may quote.
func (t *Target) secrets() []string {
	out := []string{t.password()}
	for _, secret := range t.RepositoryEnv {
		out = append(out, os.Getenv(secret))
	}
	if _, rest, ok := strings.Cut(t.Repository, "://"); ok {
		authority, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			if _, pass, ok := strings.Cut(authority[:i], ":"); ok && pass != "" {
				out = append(out, pass)
				if u, err := url.PathUnescape(pass); err == nil && u != pass {
					out = append(out, u)
				}
			}
		}
	}
	return out
}

// resticOptions are the extended options restic knows (`restic options`),
// by name.
func resticOptions(bin string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "options").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s options: %w", bin, err)
	}
	known := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && optionKeyRE.MatchString(f[0]) {
			known[f[0]] = true
		}
	}
	return known, nil
}

// checkOptionsKnown checks the targets' repository options against those
// the restic binary knows: restic would refuse an unknown one at every
// run, so the plugin refuses it at start, naming the key.
func checkOptionsKnown(targets map[string]*Target, bin string) []sdk.Problem {
	var problems []sdk.Problem
	var known map[string]bool
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		for i, opt := range targets[name].RepositoryOptions {
			key, _, _ := strings.Cut(opt, "=")
			if known == nil {
				var err error
				if known, err = resticOptions(bin); err != nil {
					return []sdk.Problem{{Key: "restic", Message: err.Error()}}
				}
			}
			if !known[key] {
				problems = append(problems, sdk.Problem{
					Key:     fmt.Sprintf("targets.%s.repository_options[%d]", name, i),
					Message: fmt.Sprintf("restic does not know the option %s (`restic options` lists them)", key),
				})
			}
		}
	}
	return problems
}
