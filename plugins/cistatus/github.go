package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/plugins/internal/ghclient"
)

// etagCache is an http.RoundTripper that makes GETs conditional: it keeps
// the last answer of each URL with its ETag and sends If-None-Match, so
// that an unchanged resource comes back as a 304, which costs no rate-limit
// quota, and is answered from the cache.
type etagCache struct {
	base http.RoundTripper
	mu   sync.Mutex
	// entries by method+URL+Accept; order is the insertion order, for
	// eviction.
	entries map[string]*cachedAnswer
	order   []string
	max     int
	// hits counts answers served from the cache after a 304.
	hits int
}

type cachedAnswer struct {
	etag   string
	header http.Header
	body   []byte
}

func newETagCache(base http.RoundTripper, max int) *etagCache {
	if base == nil {
		base = http.DefaultTransport
	}
	return &etagCache{base: base, entries: map[string]*cachedAnswer{}, max: max}
}

// RoundTrip sends req, conditionally when its answer is cached.
func (e *etagCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return e.base.RoundTrip(req)
	}
	key := req.URL.String() + "\x00" + req.Header.Get("Accept") + "\x00" + req.Header.Get("Authorization")
	e.mu.Lock()
	entry := e.entries[key]
	e.mu.Unlock()
	if entry != nil {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", entry.etag)
	}
	resp, err := e.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusNotModified && entry != nil:
		resp.Body.Close()
		e.mu.Lock()
		e.hits++
		e.mu.Unlock()
		h := entry.header.Clone()
		for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"} {
			if v := resp.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
			Header: h, Body: io.NopCloser(bytes.NewReader(entry.body)), ContentLength: int64(len(entry.body)), Request: req,
		}, nil
	case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "":
		body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", req.URL.Path, err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		e.mu.Lock()
		if _, ok := e.entries[key]; !ok {
			e.order = append(e.order, key)
		}
		e.entries[key] = &cachedAnswer{etag: resp.Header.Get("ETag"), header: resp.Header.Clone(), body: body}
		for len(e.order) > e.max {
			delete(e.entries, e.order[0])
			e.order = e.order[1:]
		}
		e.mu.Unlock()
	}
	return resp, nil
}

// newGitHubClient is a client of the REST API at api (GitHub's own when
// ""), authenticated by auth (ghclient: a token, or a GitHub App's
// installation whose tokens are exchanged at api), whose GETs go through an
// ETag cache. The cache is above the app's transport, so that a renewed
// installation token keeps the cached answers.
func newGitHubClient(auth ghclient.Auth, api string) (*github.Client, error) {
	c, err := ghclient.New(auth, api, ghclient.Options{
		Wrap: func(base http.RoundTripper) http.RoundTripper { return newETagCache(base, 2048) },
	})
	if err != nil {
		return nil, err
	}
	return c.Client, nil
}

// webBase is the web address of the repositories served by the API api.
func webBase(api string) string {
	if api == "" {
		return "https://github.com"
	}
	u, err := url.Parse(api)
	if err != nil {
		return "https://github.com"
	}
	if u.Host == "api.github.com" {
		return "https://github.com"
	}
	return u.Scheme + "://" + u.Host
}

