package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v57/github"
	"golang.org/x/sys/unix"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
	"github.com/chimaops/chima/plugins/deploy/internal/provider"
	"github.com/chimaops/chima/plugins/deploy/internal/validate"
	"github.com/chimaops/chima/plugins/deploy/internal/workspace"
	"github.com/chimaops/chima/plugins/internal/configpath"
	"github.com/chimaops/chima/plugins/internal/ghclient"
	"github.com/chimaops/chima/sdk"
)

// deployer holds the plugin's configuration and state.
type deployer struct {
	mu       sync.RWMutex
	apps     *apps.Set
	cache    *workspace.Cache
	instance string
	baseURL  string
	// defaultAdapter is the chat adapter a bare notify room means.
	defaultAdapter string
	// gh is set in GitHub mode (a GITHUB_TOKEN or a GitHub App is
	// configured).
	gh *ghclient.Client
	// ghByAPI are the clients of apps' own github_api URLs.
	ghByAPI  map[string]*ghclient.Client
	cloneURL string // template with {owner} and {name}
	records  records
	// tags is the prefix of this installation's process tags (see
	// processTags).
	tags string
	// now is the clock, replaced in tests.
	now func() time.Time
	// pageWindow is how much of a log its page shows; logPageWindow when
	// 0. Tests make it small.
	pageWindow int64
}

// settings are the plugin's settings (chima.yaml plugins[].settings), which
// the SDK decodes strictly (Plugin.Settings): an unknown key or a value of
// the wrong type is a Problem naming its key.
type settings struct {
	// AppsFile is the apps file, relative to chima.yaml.
	AppsFile string `settings:"apps_file,required"`
	// WorkspaceDir is where repository mirrors live.
	WorkspaceDir string `settings:"workspace_dir"`
	// CheckoutDir is where each deployment's checkout is made.
	CheckoutDir string `settings:"checkout_dir"`
	// APIURL is GitHub's REST API; GitHub's own when empty.
	APIURL string `settings:"github_api_url"`
	// CloneURL is the clone URL template of GitHub repositories.
	CloneURL string `settings:"github_clone_url"`
	// Instance is this bot's name in deployment payloads.
	Instance string `settings:"instance"`
	// AppID and InstallationID name the GitHub App installation the plugin
	// acts as, with the secret GITHUB_APP_PRIVATE_KEY, instead of the
	// secret GITHUB_TOKEN.
	AppID          int64 `settings:"github_app_id"`
	InstallationID int64 `settings:"github_installation_id"`

	// The host's: chima.yaml's folder, the adapters it runs (comma
	// separated), the adapter a bare room means, whether the plugin runs
	// only to be described, the bot's name and its base URL.
	ConfigDir      string `settings:"chima_config_dir"`
	Adapters       string `settings:"chima_adapters"`
	DefaultAdapter string `settings:"chima_default_adapter"`
	DescribeOnly   bool   `settings:"chima_describe_only"`
	BotName        string `settings:"chima_bot_name"`
	BaseURL        string `settings:"chima_base_url"`
}

// resolve makes a path of the settings relative to chima.yaml's directory.
func (s *settings) resolve(p string) string { return configpath.Resolve(s.ConfigDir, p) }

// checkSettings checks the decoded settings, the secrets (read with env)
// and the apps file without acting on them, and returns the apps and how
// to sign in to GitHub, or a *sdk.SettingsError naming every problem with
// its file, line and key.
func checkSettings(s *settings, env func(string) string) (*apps.Set, ghclient.Auth, error) {
	var problems []sdk.Problem
	// appsErr adds an error about the apps file: its problems, or itself.
	appsErr := func(err error) {
		var le *apps.LoadError
		if errors.As(err, &le) {
			problems = append(problems, appsProblems(le)...)
		} else if err != nil {
			problems = append(problems, sdk.Problem{Key: "apps_file", Message: err.Error()})
		}
	}
	set, err := apps.Load(s.resolve(s.AppsFile))
	appsErr(err)
	if err == nil && s.Adapters != "" {
		// A host that says which adapters it runs gets the notify
		// rooms checked too: a room no message could reach is a
		// mistake in the file, found by `chima config validate` and
		// at start, not a warning in the log at the first deploy.
		appsErr(set.CheckNotifyRooms(strings.Split(s.Adapters, ","), s.DefaultAdapter))
	}
	if v := s.APIURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, sdk.Problem{Key: "github_api_url", Message: fmt.Sprintf("%q is not an http(s) URL", v)})
		}
	}
	auth, authProblems := ghclient.ReadAuth(s.AppID, s.InstallationID, env)
	problems = append(problems, authProblems...)
	if len(problems) > 0 {
		return nil, ghclient.Auth{}, &sdk.SettingsError{Problems: problems}
	}
	return set, auth, nil
}

// appsProblems turns the apps file's problems into the SDK's, keyed by
// "app.key" paths, without the key repeated at the start of the message.
func appsProblems(le *apps.LoadError) []sdk.Problem {
	out := make([]sdk.Problem, 0, len(le.Problems))
	for _, p := range le.Problems {
		key := p.App
		if p.Key != "" {
			key += "." + p.Key
		}
		msg := p.Message
		if head, rest, ok := strings.Cut(msg, ": "); ok && p.Key != "" && (head == p.Key || strings.HasPrefix(p.Key, head+".")) {
			msg = rest
		}
		out = append(out, sdk.Problem{File: le.File, Line: p.Line, Key: key, Message: msg})
	}
	return out
}

