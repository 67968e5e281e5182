package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/sdktest"
)

// A browser's Accept header, as Chromium sends it for a page.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"

var (
	pageStart = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	pageNow   = pageStart.Add(2500 * time.Millisecond)
)

// logPage is a probe whose plugin has one deployment, #1, with a log; its
// clock stands at pageNow.
type logPage struct {
	*probe
	link string // the page's path and query, with its token
}

func newLogPage(t *testing.T, d *deployer, dep Deployment, log string) *logPage {
	t.Helper()
	f := newFixture(t, "")
	if d.now == nil {
		d.now = func() time.Time { return pageNow }
	}
	lp := &logPage{probe: f.probe(t, d)}
	lp.run(t, func(c *sdk.Context) {
		if err := lp.d.records.create(c, &dep); err != nil {
			t.Error(err)
			return
		}
		// In pieces: a host call is one bounded message.
		for piece := range slices.Chunk([]byte(log), 1<<20) {
			if _, err := c.AppendLog(logName(dep.ID), piece); err != nil {
				t.Error(err)
				return
			}
		}
		lp.link = strings.TrimPrefix(lp.d.logURL(c, dep.ID), "http://chima.test")
	})
	return lp
}

// appendLog adds to deployment 1's log; update changes its record.
func (lp *logPage) appendLog(t *testing.T, text string) {
	t.Helper()
	lp.run(t, func(c *sdk.Context) {
		if _, err := c.AppendLog(logName(1), []byte(text)); err != nil {
			t.Error(err)
		}
	})
}

func (lp *logPage) update(t *testing.T, f func(*Deployment)) {
	t.Helper()
	lp.run(t, func(c *sdk.Context) {
		if _, err := lp.d.records.update(c, 1, f); err != nil {
			t.Error(err)
		}
	})
}

func (lp *logPage) html(t *testing.T) (*sdktest.HTTPResponse, string) {
	t.Helper()
	resp := lp.HTTPWithHeaders(lp.link, map[string]string{"Accept": browserAccept})
	if resp.Status != 200 || !strings.HasPrefix(resp.Headers["Content-Type"], "text/html") {
		t.Fatalf("GET %s as a browser = %d %v %q, want 200 HTML", lp.link, resp.Status, resp.Headers, resp.Body)
	}
	return resp, string(resp.Body)
}

func (lp *logPage) poll(t *testing.T, since int64) logChunk {
	t.Helper()
	path := fmt.Sprintf("%s&since=%d", lp.link, since)
	resp := lp.HTTPWithHeaders(path, map[string]string{"Accept": "application/json"})
	if resp.Status != 200 || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("GET %s = %d %v %q, want 200 JSON", path, resp.Status, resp.Headers, resp.Body)
	}
	var c logChunk
	if err := json.Unmarshal(resp.Body, &c); err != nil {
		t.Fatalf("poll answer %q: %v", resp.Body, err)
	}
	return c
}

func runningDeployment() Deployment {
	return Deployment{App: "demo", Env: "staging", Ref: "main", SHA: "0123456789abcdef0123456789abcdef01234567",
		Task: "deploy", User: "alice", UserName: "Alice", State: StateRunning, CreatedAt: pageStart, StartedAt: pageStart}
}

