package main

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chimaops/chima/sdk"
)

// The log page's style and script are inlined, so the page needs nothing
// else; the Content-Security-Policy allows exactly these two by hash, and
// fetches to the page's own origin (the polling), nothing more.
var (
	//go:embed assets/logpage.css
	logPageCSS string
	//go:embed assets/logpage.js
	logPageJS string

	logPageCSP = "default-src 'none'; script-src " + cspHash(logPageJS) + "; style-src " + cspHash(logPageCSS) +
		"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

const (
	// logPageHTMLBudget bounds the HTML of the lines a page shows: the page
	// travels in one bounded message, and escaping and markup make a log
	// larger. The oldest lines go first.
	logPageHTMLBudget = 6 << 20
	// logPollLimit is the most log one poll returns; a client that is
	// behind asks again at once (more is set).
	logPollLimit = 256 << 10
	// lineMarkup is about what each line's markup costs besides its text.
	lineMarkup = 80
)

// plainRanges are the media ranges that cover text/plain, by specificity.
var plainRanges = map[string]int{"text/plain": 2, "text/*": 1, "*/*": 0}

// wantsHTML reports whether a request for a log page asked for HTML: it
// names text/html (a browser does) and does not prefer text/plain to it.
// curl's */* and no Accept at all get the text, as before; so does
// ?format=text, the page's own link to the raw log.
func wantsHTML(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "text":
		return false
	case "html":
		return true
	}
	html, plain := -1.0, -1.0
	plainSpecificity := -1
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		typ, params, _ := strings.Cut(part, ";")
		typ = strings.ToLower(strings.TrimSpace(typ))
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		switch typ {
		case "text/html", "application/xhtml+xml":
			html = max(html, q)
		}
		// The most specific range that covers text/plain sets its quality.
		if s, ok := plainRanges[typ]; ok && s > plainSpecificity {
			plain, plainSpecificity = q, s
		}
	}
	return html > 0 && html >= plain
}

// logLine is one line of a log as the page shows it.
type logLine struct {
	N    int
	Text string
}

// logChunk is what a poll of a log page answers: the lines after since,
// complete ones only while the deployment runs, and the deployment as it
// is now, for the title block.
type logChunk struct {
	// Offset is where the next poll starts (its since).
	Offset int64    `json:"offset"`
	Lines  []string `json:"lines"`
	// More is set when there is more log after Offset already: poll again
	// at once.
	More  bool   `json:"more"`
	Ended bool   `json:"ended"`
	State string `json:"state"`
	// What is ref@short-sha.
	What           string `json:"what"`
	Detail         string `json:"detail,omitempty"`
	DurationMillis int64  `json:"duration_ms"`
	// DurationText is the title block's duration: "running for 2.5s",
	// "2.5s", or "not started".
	DurationText string `json:"duration_text"`
	Title        string `json:"title"`
}

// ansiCSI matches a terminal control sequence.
var ansiCSI = regexp.MustCompile("\x1b\\[[0-9;?]*[ -/]*[@-~]")

// splitLines cuts log data into lines. While the deployment runs, or when
// data is a full read with more after it, only complete lines are taken,
// so that a line is never shown in two pieces; a line longer than a whole
// read (full) is taken as it is, cut at a character boundary. It returns
// the lines, as they are in the log, and how many bytes of data they used.
func splitLines(data []byte, ended, full bool) ([]string, int) {
	used := len(data)
	if !ended || full {
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			used = i + 1
		} else if !full {
			return nil, 0
		} else if cut := lastRuneStart(data); cut > 0 {
			used = cut
		}
	}
	if used == 0 {
		return nil, 0
	}
	return strings.Split(strings.TrimSuffix(string(data[:used]), "\n"), "\n"), used
}

