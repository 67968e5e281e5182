package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
	"github.com/chimaops/chima/plugins/deploy/internal/validate"
)

// Deployment is one deployment to run.
type Deployment struct {
	// ID is the deployment's number.
	ID int64
	// App and Env name what is deployed where.
	App, Env string
	// Ref is the ref asked for ("main", "feature-1"); SHA is the exact
	// commit it resolved to, which is what is checked out in Dir.
	Ref, SHA string
	// Task is the chat task: "" or "deploy" for a plain deploy (the
	// provider's configured task), or another such as "deploy:migrate".
	Task string
	// Hosts is a comma-separated host list from chat, or "".
	Hosts string
	// User is who asked for the deployment.
	User string
	// Dir is the clean checkout of SHA.
	Dir string
	// Settings is the app's configuration.
	Settings *apps.App
}

// Validate checks the deployment before anything runs: names, ref, SHA,
// task and hosts by the rules of package validate, and the checkout
// directory.
func (d Deployment) Validate() error {
	var errs []error
	if d.Settings == nil {
		errs = append(errs, errors.New("no app settings"))
	}
	errs = append(errs, validate.Name("app", d.App), validate.Name("environment", d.Env), validate.Ref(d.Ref))
	if !validate.IsFullSHA(d.SHA) {
		errs = append(errs, fmt.Errorf("SHA %q is not a full commit id", d.SHA))
	}
	if d.Task != "" {
		errs = append(errs, validate.Task(d.Task))
	}
	if _, err := validate.Hosts(d.Hosts); err != nil {
		errs = append(errs, err)
	}
	if len(d.User) > 256 || strings.ContainsFunc(d.User, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		errs = append(errs, fmt.Errorf("user %q is not allowed", d.User))
	}
	if !filepath.IsAbs(d.Dir) {
		errs = append(errs, fmt.Errorf("checkout directory %q is not an absolute path", d.Dir))
	} else if st, err := os.Stat(d.Dir); err != nil || !st.IsDir() {
		errs = append(errs, fmt.Errorf("checkout directory %q is missing", d.Dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deployment %d: %w", d.ID, err)
	}
	return nil
}

// task returns the provider task: configured for a plain deploy, else the
// chat task.
func (d Deployment) task(configured string) string {
	if d.Task == "" || d.Task == apps.DefaultTask {
		if configured != "" {
			return configured
		}
		return apps.DefaultTask
	}
	return d.Task
}

// Environ returns the deploy variables every command gets:
// DEPLOY_APP, DEPLOY_ENV, DEPLOY_REF, DEPLOY_SHA, DEPLOY_TASK (the chat task,
// "deploy" for a plain deploy), DEPLOYMENT_ID, DEPLOY_HOSTS and DEPLOY_USER.
func (d Deployment) Environ() []string {
	task := d.Task
	if task == "" {
		task = apps.DefaultTask
	}
	return []string{
		"DEPLOY_APP=" + d.App,
		"DEPLOY_ENV=" + d.Env,
		"DEPLOY_REF=" + d.Ref,
		"DEPLOY_SHA=" + d.SHA,
		"DEPLOY_TASK=" + task,
		"DEPLOYMENT_ID=" + strconv.FormatInt(d.ID, 10),
		"DEPLOY_HOSTS=" + d.Hosts,
		"DEPLOY_USER=" + d.User,
	}
}

// Provider deploys.
type Provider interface {
	// Name is the provider's name in the apps file: "shell", "heroku".
	Name() string
	// Deploy runs the deployment, writing its progress and output to out,
	// and returns nil when it succeeded. It stops when ctx ends and then
	// returns an error wrapping the context's error.
	Deploy(ctx context.Context, d Deployment, out io.Writer) error
}

// CommandProvider is a provider that runs one command; Deploy is
// Run(ctx, Command(d), out). Every provider but heroku is one. The
// interface lets callers show or test the exact command without running it.
type CommandProvider interface {
	Provider
	// Command builds the command for d, checking d and the files it needs
	// in the checkout.
	Command(d Deployment) (Spec, error)
}

// DefaultGrace is how long a cancelled command has between SIGTERM and
// SIGKILL.
const DefaultGrace = 10 * time.Second

// Options configure the providers. The zero value is ready to use.
type Options struct {
	// Env is the base environment of commands; the deploy variables are
	// added to it. Nil means MinimalEnv(). Put here what deploy tools need
	// and nothing more (cloud credentials, SSH_AUTH_SOCK).
	Env []string
	// Grace is the time between SIGTERM and SIGKILL; DefaultGrace when 0.
	Grace time.Duration
	// Tag tags the processes of commands (Spec.Tag), for Sweep.
	Tag string
	// LookupEnv finds the Heroku token by the name in the app's
	// heroku.token_env; os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// HTTPClient makes the Heroku API calls; a client with sane timeouts
	// when nil.
	HTTPClient *http.Client
	// PollInterval is how often a Heroku build's status is checked; 2s when
	// zero.
	PollInterval time.Duration
}

func (o Options) env() []string {
	if o.Env == nil {
		return MinimalEnv()
	}
	return o.Env
}

func (o Options) grace() time.Duration {
	if o.Grace <= 0 {
		return DefaultGrace
	}
	return o.Grace
}

// MinimalEnv returns the variables of the bot's environment that deploy
// tools commonly need and that hold no secrets: PATH, HOME, USER, LOGNAME,
// LANG, LC_ALL, TZ, TMPDIR and SSH_AUTH_SOCK (a socket, not a key). PATH
// defaults to a standard one when unset.
func MinimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSH_AUTH_SOCK"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		} else if k == "PATH" {
			env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
		}
	}
	return env
}

var constructors = map[string]func(Options) Provider{
	"shell":      func(o Options) Provider { return &Shell{opts: o} },
	"fabric":     func(o Options) Provider { return &Fabric{opts: o} },
	"capistrano": func(o Options) Provider { return &Capistrano{opts: o} },
	"ansible":    func(o Options) Provider { return &Ansible{opts: o} },
	"heroku":     func(o Options) Provider { return &Heroku{opts: o} },
}

// Names lists the providers, sorted.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns the provider called name (an app's "provider" setting).
func New(name string, opts Options) (Provider, error) {
	c, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("no provider %q; the providers are %s", name, strings.Join(Names(), ", "))
	}
	return c(opts), nil
}

// inside resolves rel (a path from the apps file) in the checkout root and
// makes sure that it exists and that it, and every symlink on the way,
// stays inside the checkout. what names it in messages ("script"); pass
// rel itself for files whose name says what they are ("Capfile").
func inside(root, rel, what string) (string, error) {
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("%s %q must be a relative path inside the repository", what, rel)
	}
	p := filepath.Join(root, rel)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("checkout: %w", err)
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		if what == rel {
			return "", fmt.Errorf("the repository has no %s", rel)
		}
		return "", fmt.Errorf("the repository has no %s %s", what, rel)
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, rel, err)
	}
	if r, err := filepath.Rel(realRoot, real); err != nil || !filepath.IsLocal(r) {
		return "", fmt.Errorf("%s %s leads outside the repository", what, rel)
	}
	return p, nil
}

// join appends the deploy variables and extra variables to the base env.
func join(base []string, more ...[]string) []string {
	env := append([]string{}, base...)
	for _, m := range more {
		env = append(env, m...)
	}
	return env
}
