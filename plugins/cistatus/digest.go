package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk"
)

// Digest limits: what of a failure fits in a chat message.
const (
	digestLogLines       = 20
	digestLogBytes       = 1500
	digestAnnotations    = 5
	digestAnnotationSize = 300
	genericAnnotation    = "Process completed with exit code"
)

// digest says why a check failed: the failed workflow, job and step, the
// check run's annotations and the end of the step's log.
type digest struct {
	ID          int64    `json:"id,omitempty"`
	Workflow    string   `json:"workflow,omitempty"`
	Job         string   `json:"job"`
	Step        string   `json:"step,omitempty"`
	Annotations []string `json:"annotations,omitempty"`
	Summary     string   `json:"summary,omitempty"`
	Log         string   `json:"log,omitempty"`
	URL         string   `json:"url,omitempty"`
}

// text renders the digest's lines (the log goes in the code block).
func (d *digest) text() string {
	name := d.Job
	if d.Workflow != "" && d.Workflow != d.Job {
		name = d.Workflow + " / " + d.Job
	}
	s := "Failed: " + name
	if d.Step != "" {
		s += ", at step “" + d.Step + "”"
	}
	if d.URL != "" {
		s += " · [log](" + d.URL + ")"
	}
	for _, a := range d.Annotations {
		s += "\n  " + a
	}
	if d.Summary != "" && len(d.Annotations) == 0 {
		s += "\n  " + truncate(d.Summary, digestAnnotationSize)
	}
	return s
}

// digestFailure records why ch failed, from the event's own data and, with
// a token, from the API: the job's steps, the check run's annotations and
// the log. A failed workflow run gets the digest of its failed jobs, which
// join the commit's checks.
func (p *ci) digestFailure(c *sdk.Context, t *tracked, ch check, d *delta) error {
	if old := t.Digests[ch.Key]; old != nil && old.ID == ch.ID {
		return nil // digested already: a redelivery
	}
	if t.Digests == nil {
		t.Digests = map[string]*digest{}
	}
	cfg, gh := p.state()
	owner, name := splitRepo(t.Repo)
	switch ch.Kind {
	case kindStatus, kindSuite:
		return nil // a status says no more than its link
	case kindWorkflow:
		if gh == nil || ch.RunID == 0 {
			return nil // its jobs' events carry the digests
		}
		jobs, _, err := gh.Actions.ListWorkflowJobs(c, owner, name, ch.RunID, &github.ListWorkflowJobsOptions{Filter: "latest"})
		if err != nil {
			return fmt.Errorf("read the jobs of run %d: %w", ch.RunID, err)
		}
		n := 0
		for _, j := range jobs.Jobs {
			jc := fromJob(j, ch.Name)
			merge(t.Checks, jc)
			if jc.State != stateFailure || t.Digests[jc.Key] != nil || n == 3 {
				continue
			}
			n++
			t.Digests[jc.Key] = p.jobDigest(c, gh, cfg, t.Repo, j, ch.Name)
		}
		return nil
	}
	dg := &digest{ID: ch.ID, Workflow: ch.Workflow, Job: ch.Name, URL: ch.URL, Summary: d.Output[ch.Key]}
	if steps := stepsOf(d, ch.Key); len(steps) > 0 {
		dg.Step, _ = failedStep(steps)
	}
	if gh == nil {
		t.Digests[ch.Key] = dg
		return nil
	}
	if ch.Kind == kindJob || ch.App == "github-actions" {
		// An Actions job is also a check run of the same id.
		j, _, err := gh.Actions.GetWorkflowJobByID(c, owner, name, ch.ID)
		if err == nil {
			jd := p.jobDigest(c, gh, cfg, t.Repo, j, firstNonEmpty(ch.Workflow, j.GetWorkflowName()))
			jd.ID, jd.Summary = ch.ID, dg.Summary
			t.Digests[ch.Key] = jd
			return nil
		}
		c.Logger().Info("no job of the check run", "check_run", ch.ID, "error", err)
	}
	dg.Annotations = annotations(c, gh, t.Repo, ch.ID)
	t.Digests[ch.Key] = dg
	return nil
}

// jobDigest is the digest of a failed Actions job.
func (p *ci) jobDigest(ctx context.Context, gh *github.Client, cfg *config, repo string, j *github.WorkflowJob, workflow string) *digest {
	dg := &digest{ID: j.GetID(), Workflow: workflow, Job: j.GetName(), URL: j.GetHTMLURL()}
	step, number := failedStep(j.Steps)
	dg.Step = step
	if number > 0 && dg.URL != "" {
		dg.URL += fmt.Sprintf("#step:%d:1", number)
	}
	dg.Annotations = annotations(ctx, gh, repo, j.GetID())
	if lines, err := jobLog(ctx, gh, repo, j.GetID()); err == nil {
		dg.Log = redact(tailOfFailure(lines), cfg.auth.Token)
	}
	return dg
}