// rollupResult is a commit's CI, merged from the three systems.
type rollupResult struct {
	Repo, Branch, SHA string
	PR                int
	PRTitle           string
	Checks            []check
	// Required are the checks branch protection requires; RequiredKnown
	// is false when they could not be read, and RequiredErr then says why.
	Required      []string
	RequiredKnown bool
	RequiredErr   error
	// LastGreen is the newest green commit of Branch when SHA is not green.
	LastGreen string
	// Calls counts the API requests made.
	Calls int
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// splitRepo splits "owner/name".
func splitRepo(repo string) (owner, name string) {
	owner, name, _ = strings.Cut(repo, "/")
	return owner, name
}

// fetchRollup reads the CI of the head of ref (a branch, tag or SHA; the
// default branch when "") or of pull request pr, at a handful of calls:
// the ref, the combined status, the check runs, the workflow runs and their
// jobs, the branch's protection, and (when not green) the branch's recent
// runs for its last green commit.
func fetchRollup(ctx context.Context, gh *github.Client, repo, ref string, pr int) (*rollupResult, error) {
	return fetchRollupOf(ctx, gh, repo, ref, pr, "")
}

// fetchRollupOf is fetchRollup, for a SHA ref of branch too: its protection
// says which checks are required, and no last green commit is looked for.
func fetchRollupOf(ctx context.Context, gh *github.Client, repo, ref string, pr int, branch string) (*rollupResult, error) {
	owner, name := splitRepo(repo)
	r := &rollupResult{Repo: repo}
	protected := branch
	switch {
	case pr > 0:
		p, _, err := gh.PullRequests.Get(ctx, owner, name, pr)
		r.Calls++
		if err != nil {
			return nil, fmt.Errorf("read pull request #%d of %s: %w", pr, repo, err)
		}
		r.PR, r.PRTitle, r.SHA, r.Branch = pr, p.GetTitle(), p.GetHead().GetSHA(), p.GetHead().GetRef()
		protected = p.GetBase().GetRef()
	case shaRE.MatchString(ref):
		r.SHA = ref
	default:
		if ref == "" {
			rp, _, err := gh.Repositories.Get(ctx, owner, name)
			r.Calls++
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", repo, err)
			}
			ref = rp.GetDefaultBranch()
		}
		sha, _, err := gh.Repositories.GetCommitSHA1(ctx, owner, name, ref, "")
		r.Calls++
		if err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", ref, repo, err)
		}
		r.SHA, r.Branch, protected = sha, ref, ref
	}
	checks := map[string]check{}
	combined, _, err := gh.Repositories.GetCombinedStatus(ctx, owner, name, r.SHA, &github.ListOptions{PerPage: 100})
	r.Calls++
	if err != nil {
		return nil, fmt.Errorf("read the statuses of %s: %w", short(r.SHA), err)
	}
	for _, s := range combined.Statuses {
		merge(checks, fromStatus(s.GetContext(), s.GetState(), s.GetTargetURL(), s.GetCreatedAt().Time, s.GetUpdatedAt().Time))
	}
	runs, _, err := gh.Checks.ListCheckRunsForRef(ctx, owner, name, r.SHA, &github.ListCheckRunsOptions{Filter: github.String("latest"), ListOptions: github.ListOptions{PerPage: 100}})
	r.Calls++
	if err != nil {
		return nil, fmt.Errorf("read the check runs of %s: %w", short(r.SHA), err)
	}
	for _, cr := range runs.CheckRuns {
		merge(checks, fromCheckRun(cr))
	}
	wr, _, err := gh.Actions.ListRepositoryWorkflowRuns(ctx, owner, name, &github.ListWorkflowRunsOptions{HeadSHA: r.SHA, ListOptions: github.ListOptions{PerPage: 50}})
	r.Calls++
	if err != nil {
		return nil, fmt.Errorf("read the workflow runs of %s: %w", short(r.SHA), err)
	}
	latest := map[int64]*github.WorkflowRun{}
	for _, run := range wr.WorkflowRuns {
		if old := latest[run.GetWorkflowID()]; old == nil || run.GetID() > old.GetID() || (run.GetID() == old.GetID() && run.GetRunAttempt() > old.GetRunAttempt()) {
			latest[run.GetWorkflowID()] = run
		}
	}
	ids := make([]int64, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		run := latest[id]
		w := fromWorkflowRun(run, "")
		merge(checks, w)
		jobs, _, err := gh.Actions.ListWorkflowJobs(ctx, owner, name, run.GetID(), &github.ListWorkflowJobsOptions{Filter: "latest", ListOptions: github.ListOptions{PerPage: 100}})
		r.Calls++
		if err != nil {
			return nil, fmt.Errorf("read the jobs of run %d: %w", run.GetID(), err)
		}
		for _, j := range jobs.Jobs {
			merge(checks, fromJob(j, w.Name))
		}
	}
	if protected != "" {
		req, resp, err := gh.Repositories.GetRequiredStatusChecks(ctx, owner, name, protected)
		r.Calls++
		switch {
		case err == nil:
			r.RequiredKnown = true
			r.Required = append(r.Required, req.Contexts...)
			for _, c := range req.Checks {
				if !contains(r.Required, c.Context) {
					r.Required = append(r.Required, c.Context)
				}
			}
		case errors.Is(err, github.ErrBranchNotProtected) || requiredChecksNotEnabled(err):
			r.RequiredKnown = true // not protected, or protected without required checks: nothing is required
		default:
			r.RequiredErr = protectionError(protected, resp, err)
		}
	}
	markRequired(checks, r.Required)
	r.Checks = visible(checks)
	if st := overall(r.Checks); st != stateSuccess && r.Branch != "" && branch == "" {
		r.LastGreen, _ = lastGreen(ctx, gh, repo, r.Branch, r.SHA)
		r.Calls++
	}
	return r, nil
}