// lastRuneStart is where the last, maybe incomplete, character of data
// starts (0 when there is none).
func lastRuneStart(data []byte) int {
	for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
		if utf8.RuneStart(data[i]) {
			if utf8.FullRune(data[i:]) {
				return len(data)
			}
			return i
		}
	}
	return len(data)
}

// displayLine is a log line as the page shows it: without its carriage
// return and the terminal control sequences (colours, cursor moves) that
// deploy tools print.
func displayLine(line string) string {
	return ansiCSI.ReplaceAllString(strings.TrimSuffix(line, "\r"), "")
}

// htmlCost is about how many bytes line takes in the page: html/template
// turns each of "'&+<> into a five-byte entity.
func htmlCost(line string) int {
	n := len(line) + lineMarkup
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"', '\'', '&', '+', '<', '>', 0:
			n += 4
		}
	}
	return n
}

// durationText is the title block's duration.
func durationText(dep *Deployment, now time.Time) string {
	switch {
	case dep.StartedAt.IsZero():
		return "not started"
	case dep.Ended():
		return dep.Duration(now).String()
	}
	return "running for " + dep.Duration(now).String()
}

func pageTitle(dep *Deployment) string {
	return fmt.Sprintf("#%d %s to %s: %s", dep.ID, dep.App, dep.Env, dep.State)
}

// who is the person who asked for a deployment, by name and id.
func who(dep *Deployment) string {
	if dep.UserName != "" && dep.UserName != dep.User {
		return dep.UserName + " (" + dep.User + ")"
	}
	return dep.User
}