// failedStep is the first failed step's name and number.
func failedStep(steps []*github.TaskStep) (string, int64) {
	for _, s := range steps {
		if c := s.GetConclusion(); c == "failure" || c == "timed_out" || c == "cancelled" {
			return s.GetName(), s.GetNumber()
		}
	}
	return "", 0
}

// annotations lists a check run's failure annotations, without GitHub's
// generic "Process completed with exit code" one.
func annotations(ctx context.Context, gh *github.Client, repo string, checkRunID int64) []string {
	owner, name := splitRepo(repo)
	list, _, err := gh.Checks.ListCheckRunAnnotations(ctx, owner, name, checkRunID, &github.ListOptions{PerPage: 50})
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range list {
		msg := strings.TrimSpace(a.GetMessage())
		if msg == "" || strings.HasPrefix(msg, genericAnnotation) || (a.GetAnnotationLevel() != "failure" && a.GetAnnotationLevel() != "") {
			continue
		}
		where := a.GetPath()
		if a.GetStartLine() > 0 && where != "" && where != ".github" {
			where += fmt.Sprintf(":%d", a.GetStartLine())
		}
		line := firstLine(msg)
		if where != "" && where != ".github" {
			line = where + ": " + line
		}
		out = append(out, truncate(line, digestAnnotationSize))
		if len(out) == digestAnnotations {
			break
		}
	}
	return out
}

// jobLog reads a job's log: GitHub answers with a redirect to the log's
// file, which is read without the token.
func jobLog(ctx context.Context, gh *github.Client, repo string, jobID int64) ([]string, error) {
	owner, name := splitRepo(repo)
	u, _, err := gh.Actions.GetWorkflowJobLogs(ctx, owner, name, jobID, 2)
	if err != nil {
		return nil, fmt.Errorf("find the log of job %d: %w", jobID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the log of job %d: %w", jobID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the log of job %d: %s", jobID, resp.Status)
	}
	// The end is what matters; keep the last 256 KiB of a long log.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read the log of job %d: %w", jobID, err)
	}
	if len(body) > 256<<10 {
		body = body[len(body)-256<<10:]
	}
	return strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n"), nil
}

var logTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ?`)

// tailOfFailure is the end of the failed step's output: the lines up to
// the last ##[error], at most digestLogLines of them and digestLogBytes,
// without timestamps and group markers.
func tailOfFailure(lines []string) string {
	clean := make([]string, 0, len(lines))
	end := -1
	for _, l := range lines {
		l = logTimestamp.ReplaceAllString(strings.TrimRight(l, " \t"), "")
		if strings.HasPrefix(l, "##[group]") || strings.HasPrefix(l, "##[endgroup]") {
			continue
		}
		if strings.HasPrefix(l, "##[error]") {
			end = len(clean)
		}
		clean = append(clean, l)
	}
	if end < 0 {
		for end = len(clean) - 1; end >= 0 && clean[end] == ""; end-- {
		}
	}
	if end < 0 {
		return ""
	}
	start := max(0, end+1-digestLogLines)
	out := strings.Join(clean[start:end+1], "\n")
	if len(out) > digestLogBytes {
		out = "…" + out[len(out)-digestLogBytes:]
		if i := strings.IndexByte(out, '\n'); i > 0 {
			out = "…" + out[i:]
		}
	}
	return out
}

// Secrets in logs: tokens of GitHub, Slack and AWS, bearer and basic
// credentials, key=value pairs whose key says secret, URLs with a password,
// and private keys.
var secretPatterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)`), "[redacted private key]"},
	{regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,})`), "[redacted]"},
	{regexp.MustCompile(`\bxox[abprs]-[A-Za-z0-9-]{8,}`), "[redacted]"},
	{regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`), "[redacted]"},
	{regexp.MustCompile(`(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}`), "$1 [redacted]"},
	{regexp.MustCompile(`(?i)\b([A-Za-z0-9_-]*(?:password|passwd|secret|token|api[_-]?key|credentials?)[A-Za-z0-9_-]*)(\s*[:=]\s*)("?)[^\s"',;]+`), "$1$2$3[redacted]"},
	{regexp.MustCompile(`(://[^/\s:@]+):[^@\s/]+@`), "$1:[redacted]@"},
}

// redact hides the secrets in s, the plugin's own token among them.
func redact(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "[redacted]")
	}
	for _, p := range secretPatterns {
		s = p.re.ReplaceAllString(s, p.repl)
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
