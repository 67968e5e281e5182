package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
	"github.com/chimaops/chima/plugins/internal/ghclient"
	"github.com/chimaops/chima/sdk"
)

// payload is what Chima puts in a GitHub deployment's payload: where to
// report, which bot created it, and the app's settings without secrets.
type payload struct {
	Chima struct {
		Instance string `json:"instance"`
		ID       int64  `json:"id"`
		Notify   Target `json:"notify"`
		User     string `json:"user"`
		UserName string `json:"user_name,omitempty"`
		Hosts    string `json:"hosts,omitempty"`
		Rollback int64  `json:"rollback_of,omitempty"`
	} `json:"chima"`
	// Config is the app's configuration, for whoever reads the deployment
	// on GitHub; it holds no secrets (tokens live in the environment).
	Config *apps.App `json:"config,omitempty"`
}

// githubGitAuth is the git environment that authenticates https requests to
// github.com, and to the other hosts given (GitHub Enterprise Servers), with
// token.
func githubGitAuth(token string, hosts ...string) []string {
	return gitAuthHeader(token, append([]string{"github.com"}, hosts...)...)
}

// gitAuthHeader is the git environment that authenticates https requests to
// exactly the hosts given with token, as an extra header (the token never
// appears in a URL, a command line or a log).
func gitAuthHeader(token string, hosts ...string) []string {
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	env := []string{"GIT_CONFIG_COUNT=" + strconv.Itoa(len(hosts))}
	for i, h := range hosts {
		n := strconv.Itoa(i)
		env = append(env, "GIT_CONFIG_KEY_"+n+"=http.https://"+h+"/.extraheader",
			"GIT_CONFIG_VALUE_"+n+"=AUTHORIZATION: basic "+basic)
	}
	return env
}

// githubHosts are the hosts of the apps' own github_api URLs, sorted, once
// each.
func githubHosts(set *apps.Set) []string {
	seen := map[string]bool{}
	var hosts []string
	for _, name := range set.Names() {
		a, _ := set.Lookup(name)
		if u, err := url.Parse(a.GitHubAPI); err == nil && a.GitHubAPI != "" && !seen[webHost(u)] {
			seen[webHost(u)] = true
			hosts = append(hosts, webHost(u))
		}
	}
	sort.Strings(hosts)
	return hosts
}

// webHost is the host that serves the repositories of a GitHub API:
// github.com for api.github.com, the server itself for an Enterprise
// Server's https://ghe.example.com/api/v3.
func webHost(api *url.URL) string {
	if api.Host == "api.github.com" {
		return "github.com"
	}
	return api.Host
}

// enterpriseCloneURL is the clone URL template of the repositories served
// with the GitHub API api.
func enterpriseCloneURL(api string) string {
	u, err := url.Parse(api)
	if err != nil {
		return api
	}
	return u.Scheme + "://" + webHost(u) + "/{owner}/{name}.git"
}

// createOnGitHub creates the GitHub Deployment of the recorded dep and
// returns the message saying so; GitHub's deployment webhook then queues the
// job (onGitHubDeployment). Each API answer becomes a clear chat message. A
// deployment that could not be created is recorded as an error.
func (d *deployer) createOnGitHub(c *sdk.Context, a *apps.App, dep *Deployment) (_ string, err error) {
	defer d.failUnstarted(c, dep, &err)
	owner, name, _ := a.GitHubRepo()
	var p payload
	p.Chima.Instance, p.Chima.ID, p.Chima.Notify = d.instance, dep.ID, dep.Notify
	p.Chima.User, p.Chima.UserName, p.Chima.Hosts, p.Chima.Rollback = dep.User, dep.UserName, dep.Hosts, dep.RollbackOf
	p.Config = a
	autoMerge := a.AutoMerge && !dep.Force
	req := &github.DeploymentRequest{
		Ref:                   github.String(dep.Ref),
		Task:                  github.String(dep.Task),
		Environment:           github.String(dep.Env),
		AutoMerge:             github.Bool(autoMerge),
		Payload:               p,
		Description:           github.String(fmt.Sprintf("%s deploying %s to %s via Chima (#%d)", dep.Person(), dep.RefName(), dep.Env, dep.ID)),
		ProductionEnvironment: github.Bool(strings.HasPrefix(dep.Env, "prod")),
	}
	switch {
	case dep.Force:
		req.RequiredContexts = &[]string{} // ! skips the required status checks
	case a.RequiredContexts != nil:
		req.RequiredContexts = &a.RequiredContexts
	}
	ghDep, resp, err := d.github(a).Repositories.CreateDeployment(c, owner, name, req)
	var accepted *github.AcceptedError
	if errors.As(err, &accepted) || (err == nil && (resp.StatusCode == http.StatusAccepted || ghDep.GetID() == 0)) {
		// 202: GitHub merged the default branch into the ref first.
		return "", sdk.Errorf("GitHub auto-merged %s's default branch into %s first (%s). Run the deploy again to deploy the merged result.",
			owner+"/"+name, dep.Ref, mergeMessage(accepted))
	}
	if ie := ghclient.InstallationError("the deployment of "+owner+"/"+name, err); ie != nil {
		return "", sdk.Errorf("%v.", ie)
	}
	if err != nil {
		return "", sdk.Errorf("%s", githubError(owner+"/"+name, dep, resp, err))
	}
	// From here on a failure is also reported to GitHub (failUnstarted).
	dep.GitHubID = ghDep.GetID()
	upd, err := d.records.update(c, dep.ID, func(x *Deployment) { x.GitHubID = ghDep.GetID(); x.SHA = ghDep.GetSHA() })
	if err != nil {
		return "", err
	}
	if err := d.records.linkGitHub(c, upd); err != nil {
		return "", err
	}
	return fmt.Sprintf("Deployment #%d: created GitHub deployment %d of %s/%s to %s; it starts when GitHub confirms it.",
		upd.ID, ghDep.GetID(), upd.App, upd.RefName(), upd.Env), nil
}