func TestLogPageGivesBrowsersHTMLAndEveryoneElseText(t *testing.T) {
	lp := newLogPage(t, &deployer{}, runningDeployment(), "step one\nstep two\n")
	tests := []struct {
		name   string
		accept string
		query  string
		html   bool
	}{
		{"a browser", browserAccept, "", true},
		{"text/html alone", "text/html", "", true},
		{"curl's */*", "*/*", "", false},
		{"no Accept header", "", "", false},
		{"text/plain", "text/plain", "", false},
		{"text/plain preferred to text/html", "text/plain, text/html;q=0.5", "", false},
		{"text/html refused with q=0", "text/html;q=0, */*", "", false},
		{"a browser following the page's raw link", browserAccept, "&format=text", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			headers := map[string]string{}
			if tt.accept != "" {
				headers["Accept"] = tt.accept
			}
			resp := lp.HTTPWithHeaders(lp.link+tt.query, headers)
			body, typ := string(resp.Body), resp.Headers["Content-Type"]
			if resp.Status != 200 {
				t.Fatalf("status %d %q", resp.Status, body)
			}
			if resp.Headers["Vary"] != "Accept" {
				t.Errorf("Vary = %q, want Accept: the answer depends on it", resp.Headers["Vary"])
			}
			if tt.html {
				if typ != "text/html; charset=utf-8" || !strings.HasPrefix(body, "<!DOCTYPE html>") || !strings.Contains(body, `<span class="t">step two</span>`) {
					t.Fatalf("Content-Type %q, body %q; want the HTML page", typ, body)
				}
				return
			}
			if typ != "text/plain; charset=utf-8" || body != "step one\nstep two\n" {
				t.Fatalf("Content-Type %q, body %q; want the plain log", typ, body)
			}
		})
	}
}

func TestLogPageTitleBlockNamesTheDeployment(t *testing.T) {
	ended := runningDeployment()
	ended.State, ended.FinishedAt = StateSuccess, pageStart.Add(2500*time.Millisecond)
	queued := runningDeployment()
	queued.State, queued.StartedAt, queued.SHA = StateQueued, time.Time{}, ""
	tests := []struct {
		name string
		dep  Deployment
		want []string
	}{
		{"a running deployment", runningDeployment(), []string{
			`<title>#1 demo to staging: running</title>`,
			`<dd id="app">demo</dd>`, `<dd id="env">staging</dd>`, `<code id="what">main@0123456</code>`,
			`<dd id="who">Alice (alice)</dd>`, `<dd id="task">deploy</dd>`,
			`<span id="state" class="badge s-running">running</span>`, `<dd id="duration">running for 2.5s</dd>`,
			`<dd id="started">2026-03-04 10:00:00 UTC</dd>`, `data-ended="false"`}},
		{"an ended deployment", ended, []string{
			`<span id="state" class="badge s-success">success</span>`, `<dd id="duration">2.5s</dd>`, `data-ended="true"`}},
		{"a queued deployment", queued, []string{
			`<code id="what">main</code>`, `<span id="state" class="badge s-queued">queued</span>`,
			`<dd id="duration">not started</dd>`, `No output yet.`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := "hello\n"
			if tt.dep.State == StateQueued {
				log = ""
			}
			lp := newLogPage(t, &deployer{}, tt.dep, log)
			_, body := lp.html(t)
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %s:\n%s", w, body)
				}
			}
		})
	}
}

func TestLogPageShowsLogAndRecordAsTextNeverAsMarkup(t *testing.T) {
	dep := runningDeployment()
	dep.UserName = `<b>Mallory</b>`
	dep.Detail = `failed: <script>alert("detail")</script>`
	log := "<script>alert(1)</script>\n\"><img src=x onerror=alert(2)>\n</div></main><script>alert(3)</script>\n"
	lp := newLogPage(t, &deployer{}, dep, log)
	_, body := lp.html(t)
	if n := strings.Count(strings.ToLower(body), "<script"); n != 1 {
		t.Errorf("the page has %d script elements, want 1 (its own):\n%s", n, body)
	}
	for _, bad := range []string{"<img", "<b>Mallory", "</div></main>"} {
		if strings.Contains(body, bad) {
			t.Errorf("the page contains %s unescaped:\n%s", bad, body)
		}
	}
	for _, want := range []string{
		`<span class="t">&lt;script&gt;alert(1)&lt;/script&gt;</span>`,
		`<span class="t">&#34;&gt;&lt;img src=x onerror=alert(2)&gt;</span>`,
		`&lt;b&gt;Mallory&lt;/b&gt; (alice)`,
		`failed: &lt;script&gt;alert(&#34;detail&#34;)&lt;/script&gt;`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
	// The poll hands lines over as JSON strings, for textContent.
	chunk := lp.poll(t, 0)
	if len(chunk.Lines) != 3 || chunk.Lines[0] != "<script>alert(1)</script>" {
		t.Fatalf("poll lines = %q, want the log's three lines as they are", chunk.Lines)
	}
}

func TestLogPageContentSecurityPolicyAllowsOnlyItsOwnScriptAndStyle(t *testing.T) {
	lp := newLogPage(t, &deployer{}, runningDeployment(), "hello\n")
	resp, body := lp.html(t)
	csp := resp.Headers["Content-Security-Policy"]
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, want)
		}
	}
	for _, tag := range []string{"script", "style"} {
		m := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no inline %s in the page", tag)
		}
		sum := sha256.Sum256([]byte(m[1]))
		want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q does not allow the page's %s (%s)", csp, tag, want)
		}
	}
	if resp.Headers["Referrer-Policy"] != "no-referrer" {
		t.Errorf("Referrer-Policy = %q, want no-referrer: the URL holds the token", resp.Headers["Referrer-Policy"])
	}
}