// validate is the plugin's Validate: checkSettings, keeping nothing.
func (d *deployer) validate(s *settings) error {
	_, _, err := checkSettings(s, os.Getenv)
	return err
}

// configure loads the apps file and sets up the workspace and GitHub mode,
// from the settings the SDK decoded.
func (d *deployer) configure(s *settings) error {
	resolve := s.resolve
	set, auth, err := checkSettings(s, os.Getenv)
	if err != nil {
		return err
	}
	defaultAdapter := s.DefaultAdapter
	ws := s.WorkspaceDir
	if ws == "" {
		ws = filepath.Join(os.TempDir(), "chima-deploy-"+strconv.Itoa(os.Getuid()))
	}
	tags := processTags(resolve(ws))
	opts := workspace.Options{CheckoutDir: resolve(s.CheckoutDir)}
	if opts.CheckoutDir == "" {
		opts.CheckoutDir = defaultCheckoutDir(tags)
	}
	switch {
	case auth.App():
		// Private repositories: git authenticates with the installation's
		// token of the moment (it lasts an hour), asked for each clone or
		// fetch.
		opts.Credentials = d.gitCredentials
	case auth.Token != "":
		// Private repositories: git authenticates with the token through an
		// extra header, never a URL with the token in it.
		opts.Env = githubGitAuth(auth.Token, githubHosts(set)...)
	}
	cache, err := workspace.New(resolve(ws), opts)
	if err != nil {
		return err
	}
	// A plugin started only to be described (chima explain, chima plugins)
	// sweeps nothing: the bot that may be running on this workspace owns
	// those processes and checkouts, and its deploys would be killed.
	if !s.DescribeOnly {
		sweep(cache, tags)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.apps, d.cache, d.tags, d.defaultAdapter = set, cache, tags, defaultAdapter
	d.instance = firstNonEmpty(s.Instance, s.BotName, "chima")
	d.baseURL = strings.TrimSuffix(s.BaseURL, "/")
	d.cloneURL = firstNonEmpty(s.CloneURL, "https://github.com/{owner}/{name}.git")
	if d.now == nil {
		d.now = time.Now
	}
	d.gh, d.ghByAPI = nil, nil
	if auth.Configured() {
		if d.gh, err = ghclient.New(auth, s.APIURL, ghclient.Options{}); err != nil {
			return err
		}
		// Apps on a GitHub Enterprise Server of their own (github_api).
		for _, name := range set.Names() {
			a, _ := set.Lookup(name)
			if a.GitHubAPI == "" || d.ghByAPI[a.GitHubAPI] != nil {
				continue
			}
			// An app's installation tokens are exchanged at that
			// server's API too.
			gh, err := ghclient.New(auth, a.GitHubAPI, ghclient.Options{})
			if err != nil {
				return fmt.Errorf("%s: github_api: %w", name, err)
			}
			if d.ghByAPI == nil {
				d.ghByAPI = map[string]*ghclient.Client{}
			}
			d.ghByAPI[a.GitHubAPI] = gh
		}
	}
	return nil
}

// github is the client a's deployments are made with: that of its
// github_api, else the plugin's; nil when there is no GitHub token or app.
func (d *deployer) github(a *apps.App) *github.Client {
	c := d.gh
	if a.GitHubAPI != "" {
		c = d.ghByAPI[a.GitHubAPI]
	}
	if c == nil {
		return nil
	}
	return c.Client
}

// gitCredentials is the workspace's Options.Credentials in GitHub App mode:
// for an https repository of github.com, or of the host of github_api_url
// or of an app's github_api, the installation token of that API's client,
// as an extra header; nothing for any other repository.
func (d *deployer) gitCredentials(ctx context.Context, repoURL string) ([]string, error) {
	u, err := url.Parse(repoURL)
	if err != nil || u.Scheme != "https" {
		return nil, nil
	}
	d.mu.RLock()
	gh, byAPI := d.gh, d.ghByAPI
	d.mu.RUnlock()
	c := (*ghclient.Client)(nil)
	for api, ac := range byAPI {
		if au, err := url.Parse(api); err == nil && webHost(au) == u.Host {
			c = ac
		}
	}
	if c == nil && gh != nil && (u.Host == "github.com" || u.Host == webHost(gh.BaseURL)) {
		c = gh
	}
	if c == nil {
		return nil, nil
	}
	token, err := c.Token(ctx)
	if err != nil {
		if ie := ghclient.InstallationError("cloning "+u.Host+u.Path, err); ie != nil {
			return nil, ie
		}
		return nil, err
	}
	return gitAuthHeader(token, u.Host), nil
}

// sweep ends the processes of deploys a dead plugin left behind (its
// reaper was killed too) before any deploy can start, so that none
// overlaps the next deploy of its app and environment, and removes the
// checkouts it left (on tmpfs they hold memory). A failure to sweep stops
// nothing.
func sweep(cache *workspace.Cache, tags string) {
	if n, err := provider.Sweep(tags + "/"); err != nil {
		sdk.NewLogger(os.Stderr).Error("ending processes of earlier deploys", "error", err)
	} else if n > 0 {
		sdk.NewLogger(os.Stderr).Warn("ended processes that earlier deploys left behind", "processes", n)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cache.Sweep(sctx); err != nil {
		sdk.NewLogger(os.Stderr).Warn("sweeping left-over checkouts", "error", err)
	}
}

// processTags is the prefix of the tags (provider.TagEnv) of this
// installation's deploy processes: a hash of its workspace, so that the
// sweep at start ends what this bot's deploys left behind and nothing of
// another bot's on the same machine.
func processTags(workspace string) string {
	if abs, err := filepath.Abs(workspace); err == nil {
		workspace = abs
	}
	sum := sha256.Sum256([]byte(workspace))
	return "chima-" + hex.EncodeToString(sum[:6])
}

// defaultCheckoutDir puts checkouts on tmpfs where there is one: a checkout
// is written, run and deleted within one deploy, and on disk the creation
// and removal of thousands of files dominates the time to start a deploy
// (1.8s against 0.1s for 5,000 files, see BENCHMARKS.md). "" leaves them
// beside the mirrors. Each installation (tags: its workspace) has a folder of
// its own there, because the sweep at start removes every checkout in it
// that the plugin is not using: two bots on one machine must not remove
// each other's.
func defaultCheckoutDir(tags string) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() && unix.Access("/dev/shm", unix.W_OK) == nil {
		return filepath.Join("/dev/shm", "chima-checkouts-"+strconv.Itoa(os.Getuid()), tags)
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// app looks an app up, as a message for the user when unknown.
func (d *deployer) app(name string) (*apps.App, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, err := d.apps.Lookup(strings.ToLower(name))
	if err != nil {
		// A sentence, as the plugin's other refusals are.
		return nil, sdk.Errorf("I have %s.", err.Error())
	}
	return a, nil
}

// repoURL is what the workspace clones for app.
func (d *deployer) repoURL(a *apps.App) string {
	if owner, name, ok := a.GitHubRepo(); ok {
		tmpl := d.cloneURL
		if a.GitHubAPI != "" {
			tmpl = enterpriseCloneURL(a.GitHubAPI)
		}
		return strings.NewReplacer("{owner}", owner, "{name}", name).Replace(tmpl)
	}
	return a.CloneURL()
}

// logURL is the link to a deployment's log page, with the token that opens
// it (see logToken), or "" when the bot has no base URL or the token's
// secret can't be had.
func (d *deployer) logURL(c *sdk.Context, id int64) string {
	if d.baseURL == "" {
		return ""
	}
	secret, err := d.records.pageSecret(c, true)
	if err != nil {
		c.Logger().Warn("no log page link", "deployment", id, "error", err)
		return ""
	}
	return fmt.Sprintf("%s/deployments/%d/log?token=%s", d.baseURL, id, hex.EncodeToString(logToken(secret, id)))
}

// envRefusal says why an environment of a takes no deploys from Chima: one
// the app doesn't have (a GitHub deployment made outside chat may name
// anything). It is nil when the environment can be deployed to, protected
// or not (see needApproval).
func envRefusal(a *apps.App, env string) error {
	if !a.HasEnv(env) {
		return sdk.Errorf("%s", (&apps.UnknownEnvError{App: a.Name, Env: env, Environments: a.Environments}).Error())
	}
	return nil
}

// needApproval asks the host for approval of a command that deploys to a
// protected environment of a, and is nil when env is not protected or the
// command runs because it was approved: the app's approvers approve, or
// without them those of chima.yaml's policy.
func needApproval(c *sdk.Context, a *apps.App, env string) error {
	if !a.Protected(env) || c.Approval() != nil {
		return nil
	}
	return sdk.NeedApproval(sdk.ApprovalOptions{
		Approvers: a.Approvers,
		Reason:    fmt.Sprintf("%s is a protected environment of %s", env, a.Name),
	})
}

// unapproved says why the job of dep, to a protected environment of a,
// must not run: nobody approved it in chat (a GitHub deployment made
// outside chat). It is nil for an approved or unprotected deployment.
func unapproved(a *apps.App, dep *Deployment) error {
	if !a.Protected(dep.Env) || dep.Approval != 0 {
		return nil
	}
	return fmt.Errorf("%s is a protected environment of %s: deploys to it need an approval in chat (chima deploy … asks for one), and this deployment has none", dep.Env, a.Name)
}

// approvedBy notes who approved dep, for its announcement: "" when nobody
// had to.
func approvedBy(dep *Deployment) string {
	if dep.Approval == 0 {
		return ""
	}
	return fmt.Sprintf(" (approved by %s, request %d)", strings.Join(dep.ApprovedBy, ", "), dep.Approval)
}

// lockName is the key of an environment's lock.
func lockName(app, env string) string { return "env/" + app + "/" + env }

// notifyTarget is the thread a command's deployment reports to: the
// command's thread, or a new one under the command.
func notifyTarget(src *sdk.MessageRef) Target {
	thread := src.ThreadID
	if thread == "" {
		thread = src.MessageID
	}
	return Target{Adapter: src.Adapter, Room: src.Room, Thread: thread}
}

func (t Target) ref() *sdk.MessageRef {
	return &sdk.MessageRef{Adapter: t.Adapter, Room: t.Room, ThreadID: t.Thread}
}

// lockOwner is who u's locks are held by: their person of chima.yaml's
// people, the same on every chat service (alice on Slack and alice on the
// console hold one lock), else their account id.
func lockOwner(u *sdk.User) string {
	if u == nil {
		return ""
	}
	return firstNonEmpty(u.Person, u.ID)
}

// commandLockOwner is whose locks the command in c may pass: its user's,
// unless automation ran it on their behalf. A lock says "a person is
// working here"; an auto-deploy or a schedule running as that person must
// not go through it, or the lock would hold off everyone but the robots.
func commandLockOwner(c *sdk.Context) string {
	if c.TriggeredBy() != "" {
		return ""
	}
	return lockOwner(c.User())
}

// lockedBy explains who holds an environment's lock, or "" when it is free
// or held by user. No user ("") passes no lock, even one whose owner is
// empty: that is how automation asks.
func lockedBy(l *sdk.LockInfo, user string, now time.Time) string {
	if l == nil || (user != "" && l.Owner == user) {
		return ""
	}
	since := l.AcquiredAt
	msg := fmt.Sprintf("locked by %s since %s (%s ago)", l.Owner, since.UTC().Format("2006-01-02 15:04 MST"), now.Sub(since).Round(time.Second))
	if l.Reason != "" {
		msg += ": " + l.Reason
	}
	return msg
}

// envLock returns the holder of app/env's lock, if any.
func envLock(c *sdk.Context, app, env string) (*sdk.LockInfo, error) {
	locks, err := c.Locks(lockName(app, env))
	if err != nil {
		return nil, err
	}
	for _, l := range locks {
		if l.Name == lockName(app, env) {
			return l, nil
		}
	}
	return nil, nil
}

// cmdDeploy handles `deploy[:task][!] <app>[/<ref>] [to <env>[/<hosts>]]`.
func (d *deployer) cmdDeploy(c *sdk.Context) error {
	a, err := d.app(c.Arg("app"))
	if err != nil {
		return err
	}
	src := c.Source()
	if err := a.CheckRoom(src.Adapter, src.Room, src.RoomName); err != nil {
		return sdk.Errorf("%s", err.Error())
	}
	env, err := a.ResolveEnv(c.Arg("env"))
	if err != nil {
		return sdk.Errorf("%s", err.Error())
	}
	if err := envRefusal(a, env); err != nil {
		return err
	}
	if err := needApproval(c, a, env); err != nil {
		return err
	}
	task := githubTask(strings.ToLower(c.Arg("task")))
	if err := validate.Task(task); err != nil {
		return &sdk.UserError{Summary: err.Error(), Argument: "task"}
	}
	if _, err := validate.Hosts(c.Arg("hosts")); err != nil {
		return &sdk.UserError{Summary: err.Error(), Argument: "hosts"}
	}
	ref := c.Arg("ref")
	repoDefault := ""
	if ref == "" && a.DefaultRef == "" {
		if repoDefault, err = d.defaultBranch(c, a); err != nil {
			return err
		}
	}
	if ref, err = a.ResolveRef(ref, repoDefault); err != nil {
		return &sdk.UserError{Summary: err.Error(), Argument: "ref"}
	}
	if err := d.checkRef(c, a, ref); err != nil {
		return err
	}
	user := c.User()
	l, err := envLock(c, a.Name, env)
	if err != nil {
		return err
	}
	if who := lockedBy(l, commandLockOwner(c), d.now()); who != "" {
		return sdk.Errorf("%s in %s is %s. Ask them, or wait for deploy:unlock.", a.Name, env, who)
	}
	dep := &Deployment{
		App: a.Name, Env: env, Ref: ref, Task: task, Hosts: c.Arg("hosts"), Force: c.Bool("force"),
		User: user.ID, UserName: user.Name, Owner: user.Person, State: StateQueued,
		Notify: notifyTarget(src), CreatedAt: d.now(), TriggeredBy: c.TriggeredBy(),
	}
	approve(dep, c.Approval())
	return d.start(c, a, dep)
}

// approve records on dep the approval its command ran with, if any.
func approve(dep *Deployment, a *sdk.Approval) {
	if a != nil {
		dep.Approval, dep.ApprovedBy = a.ID, a.Approvers
	}
}

// githubTask is the task of a deployment, as hubot-deploy sends it to GitHub
// and GitHub's documentation names tasks: "deploy" for a plain deploy, and
// "deploy:migrate" for `deploy:migrate`, whose grammar gives "migrate".
// Providers map it to their own names (Fabric runs deploy_migrate).
func githubTask(task string) string {
	switch {
	case task == "":
		return apps.DefaultTask
	case task == apps.DefaultTask, strings.HasPrefix(task, apps.DefaultTask+":"):
		return task
	}
	return apps.DefaultTask + ":" + task
}

// checkRef refuses a deploy of a ref that names nothing in a's repository,
// before anything is recorded or announced. GitHub checks the ref itself
// when it creates the deployment; otherwise the mirror is asked, and
// fetched first only when it doesn't know the ref yet. When the repository
// can't be reached the deploy goes ahead, and its job reports why it
// failed.
func (d *deployer) checkRef(c *sdk.Context, a *apps.App, ref string) error {
	if d.githubMode(a) {
		return nil
	}
	ctx, cancel := context.WithTimeout(c, time.Minute)
	defer cancel()
	repo := d.repoURL(a)
	_, err := d.cache.Resolve(ctx, repo, ref)
	var unknown *workspace.UnknownRefError
	if errors.As(err, &unknown) {
		if err = d.cache.Fetch(ctx, repo); err == nil {
			_, err = d.cache.Resolve(ctx, repo, ref)
		}
	}
	switch {
	case errors.As(err, &unknown):
		return &sdk.UserError{Summary: fmt.Sprintf("%s has no branch, tag or commit %q. Say `deploys %s` to see what was deployed, or name another ref.", a.Name, ref, a.Name), Argument: "ref"}
	case err != nil:
		c.Logger().Warn("could not check the ref before the deploy", "app", a.Name, "ref", ref, "error", err)
	}
	return nil
}

// githubMode reports whether a's deployments are made on GitHub.
func (d *deployer) githubMode(a *apps.App) bool {
	_, _, ok := a.GitHubRepo()
	return ok && d.github(a) != nil
}

// defaultBranch is the default branch of a's repository, for a deploy that
// names no ref: GitHub's answer in GitHub mode, the mirror's otherwise. It
// is "" (apps.FallbackRef then) only for a repository that has no default
// branch; a lookup that fails otherwise refuses the deploy, rather than
// deploy a branch nobody asked for.
func (d *deployer) defaultBranch(c *sdk.Context, a *apps.App) (string, error) {
	if d.githubMode(a) {
		owner, name, _ := a.GitHubRepo()
		repo, resp, err := d.github(a).Repositories.Get(c, owner, name)
		if err != nil {
			return "", sdk.Errorf("Could not ask GitHub for the default branch of %s/%s: %s Name the ref to deploy: %s/<ref>.",
				owner, name, githubLookupError(resp, err), a.Name)
		}
		return repo.GetDefaultBranch(), nil
	}
	branch, err := d.cache.DefaultBranch(c, d.repoURL(a))
	if errors.Is(err, workspace.ErrNoDefaultBranch) {
		return "", nil
	}
	if err != nil {
		return "", sdk.Errorf("Could not find the default branch of %s's repository: %v. Name the ref to deploy: %s/<ref>.", a.Name, err, a.Name)
	}
	return branch, nil
}

// start records the deployment and creates it: on GitHub (whose webhook
// then queues the job) or locally (queued at once). A deployment that
// could not be created is recorded as an error (see failUnstarted); one
// that was is not undone when only the reply fails.
func (d *deployer) start(c *sdk.Context, a *apps.App, dep *Deployment) error {
	if err := d.records.create(c, dep); err != nil {
		return err
	}
	var msg string
	var err error
	if d.githubMode(a) {
		msg, err = d.createOnGitHub(c, a, dep)
	} else {
		msg, err = d.queue(c, dep)
	}
	if err != nil {
		return err
	}
	return c.Reply("%s", msg)
}

// failUnstarted is deferred by what creates a recorded deployment (queue,
// createOnGitHub) with its returned error: when there is one, the
// deployment is marked error with the reason, so that it does not stay
// queued with no job to run it. It works on a detached context, since the
// command's own context ending may be the error. A deployment already
// handed to a job, or ended, is left alone.
func (d *deployer) failUnstarted(c *sdk.Context, dep *Deployment, errp *error) {
	if *errp == nil {
		return
	}
	bc := c.Detached()
	reason := (*errp).Error()
	marked := false
	upd, err := d.records.update(bc, dep.ID, func(x *Deployment) {
		if x.Ended() || x.JobID != 0 {
			return
		}
		if x.GitHubID == 0 {
			x.GitHubID = dep.GitHubID
		}
		x.State, x.Detail, x.FinishedAt = StateError, reason, d.now()
		marked = true
	})
	if err != nil {
		bc.Logger().Error("could not record a deployment that failed to start", "deployment", dep.ID, "reason", reason, "error", err)
		return
	}
	if !marked {
		return
	}
	// Created on GitHub before the failure: it must not stay pending there.
	if err := d.githubStatus(bc, upd, StateError); err != nil {
		bc.Logger().Warn("github status", "error", err)
	}
}

// enqueueQuiet queues the job of a deployment GitHub confirmed and says so
// in the deployment's thread.
func (d *deployer) enqueueQuiet(c *sdk.Context, dep *Deployment) error {
	msg, err := d.queue(c, dep)
	if err != nil {
		return err
	}
	d.notify(c, dep, &sdk.Output{Text: msg}, false)
	return nil
}

// queue queues the deployment's job behind the others of its app and
// environment, and returns the message saying so. A deployment that could
// not be queued is recorded as an error.
func (d *deployer) queue(c *sdk.Context, dep *Deployment) (_ string, err error) {
	defer d.failUnstarted(c, dep, &err)
	ahead, err := c.Jobs(sdk.JobFilter{Kind: jobDeploy, QueueKey: queueKey(dep), States: []sdk.JobState{sdk.JobQueued, sdk.JobRunning}})
	if err != nil {
		return "", err
	}
	payload := []byte(strconv.FormatInt(dep.ID, 10))
	jobID, err := c.Enqueue(jobDeploy, payload, sdk.EnqueueOptions{
		QueueKey: queueKey(dep), Notify: dep.Notify.ref(),
		Title: fmt.Sprintf("deployment #%d of %s/%s to %s", dep.ID, dep.App, dep.RefName(), dep.Env),
	})
	if err != nil {
		return "", err
	}
	if _, err := d.records.update(c, dep.ID, func(x *Deployment) { x.JobID = jobID }); err != nil {
		return "", err
	}
	msg := fmt.Sprintf("Deployment #%d: %s/%s to %s queued", dep.ID, dep.App, dep.RefName(), dep.Env)
	if dep.Task != "deploy" {
		msg += " (task " + dep.Task + ")"
	}
	msg += approvedBy(dep)
	if len(ahead) > 0 {
		others := "1 other deployment"
		if len(ahead) > 1 {
			others = fmt.Sprintf("%d other deployments", len(ahead))
		}
		msg += fmt.Sprintf(", behind %s of %s in %s", others, dep.App, dep.Env)
	}
	return msg + ".", nil
}

func queueKey(dep *Deployment) string { return dep.App + "/" + dep.Env }

// cmdDeploys lists recent deployments.
func (d *deployer) cmdDeploys(c *sdk.Context) error {
	a, err := d.app(c.Arg("app"))
	if err != nil {
		return err
	}
	env := ""
	if c.Arg("env") != "" {
		if env, err = a.ResolveEnv(c.Arg("env")); err != nil {
			return sdk.Errorf("%s", err.Error())
		}
	}
	deps, err := d.records.list(c, a.Name, env, 50)
	if err != nil {
		return err
	}
	var lines []string
	for _, dep := range deps {
		if ref := c.Arg("ref"); ref != "" && dep.Ref != ref && !strings.HasPrefix(dep.SHA, ref) {
			continue
		}
		lines = append(lines, d.describe(dep))
		if len(lines) == 10 {
			break
		}
	}
	if len(lines) == 0 {
		return c.Reply("No deployments of %s yet.", a.Name)
	}
	return c.ReplyOutput(&sdk.Output{Title: "Recent deployments of " + a.Name, Text: strings.Join(lines, "\n")})
}

// describe is one line about a deployment: who, what, when, state, duration.
func (d *deployer) describe(dep *Deployment) string {
	now := d.now()
	s := fmt.Sprintf("#%d %s %s to %s by %s, %s ago: %s", dep.ID, dep.Task, dep.What(), dep.Env, dep.Person(),
		now.Sub(dep.CreatedAt).Round(time.Second), dep.State)
	if !dep.StartedAt.IsZero() {
		switch dep.State {
		case StateRunning:
			s += " for " + dep.Duration(now).String()
		case StateSuccess:
			s += " in " + dep.Duration(now).String()
		default:
			s += " after " + dep.Duration(now).String()
		}
	}
	if dep.Detail != "" && dep.State != StateSuccess {
		s += " (" + firstLine(dep.Detail) + ")"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// cmdWhere lists environments with their locks and what runs there.
func (d *deployer) cmdWhere(c *sdk.Context) error {
	a, err := d.app(c.Arg("app"))
	if err != nil {
		return err
	}
	var fields []*sdk.Field
	for _, env := range a.Environments {
		var parts []string
		deps, err := d.records.list(c, a.Name, env, 30)
		if err != nil {
			return err
		}
		for _, dep := range deps {
			if dep.State == StateRunning {
				parts = append(parts, fmt.Sprintf("deploying %s now (#%d, %s)", dep.What(), dep.ID, dep.Person()))
				break
			}
		}
		current := "nothing deployed by Chima yet"
		for _, dep := range deps {
			if dep.State == StateSuccess {
				current = fmt.Sprintf("%s deployed by %s %s ago (#%d)", dep.What(), dep.Person(), d.now().Sub(dep.FinishedAt).Round(time.Second), dep.ID)
				break
			}
		}
		parts = append(parts, current)
		l, err := envLock(c, a.Name, env)
		if err != nil {
			return err
		}
		if l != nil {
			parts = append(parts, lockedBy(l, "", d.now()))
		}
		if u := a.EnvURL(env); u != "" {
			parts = append(parts, u)
		}
		fields = append(fields, &sdk.Field{Title: env, Value: strings.Join(parts, "; ")})
	}
	return c.ReplyOutput(&sdk.Output{Title: "You can deploy " + a.Name + " to:", Fields: fields})
}

// cmdLock locks an environment.
func (d *deployer) cmdLock(c *sdk.Context) error {
	a, env, err := d.appEnv(c)
	if err != nil {
		return err
	}
	ok, holder, err := c.Lock(lockName(a.Name, env), sdk.LockOptions{Owner: lockOwner(c.User()), Reason: c.Arg("reason")})
	if err != nil {
		return err
	}
	if !ok {
		return sdk.Errorf("%s in %s is already %s.", a.Name, env, lockedBy(holder, "", d.now()))
	}
	msg := fmt.Sprintf("Locked %s in %s", a.Name, env)
	if c.Arg("reason") != "" {
		msg += ": " + c.Arg("reason")
	}
	return c.Reply("%s. Others' deploys are refused until `deploy:unlock %s in %s`.", msg, a.Name, env)
}

// cmdUnlock unlocks an environment; admins may unlock others' locks.
func (d *deployer) cmdUnlock(c *sdk.Context) error {
	a, env, err := d.appEnv(c)
	if err != nil {
		return err
	}
	user := c.User()
	force := false
	for _, r := range user.Roles {
		force = force || r == "admin"
	}
	released, holder, err := c.Unlock(lockName(a.Name, env), lockOwner(user), force)
	if err != nil {
		return err
	}
	switch {
	case released && holder != nil && holder.Owner != lockOwner(user):
		return c.Reply("Unlocked %s in %s (it was %s).", a.Name, env, lockedBy(holder, "", d.now()))
	case released:
		return c.Reply("Unlocked %s in %s.", a.Name, env)
	case holder == nil:
		return c.Reply("%s in %s was not locked.", a.Name, env)
	default:
		return sdk.Errorf("%s in %s is %s; only they (or an admin) can unlock it.", a.Name, env, lockedBy(holder, "", d.now()))
	}
}

func (d *deployer) appEnv(c *sdk.Context) (*apps.App, string, error) {
	a, err := d.app(c.Arg("app"))
	if err != nil {
		return nil, "", err
	}
	env, err := a.ResolveEnv(c.Arg("env"))
	if err != nil {
		return nil, "", sdk.Errorf("%s", err.Error())
	}
	return a, env, nil
}

// cmdCancel stops a queued or running deployment.
func (d *deployer) cmdCancel(c *sdk.Context) error {
	dep, err := d.records.get(c, c.Int("id"))
	if errors.Is(err, ErrNoDeployment) {
		return sdk.Errorf("There is no deployment #%d.", c.Int("id"))
	}
	if err != nil {
		return err
	}
	return d.cancel(c, dep)
}

// Button actions: the Cancel button of a deployment's progress and the
// Rollback button of a successful one. Each button's value is the
// deployment's id.
const (
	actionCancel   = "cancel"
	actionRollback = "rollback"
)

// buttonDeployment returns the deployment a button's value names, refusing
// a click from a room the app's deploys may not come from: the click is
// checked as the command it stands for would be.
func (d *deployer) buttonDeployment(c *sdk.Context) (*Deployment, *apps.App, error) {
	id, err := strconv.ParseInt(c.ButtonValue(), 10, 64)
	if err != nil {
		return nil, nil, sdk.Errorf("That button no longer works.")
	}
	dep, err := d.records.get(c, id)
	if errors.Is(err, ErrNoDeployment) {
		return nil, nil, sdk.Errorf("There is no deployment #%d anymore.", id)
	}
	if err != nil {
		return nil, nil, err
	}
	a, err := d.app(dep.App)
	if err != nil {
		return nil, nil, err
	}
	src := c.Source()
	if err := a.CheckRoom(src.Adapter, src.Room, src.RoomName); err != nil {
		return nil, nil, sdk.Errorf("%s", err.Error())
	}
	return dep, a, nil
}

// actCancel is a click on the Cancel button of a deployment's progress.
func (d *deployer) actCancel(c *sdk.Context) error {
	dep, _, err := d.buttonDeployment(c)
	if err != nil {
		return err
	}
	return d.cancel(c, dep)
}

// actRollback is a click on the Rollback button of a successful deployment:
// it rolls the environment back from that deployment, if that is still what
// runs there.
func (d *deployer) actRollback(c *sdk.Context) error {
	dep, a, err := d.buttonDeployment(c)
	if err != nil {
		return err
	}
	current, _, err := d.rollbackTarget(c, a.Name, dep.Env)
	if err != nil {
		return err
	}
	if current == nil || current.ID != dep.ID {
		what := "nothing"
		if current != nil {
			what = fmt.Sprintf("#%d (%s)", current.ID, current.What())
		}
		return sdk.Errorf("Deployment #%d is no longer what runs in %s: %s is. To roll that back, type: rollback %s in %s", dep.ID, dep.Env, what, a.Name, dep.Env)
	}
	return d.rollback(c, a, dep.Env)
}

// cancel stops dep, queued or running.
func (d *deployer) cancel(c *sdk.Context, dep *Deployment) error {
	if dep.Ended() {
		if dep.Detail != "" && dep.State != StateSuccess {
			return sdk.Errorf("Deployment #%d already ended: %s (%s).", dep.ID, dep.State, firstLine(dep.Detail))
		}
		return sdk.Errorf("Deployment #%d already ended: %s.", dep.ID, dep.State)
	}
	if dep.JobID == 0 {
		// Created on GitHub, not queued here yet.
		if _, err := d.records.update(c, dep.ID, func(x *Deployment) {
			x.State, x.Detail, x.FinishedAt = StateCancelled, "cancelled by "+c.User().ID, d.now()
		}); err != nil {
			return err
		}
		return c.Reply("Deployment #%d cancelled before it was queued.", dep.ID)
	}
	ok, job, err := c.CancelJob(dep.JobID)
	if err != nil {
		return err
	}
	if !ok {
		if st := job.State; st != "" && st != sdk.JobQueued && st != sdk.JobRunning {
			// The job ended, but the record never heard (this plugin died
			// under it and has not been told yet): say how it ended.
			detail := firstNonEmpty(job.Detail, "its job ended "+st.String())
			if err := d.report(c, dep, StateError, detail, ""); err != nil {
				return err
			}
			return sdk.Errorf("Deployment #%d already ended: %s (%s).", dep.ID, StateError, detail)
		}
		return sdk.Errorf("Deployment #%d could not be cancelled: it is ending.", dep.ID)
	}
	// The job's own state says whether it had started: the record read
	// above may be a moment old.
	if job.State == sdk.JobCancelled && job.StartedAt.IsZero() {
		if _, err := d.records.update(c, dep.ID, func(x *Deployment) {
			if !x.Ended() && x.State == StateQueued {
				x.State, x.Detail, x.FinishedAt = StateCancelled, "cancelled by "+c.User().ID+" before it started", d.now()
			}
		}); err != nil {
			return err
		}
		if err := d.githubStatus(c, dep, StateCancelled); err != nil {
			c.Logger().Warn("github status", "error", err)
		}
		return c.Reply("Deployment #%d of %s cancelled before it started.", dep.ID, dep.Summary())
	}
	return c.Reply("Cancelling deployment #%d of %s: its provider is being stopped.", dep.ID, dep.Summary())
}

// cmdRollback redeploys the previous successful commit of an environment.
func (d *deployer) cmdRollback(c *sdk.Context) error {
	a, env, err := d.appEnv(c)
	if err != nil {
		return err
	}
	return d.rollback(c, a, env)
}

// rollbackTarget returns the newest successful deployment of app to env
// and the newest successful one of another commit before it, either nil
// when there is none.
func (d *deployer) rollbackTarget(c *sdk.Context, app, env string) (current, previous *Deployment, err error) {
	deps, err := d.records.list(c, app, env, 200)
	if err != nil {
		return nil, nil, err
	}
	for _, dep := range deps {
		if dep.State != StateSuccess {
			continue
		}
		if current == nil {
			current = dep
		} else if dep.SHA != current.SHA {
			return current, dep, nil
		}
	}
	return current, nil, nil
}

// rollback redeploys the previous successful commit of a's env.
func (d *deployer) rollback(c *sdk.Context, a *apps.App, env string) error {
	src := c.Source()
	if err := a.CheckRoom(src.Adapter, src.Room, src.RoomName); err != nil {
		return sdk.Errorf("%s", err.Error())
	}
	if err := envRefusal(a, env); err != nil {
		return err
	}
	current, previous, err := d.rollbackTarget(c, a.Name, env)
	if err != nil {
		return err
	}
	if previous == nil {
		return sdk.Errorf("Nothing to roll back to: %s in %s has no earlier successful deployment of another commit.", a.Name, env)
	}
	user := c.User()
	l, err := envLock(c, a.Name, env)
	if err != nil {
		return err
	}
	if who := lockedBy(l, commandLockOwner(c), d.now()); who != "" {
		return sdk.Errorf("%s in %s is %s.", a.Name, env, who)
	}
	dep := &Deployment{
		App: a.Name, Env: env, Ref: previous.SHA, Task: previous.Task, Hosts: previous.Hosts, Force: true,
		User: user.ID, UserName: user.Name, Owner: user.Person, State: StateQueued, RollbackOf: current.ID,
		Notify: notifyTarget(src), CreatedAt: d.now(), TriggeredBy: c.TriggeredBy(),
	}
	// Asked once there is something to roll back to, which a refusal
	// says without anyone's approval.
	if err := needApproval(c, a, env); err != nil {
		return err
	}
	approve(dep, c.Approval())
	if err := c.Reply("Rolling %s in %s back from %s (#%d) to %s (#%d).", a.Name, env, current.What(), current.ID, previous.What(), previous.ID); err != nil {
		return err
	}
	return d.start(c, a, dep)
}

// cmdStatus shows one deployment with the end of its log.
func (d *deployer) cmdStatus(c *sdk.Context) error {
	dep, err := d.records.get(c, c.Int("id"))
	if errors.Is(err, ErrNoDeployment) {
		return sdk.Errorf("There is no deployment #%d.", c.Int("id"))
	}
	if err != nil {
		return err
	}
	tail, err := d.logTail(c, dep.ID, 15)
	if err != nil {
		return err
	}
	out := &sdk.Output{Title: fmt.Sprintf("Deployment #%d", dep.ID), Text: d.describe(dep), Code: tail}
	if u := d.logURL(c, dep.ID); u != "" {
		out.Fields = append(out.Fields, &sdk.Field{Title: "Log", Value: u})
	}
	return c.ReplyOutput(out)
}

func logName(id int64) string { return "deployments/" + strconv.FormatInt(id, 10) }

// logTail returns the last n lines of a deployment's log.
func (d *deployer) logTail(c *sdk.Context, id int64, n int) (string, error) {
	const window = 16 << 10
	_, size, found, err := c.ReadLog(logName(id), 0, 1)
	if err != nil || !found {
		return "", err
	}
	data, _, _, err := c.ReadLog(logName(id), max(size-window, 0), window)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n"), nil
}

// onInterrupted ends a deployment whose job was interrupted: Chima stopped
// or restarted, or this plugin died, while it ran. The record, GitHub and
// the people who follow it (the thread, the app's notify rooms) all hear
// that it ended; the job is not re-run. A deployment that reported its own
// end before the process stopped is left alone.
func (d *deployer) onInterrupted(c *sdk.Context) error {
	j := c.Job
	if j == nil {
		return errors.New("no interrupted job in the call")
	}
	id, err := strconv.ParseInt(string(j.Payload), 10, 64)
	if err != nil {
		return fmt.Errorf("interrupted job %d has no deployment id: %w", j.JobID, err)
	}
	dep, err := d.records.get(c, id)
	if err != nil || dep.Ended() {
		return err
	}
	reason := d.interruptedReason(c, dep, j.JobID)
	tail, err := d.logTail(c, dep.ID, 20)
	if err != nil {
		c.Logger().Warn("read the log of an interrupted deployment", "deployment", dep.ID, "error", err)
	}
	// It ended when it was last seen alive, not now: the plugin or the bot
	// may have been down for a while in between.
	end := dep.AliveAt
	if end.IsZero() && !dep.StartedAt.IsZero() {
		end = dep.StartedAt
	}
	return d.reportEnded(c, dep, StateError, reason, tail, end)
}

// interruptedReason is why the host says job jobID of dep was interrupted
// ("interrupted because the deploy plugin crashed"), or a general reason
// when it cannot be found.
func (d *deployer) interruptedReason(c *sdk.Context, dep *Deployment, jobID int64) string {
	jobs, err := c.Jobs(sdk.JobFilter{Kind: jobDeploy, QueueKey: queueKey(dep), States: []sdk.JobState{sdk.JobInterrupted}, Limit: 50})
	if err == nil {
		for _, j := range jobs {
			if j.ID == jobID && strings.HasPrefix(j.Detail, "interrupted") {
				return j.Detail
			}
		}
	}
	return "interrupted: Chima stopped while it ran"
}