// requiredChecksNotEnabled says whether err is GitHub's answer for a
// protected branch that requires no status checks: a 404 whose message is
// "Required status checks not enabled" (go-github maps only "Branch not
// protected" to ErrBranchNotProtected).
func requiredChecksNotEnabled(err error) bool {
	var ge *github.ErrorResponse
	return errors.As(err, &ge) && ge.Response != nil && ge.Response.StatusCode == http.StatusNotFound && ge.Message == "Required status checks not enabled"
}

// protectionError says why branch's required checks could not be read.
// Any other 404 than the two above is not "unprotected": GitHub answers a
// plain "Not Found" to a token without admin rights on the repository, and
// a 403 to an app or fine-grained token without the Administration (read)
// permission, or on a plan without protected branches.
func protectionError(branch string, resp *github.Response, err error) error {
	var ge *github.ErrorResponse
	// A rate limit is a RateLimitError, not an ErrorResponse: apiError
	// tells its reset time.
	if errors.As(err, &ge) && resp != nil && (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("GitHub answered %d (%s) to reading the protection of %s: the token needs admin rights on the repository (Administration: read, for a GitHub App or a fine-grained token)", resp.StatusCode, ge.Message, branch)
	}
	return apiError("the protection of "+branch, err)
}

// markRequired marks the checks branch protection requires, and adds those
// not reported yet as expected.
func markRequired(checks map[string]check, required []string) {
	for _, name := range required {
		found := false
		for k, c := range checks {
			if c.Name == name && c.Kind != kindWorkflow {
				c.Required = true
				checks[k] = c
				found = true
			}
		}
		if !found {
			checks["expected:"+name] = check{Key: "expected:" + name, Kind: kindStatus, Name: name, State: stateQueued, Required: true}
		}
	}
}