func TestLogPageAndItsPollOpenOnlyWithTheToken(t *testing.T) {
	lp := newLogPage(t, &deployer{}, runningDeployment(), "secret output\n")
	var secret []byte
	lp.run(t, func(c *sdk.Context) {
		var err error
		if secret, err = lp.d.records.pageSecret(c, false); err != nil {
			t.Error(err)
		}
	})
	other := hex.EncodeToString(logToken(secret, 2))
	tokens := []struct {
		name  string
		query string
	}{
		{"no token", ""},
		{"an empty token", "token="},
		{"another deployment's token", "token=" + other},
		{"a made-up token", "token=" + strings.Repeat("ab", 32)},
		{"a token that is not hex", "token=not-hex"},
	}
	requests := []struct {
		name   string
		suffix string
		accept string
		typ    string // the Content-Type with the token
	}{
		{"the HTML page", "", browserAccept, "text/html; charset=utf-8"},
		{"the poll", "&since=0", "application/json", "application/json"},
		{"the text", "", "*/*", "text/plain; charset=utf-8"},
	}
	for _, r := range requests {
		for _, tok := range tokens {
			t.Run(r.name+" with "+tok.name, func(t *testing.T) {
				path := "/deployments/1/log?" + tok.query + r.suffix
				resp := lp.HTTPWithHeaders(path, map[string]string{"Accept": r.accept})
				if leaked := strings.Contains(string(resp.Body), "secret output"); resp.Status != 404 || leaked {
					t.Fatalf("GET %s = %d (the log in it: %v), want 404", path, resp.Status, leaked)
				}
			})
		}
		t.Run(r.name+" with its token", func(t *testing.T) {
			resp := lp.HTTPWithHeaders(lp.link+r.suffix, map[string]string{"Accept": r.accept})
			if resp.Status != 200 || resp.Headers["Content-Type"] != r.typ || !strings.Contains(string(resp.Body), "secret output") {
				t.Fatalf("GET %s = %d %v %q, want 200 %s with the log", lp.link+r.suffix, resp.Status, resp.Headers, resp.Body, r.typ)
			}
		})
	}
}