// githubLookupError says why a GitHub API read failed, for chat.
func githubLookupError(resp *github.Response, err error) string {
	if ie := ghclient.InstallationError("reading the repository", err); ie != nil {
		return ie.Error() + "."
	}
	var ge *github.ErrorResponse
	msg := err.Error()
	if errors.As(err, &ge) {
		msg = ge.Message
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	switch status {
	case 0:
		return fmt.Sprintf("GitHub could not be reached (%v).", err)
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("GitHub answered %d: the token cannot see the repository (%s).", status, msg)
	}
	return fmt.Sprintf("GitHub answered %d (%s).", status, msg)
}

// mergeMessage reads the message of GitHub's 202 answer.
func mergeMessage(accepted *github.AcceptedError) string {
	var m struct {
		Message string `json:"message"`
	}
	if accepted != nil {
		_ = json.Unmarshal(accepted.Raw, &m)
	}
	return firstNonEmpty(m.Message, "merged")
}

// githubError turns a failed CreateDeployment into a message for chat.
func githubError(repo string, dep *Deployment, resp *github.Response, err error) string {
	var ge *github.ErrorResponse
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	errors.As(err, &ge)
	msg := ""
	if ge != nil {
		msg = ge.Message
	}
	switch status {
	case http.StatusConflict:
		if contexts := failedContexts(ge); len(contexts) > 0 {
			return fmt.Sprintf("GitHub refused to deploy %s: required status checks are not green on %s:\n%s\nFix them, or force with deploy!.",
				dep.Ref, repo, strings.Join(contexts, "\n"))
		}
		return fmt.Sprintf("GitHub could not merge the default branch of %s into %s (merge conflict): %s. Merge it by hand, or deploy with deploy! to skip auto-merge.",
			repo, dep.Ref, msg)
	case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("GitHub answered %d for %s: the token cannot see the repository or lacks the repo_deployment scope (%s).", status, repo, msg)
	case http.StatusUnprocessableEntity:
		return fmt.Sprintf("GitHub doesn't know the ref %q in %s: %s.", dep.Ref, repo, msg)
	}
	if status != 0 {
		return fmt.Sprintf("GitHub answered %d creating the deployment of %s: %s", status, repo, msg)
	}
	return fmt.Sprintf("Could not reach GitHub to deploy %s: %v", repo, err)
}

// failedContexts lists the failing required contexts GitHub reports in a
// 409's errors: [{"contexts":[{"context":"ci","state":"failure"}]}].
func failedContexts(ge *github.ErrorResponse) []string {
	if ge == nil || ge.Response == nil || ge.Response.Body == nil {
		return nil
	}
	// go-github puts the raw body back: the contexts are not in its types.
	raw, err := io.ReadAll(io.LimitReader(ge.Response.Body, 1<<20))
	if err != nil {
		return nil
	}
	var body struct {
		Errors []struct {
			Contexts []struct {
				Context string `json:"context"`
				State   string `json:"state"`
			} `json:"contexts"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return nil
	}
	var out []string
	for _, e := range body.Errors {
		for _, ctx := range e.Contexts {
			if ctx.State != "success" {
				out = append(out, fmt.Sprintf("• %s: %s", ctx.Context, ctx.State))
			}
		}
	}
	sort.Strings(out)
	return out
}

// onGitHubDeployment queues the job for a deployment GitHub confirmed. It
// ignores deployments meant for another bot, and records deployments made
// outside chat (GitHub's UI, another tool) that name no bot.
func (d *deployer) onGitHubDeployment(c *sdk.Context) error {
	var ev github.DeploymentEvent
	if err := json.Unmarshal(c.Event.Payload, &ev); err != nil {
		return fmt.Errorf("decode deployment event: %w", err)
	}
	gd := ev.GetDeployment()
	var p payload
	if raw, err := json.Marshal(gd.Payload); err == nil {
		_ = json.Unmarshal(raw, &p)
	}
	if p.Chima.Instance != "" && p.Chima.Instance != d.instance {
		c.Logger().Info("deployment for another bot ignored", "github_id", gd.GetID(), "instance", p.Chima.Instance)
		return nil
	}
	repo := ev.GetRepo().GetFullName()
	a := d.appForRepo(repo)
	if a == nil {
		c.Logger().Info("deployment of a repository without an app ignored", "repo", repo)
		return nil
	}
	var dep *Deployment
	var err error
	if p.Chima.Instance == d.instance && p.Chima.ID != 0 {
		// Ours: found by our own id, since the webhook may arrive before
		// the API's answer to the command has been recorded. The job
		// deploys the commit GitHub approved, not what the ref points to
		// when it runs.
		dep, err = d.records.get(c, p.Chima.ID)
		if err == nil && (dep.App != a.Name || (dep.GitHubID != 0 && dep.GitHubID != gd.GetID())) {
			c.Logger().Warn("deployment event naming another deployment ignored", "github_id", gd.GetID(), "deployment", dep.ID)
			return nil
		}
		if err == nil {
			dep, err = d.records.update(c, p.Chima.ID, func(x *Deployment) {
				x.GitHubID, x.SHA = gd.GetID(), firstNonEmpty(gd.GetSHA(), x.SHA)
			})
		}
		if err == nil {
			err = d.records.linkGitHub(c, dep)
		}
	} else {
		dep, err = d.records.byGitHubID(c, gd.GetID())
	}
	if errors.Is(err, ErrNoDeployment) {
		// Made outside chat: report to the app's notify rooms.
		dep = &Deployment{
			GitHubID: gd.GetID(), App: a.Name, Env: gd.GetEnvironment(), Ref: gd.GetRef(), SHA: gd.GetSHA(),
			Task: firstNonEmpty(gd.GetTask(), "deploy"), User: gd.GetCreator().GetLogin(), State: StateQueued,
			CreatedAt: d.now(),
		}
		if rooms := a.ReportRooms(); len(rooms) > 0 {
			r := rooms[0].Resolve(d.defaultAdapter)
			dep.Notify = Target{Adapter: r.Adapter, Room: r.Name}
		}
		if err := d.records.create(c, dep); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if dep.JobID != 0 || dep.Ended() {
		return nil // already queued: a redelivery that got past de-duplication
	}
	// The environment is checked when the job runs (runDeploy), for this
	// path and every other.
	return d.enqueueQuiet(c, dep)
}

// appForRepo finds the app deployed from a GitHub repository.
func (d *deployer) appForRepo(fullName string) *apps.App {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, n := range d.apps.Names() {
		a, _ := d.apps.Lookup(n)
		if owner, name, ok := a.GitHubRepo(); ok && strings.EqualFold(owner+"/"+name, fullName) {
			return a
		}
	}
	return nil
}

// githubStatus posts a deployment status for a GitHub deployment.
func (d *deployer) githubStatus(c *sdk.Context, dep *Deployment, state string) error {
	if dep.GitHubID == 0 {
		return nil
	}
	a, err := d.app(dep.App)
	if err != nil {
		return err
	}
	gh := d.github(a)
	if gh == nil {
		return nil
	}
	owner, name, ok := a.GitHubRepo()
	if !ok {
		return nil
	}
	ghState := state
	switch state {
	case StateRunning:
		ghState = "in_progress"
	case StateCancelled:
		ghState = "inactive"
	}
	req := &github.DeploymentStatusRequest{
		State:       github.String(ghState),
		Description: github.String(truncate(fmt.Sprintf("Chima #%d: %s", dep.ID, firstNonEmpty(firstLine(dep.Detail), state)), 140)),
		Environment: github.String(dep.Env),
	}
	if u := d.logURL(c, dep.ID); u != "" {
		req.LogURL = github.String(u)
	}
	if u := a.EnvURL(dep.Env); u != "" {
		req.EnvironmentURL = github.String(u)
	}
	if _, _, err := gh.Repositories.CreateDeploymentStatus(c, owner, name, dep.GitHubID, req); err != nil {
		if ie := ghclient.InstallationError(fmt.Sprintf("the %s status of GitHub deployment %d", ghState, dep.GitHubID), err); ie != nil {
			return ie
		}
		return fmt.Errorf("post %s status of GitHub deployment %d: %w", ghState, dep.GitHubID, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