// lastGreen finds the newest commit of branch other than head whose
// workflow runs all passed, from one page of the branch's completed runs.
func lastGreen(ctx context.Context, gh *github.Client, repo, branch, head string) (string, error) {
	owner, name := splitRepo(repo)
	runs, _, err := gh.Actions.ListRepositoryWorkflowRuns(ctx, owner, name, &github.ListWorkflowRunsOptions{Branch: branch, Status: "completed", ListOptions: github.ListOptions{PerPage: 50}})
	if err != nil {
		return "", fmt.Errorf("read the runs of %s: %w", branch, err)
	}
	var order []string
	green := map[string]bool{}
	for _, run := range runs.WorkflowRuns {
		sha := run.GetHeadSHA()
		if _, seen := green[sha]; !seen {
			order = append(order, sha)
			green[sha] = true
		}
		if !passing(normState(run.GetStatus(), run.GetConclusion())) {
			green[sha] = false
		}
	}
	for _, sha := range order {
		if sha != head && green[sha] {
			return sha, nil
		}
	}
	return "", nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fromStatus is a commit status as a check.
func fromStatus(context, state, target string, created, updated time.Time) check {
	c := check{Key: "status:" + context, Kind: kindStatus, Name: context, State: statusState(state), URL: target, Updated: updated, Started: created}
	if !pending(c.State) {
		c.Ended = updated
	}
	if c.Updated.IsZero() {
		c.Updated = created
	}
	return c
}

// fromCheckRun is a check run as a check.
func fromCheckRun(cr *github.CheckRun) check {
	return check{
		Key: "check:" + cr.GetName(), Kind: kindCheck, Name: cr.GetName(), State: normState(cr.GetStatus(), cr.GetConclusion()),
		Started: cr.GetStartedAt().Time, Ended: cr.GetCompletedAt().Time, URL: cr.GetHTMLURL(), ID: cr.GetID(), App: cr.GetApp().GetSlug(),
	}
}

// workflowName is a run's workflow's name. A run named by run-name has that
// title as its name and display_title; the workflow's own name is kept
// apart, so the run is still found (and updated) under its workflow.
func workflowName(run *github.WorkflowRun, workflow string) string {
	return firstNonEmpty(workflow, run.GetName(), run.GetDisplayTitle(), fmt.Sprintf("workflow %d", run.GetWorkflowID()))
}

// fromWorkflowRun is a workflow run as a check, keyed by its workflow.
func fromWorkflowRun(run *github.WorkflowRun, workflow string) check {
	return check{
		Key: fmt.Sprintf("workflow:%d", run.GetWorkflowID()), Kind: kindWorkflow, Name: workflowName(run, workflow),
		State: normState(run.GetStatus(), run.GetConclusion()), Started: firstTime(run.GetRunStartedAt().Time, run.GetCreatedAt().Time),
		Ended: endedAt(run.GetStatus(), run.GetUpdatedAt().Time), URL: run.GetHTMLURL(), ID: run.GetID(), RunID: run.GetID(),
		Attempt: int64(run.GetRunAttempt()), Event: run.GetEvent(),
	}
}

// fromJob is a workflow job as a check of its workflow.
func fromJob(j *github.WorkflowJob, workflow string) check {
	return check{
		Key: fmt.Sprintf("job:%d:%s", j.GetRunID(), j.GetName()), Kind: kindJob, Name: j.GetName(),
		Workflow: firstNonEmpty(workflow, j.GetWorkflowName()), State: normState(j.GetStatus(), j.GetConclusion()),
		Started: j.GetStartedAt().Time, Ended: j.GetCompletedAt().Time, URL: j.GetHTMLURL(), ID: j.GetID(), RunID: j.GetRunID(),
		Attempt: j.GetRunAttempt(),
	}
}

func endedAt(status string, t time.Time) time.Time {
	if status == "completed" {
		return t
	}
	return time.Time{}
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// apiError says why a GitHub call failed, for chat: a rate limit with its
// reset time, a repository the token cannot see, GitHub unreachable.
func apiError(what string, err error) error {
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var ge *github.ErrorResponse
	if ie := ghclient.InstallationError(what, err); ie != nil {
		return ie
	}
	switch {
	case errors.As(err, &rl):
		return fmt.Errorf("GitHub's rate limit is used up (%d requests an hour) until %s UTC; %s can be asked again then",
			rl.Rate.Limit, rl.Rate.Reset.UTC().Format("15:04"), what)
	case errors.As(err, &abuse):
		wait := "a minute"
		if abuse.RetryAfter != nil {
			wait = human(*abuse.RetryAfter)
		}
		return fmt.Errorf("GitHub asks to slow down (secondary rate limit); try %s again in %s", what, wait)
	case errors.As(err, &ge) && ge.Response != nil:
		switch ge.Response.StatusCode {
		case http.StatusNotFound, http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("GitHub answered %d for %s: the token cannot see it, or it does not exist (%s)", ge.Response.StatusCode, what, ge.Message)
		case http.StatusUnprocessableEntity:
			return fmt.Errorf("GitHub refused %s: %s", what, ge.Message)
		}
		return fmt.Errorf("GitHub answered %d for %s: %s", ge.Response.StatusCode, what, ge.Message)
	}
	return fmt.Errorf("could not reach GitHub for %s: %v", what, err)
}