// servePoll answers a log page's poll: the log from since on, at most
// logPollLimit bytes of it, as JSON.
func (d *deployer) servePoll(w http.ResponseWriter, c *sdk.Context, dep *Deployment, sinceText string) {
	since, err := strconv.ParseInt(sinceText, 10, 64)
	if err != nil || since < 0 {
		http.Error(w, "since must be a byte offset: a whole number, 0 or more", http.StatusBadRequest)
		return
	}
	// The record is read before the log: a deployment's log is complete
	// before it is recorded as ended, so an ended record means the log
	// read after it is whole.
	ended := dep.Ended()
	data, size, _, err := c.ReadLog(logName(dep.ID), since, logPollLimit)
	if err != nil {
		c.Logger().Error("log page poll", "deployment", dep.ID, "error", err)
		http.Error(w, "could not read the log", http.StatusInternalServerError)
		return
	}
	lines, used := splitLines(data, ended, len(data) == logPollLimit)
	for i, l := range lines {
		lines[i] = displayLine(l)
	}
	offset := min(since, size) + int64(used)
	now := d.now()
	chunk := logChunk{
		Offset: offset, Lines: lines, More: offset < size && (ended || len(data) == logPollLimit),
		Ended: ended, State: dep.State, What: dep.What(), Detail: dep.Detail,
		DurationMillis: dep.Duration(now).Milliseconds(), DurationText: durationText(dep, now), Title: pageTitle(dep),
	}
	if chunk.Lines == nil {
		chunk.Lines = []string{}
	}
	body, err := json.Marshal(chunk)
	if err != nil {
		http.Error(w, "could not encode the log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Vary", "Accept")
	_, _ = w.Write(body)
}

// logPageData is what the page template shows.
type logPageData struct {
	Dep      *Deployment
	Title    string
	What     string
	Who      string
	Duration string
	Started  string
	Lines    []logLine
	// Omitted is how many bytes at the log's start the page leaves out.
	Omitted int64
	// Offset is where the page's first poll starts.
	Offset  int64
	Ended   bool
	RawLink string
	CSS     template.CSS
	JS      template.JS
}

// serveHTML answers a browser: the title block and the log's end with
// line numbers; while the deployment runs, the page's script polls for
// the rest.
func (d *deployer) serveHTML(w http.ResponseWriter, c *sdk.Context, dep *Deployment, token string) {
	ended := dep.Ended() // before the log: see servePoll
	// start is where data starts in the log.
	data, start, _, err := d.logWindow(c, dep.ID)
	if err != nil {
		c.Logger().Error("log page", "deployment", dep.ID, "error", err)
		http.Error(w, "could not read the log", http.StatusInternalServerError)
		return
	}
	if start > 0 {
		// Start at a line: skip the rest of the one the window cut.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data, start = data[i+1:], start+int64(i+1)
		}
	}
	raw, used := splitLines(data, ended, false)
	offset := start + int64(used) // where the first poll starts
	// Drop the oldest lines while the page would be too big.
	cost, first := 0, len(raw)
	for first > 0 && cost+htmlCost(raw[first-1]) <= logPageHTMLBudget {
		first--
		cost += htmlCost(raw[first])
	}
	for _, l := range raw[:first] {
		start += int64(len(l)) + 1
	}
	lines := make([]logLine, 0, len(raw)-first)
	for i, l := range raw[first:] {
		lines = append(lines, logLine{N: i + 1, Text: displayLine(l)})
	}
	now := d.now()
	page := logPageData{
		Dep: dep, Title: pageTitle(dep), What: dep.What(), Who: who(dep), Duration: durationText(dep, now),
		Lines: lines, Omitted: start, Offset: offset, Ended: ended,
		RawLink: "?token=" + token + "&format=text",
		CSS:     template.CSS(logPageCSS), JS: template.JS(logPageJS),
	}
	if !dep.StartedAt.IsZero() {
		page.Started = dep.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	var buf bytes.Buffer
	if err := logPageTemplate.Execute(&buf, page); err != nil {
		c.Logger().Error("log page template", "deployment", dep.ID, "error", err)
		http.Error(w, "could not show the log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept")
	h.Set("Content-Security-Policy", logPageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

var logPageTemplate = template.Must(template.New("log").Funcs(template.FuncMap{
	"stateClass": func(s string) string {
		switch s {
		case StateQueued, StateRunning, StateSuccess, StateFailure, StateError, StateCancelled:
			return "s-" + s
		}
		return "s-other"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<style>{{.CSS}}</style>
</head>
<body>
<header>
<h1>Deployment #{{.Dep.ID}}: {{.Dep.App}} to {{.Dep.Env}} <span id="state" class="badge {{stateClass .Dep.State}}">{{.Dep.State}}</span></h1>
<dl>
<dt>App</dt><dd id="app">{{.Dep.App}}</dd>
<dt>Environment</dt><dd id="env">{{.Dep.Env}}</dd>
<dt>Ref</dt><dd><code id="what">{{.What}}</code></dd>
<dt>Task</dt><dd id="task">{{.Dep.Task}}</dd>
<dt>By</dt><dd id="who">{{.Who}}</dd>
{{- if .Started}}
<dt>Started</dt><dd id="started">{{.Started}}</dd>
{{- end}}
<dt>Duration</dt><dd id="duration">{{.Duration}}</dd>
</dl>
<p id="detail" class="detail"{{if not .Dep.Detail}} hidden{{end}}>{{.Dep.Detail}}</p>
{{- if .Omitted}}
<p class="notice">The first {{.Omitted}} bytes of this log are left out; lines are numbered from the first one shown.</p>
{{- end}}
<p class="links"><a href="{{.RawLink}}">Raw log</a> <span id="live"></span></p>
</header>
<main>
<div id="log" class="log" data-offset="{{.Offset}}" data-lines="{{len .Lines}}" data-ended="{{.Ended}}">
{{- if not .Lines}}<p id="empty" class="empty">{{if .Ended}}This deployment wrote no log.{{else}}No output yet.{{end}}</p>{{end}}
{{- range .Lines}}
<div class="l" id="L{{.N}}"><a class="n" href="#L{{.N}}">{{.N}}</a><span class="t">{{.Text}}</span></div>
{{- end}}
</div>
</main>
<script>{{.JS}}</script>
</body>
</html>
`))