func TestLogPollReturnsTheLinesAfterSinceUntilTheDeploymentEnds(t *testing.T) {
	lp := newLogPage(t, &deployer{}, runningDeployment(), "one\ntwo\nthr")
	// The page shows the complete lines and starts polling after them.
	_, body := lp.html(t)
	if !strings.Contains(body, `data-offset="8" data-lines="2" data-ended="false"`) ||
		!strings.Contains(body, `<div class="l" id="L2"><a class="n" href="#L2">2</a><span class="t">two</span></div>`) || strings.Contains(body, `<span class="t">thr`) {
		t.Fatalf("page of a running deployment:\n%s\nwant lines 1 and 2 and polling from byte 8", body)
	}
	steps := []struct {
		name   string
		since  int64
		before func()
		lines  []string
		offset int64
		ended  bool
		state  string
	}{
		{"a line still being written waits for its end", 8, nil, []string{}, 8, false, StateRunning},
		{"complete lines, colours and carriage returns left out", 8,
			func() { lp.appendLog(t, "ee\r\n\x1b[32mfour\x1b[0m\nfi") }, []string{"three", "four"}, 29, false, StateRunning},
		{"an offset past the end answers nothing new", 99, nil, []string{}, 31, false, StateRunning},
		{"once the deployment ended, the last line without its newline", 29,
			func() {
				lp.appendLog(t, "ve")
				lp.update(t, func(d *Deployment) { d.State, d.FinishedAt = StateFailure, pageNow })
			}, []string{"five"}, 33, true, StateFailure},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				s.before()
			}
			c := lp.poll(t, s.since)
			if fmt.Sprint(c.Lines) != fmt.Sprint(s.lines) || c.Offset != s.offset || c.Ended != s.ended || c.State != s.state || c.More {
				t.Fatalf("poll since %d = %+v; want lines %q, offset %d, ended %v, state %s, no more",
					s.since, c, s.lines, s.offset, s.ended, s.state)
			}
			if c.What != "main@0123456" || c.Title != "#1 demo to staging: "+s.state {
				t.Fatalf("poll title block = %q %q", c.What, c.Title)
			}
		})
	}
	if c := lp.poll(t, 0); c.DurationText != "2.5s" || c.DurationMillis != 2500 {
		t.Fatalf("an ended deployment's duration = %q, %d ms; want 2.5s", c.DurationText, c.DurationMillis)
	}
}

func TestLogPollHandsALongLogOverInPieces(t *testing.T) {
	long := strings.Repeat("é", logPollLimit) // two bytes each: no newline in a whole read
	lp := newLogPage(t, &deployer{}, runningDeployment(), "short\n"+long+"\nlast\n")
	var got []string
	var since int64
	for range 10 {
		c := lp.poll(t, since)
		got = append(got, c.Lines...)
		if c.Offset == since && !c.More {
			break
		}
		since = c.Offset
	}
	joined := strings.Join(got, "")
	if len(got) < 4 || got[0] != "short" || got[len(got)-1] != "last" || joined != "short"+long+"last" {
		t.Fatalf("polled %d lines, %d bytes; want short, the long line in pieces cut between characters, last", len(got), len(joined))
	}
}

func TestLogPageOfAHugeLogShowsItsEndWithinTheMessageBound(t *testing.T) {
	// 16 MiB of markup-heavy lines: more than the window, and more than
	// the HTML budget once escaped.
	line := strings.Repeat("<&>", 100)
	var b strings.Builder
	for b.Len() < 16<<20 {
		b.WriteString(line + "\n")
	}
	b.WriteString("the end\n")
	dep := runningDeployment()
	dep.State, dep.FinishedAt = StateSuccess, pageNow
	lp := newLogPage(t, &deployer{}, dep, b.String())
	_, body := lp.html(t)
	if len(body) > 8<<20 || !strings.Contains(body, `<span class="t">the end</span>`) ||
		!strings.Contains(body, "bytes of this log are left out; lines are numbered from the first one shown") {
		t.Fatalf("page of %d bytes; want at most 8 MiB, ending with the log's last line, saying what it leaves out", len(body))
	}
	if !strings.Contains(body, `<div class="l" id="L1">`) {
		t.Fatal("the lines shown are not numbered from 1")
	}
}

func TestLogPageOfALogLongerThanTheWindowSaysWhatItLeavesOut(t *testing.T) {
	var long strings.Builder
	for i := range 100 {
		fmt.Fprintf(&long, "line %03d\n", i) // 9 bytes a line
	}
	lp := newLogPage(t, &deployer{pageWindow: 100}, runningDeployment(), long.String())
	_, body := lp.html(t)
	// The last 100 bytes start in line 088: the page starts at line 089.
	for _, want := range []string{
		"The first 801 bytes of this log are left out",
		`<div class="l" id="L1"><a class="n" href="#L1">1</a><span class="t">line 089</span></div>`,
		`<span class="t">line 099</span>`,
		`data-offset="900" data-lines="11"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s:\n%s", want, body)
		}
	}
}
