package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// logPageChromium finds Debian's chromium, skipping the test without it (and
// failing it under CI, where it must be installed).
func logPageChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return sdktest.NeedTool(t, "chromium")
}

// logPageDOM loads url in headless chromium and returns the DOM as it is
// after the page's scripts ran for budget of virtual time (which runs
// ahead while nothing is pending, and waits for network fetches). The
// browser runs in a process group of its own, with a new profile, and the
// whole group is ended before logPageDOM returns.
func logPageDOM(t *testing.T, chromium, url string, budget time.Duration) string {
	t.Helper()
	profile := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, fmt.Sprintf("--virtual-time-budget=%d", budget.Milliseconds()), "--dump-dom", url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Start()
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	err = cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind, if any
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v\n%s", url, err, logPageTail(stderr.String(), 20))
	}
	return out.String()
}

func logPageTail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// logPageRepo is a repository whose deploy script prints its lines with
// pauses, and stops half-way until the gate file exists.
func logPageRepo(t *testing.T, gate string) (repo, sha string) {
	t.Helper()
	dir := t.TempDir()
	repo = filepath.Join(dir, "repo")
	if err := os.MkdirAll(filepath.Join(repo, "script"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`#!/bin/sh
echo "step 1 of 3: building"
sleep 0.2
echo '<script>document.title="pwned"</script><b>not bold</b>'
while [ ! -f %q ]; do sleep 0.1; done
echo "step 2 of 3: uploading"
sleep 0.3
echo "step 3 of 3: done"
`, gate)
	if err := os.WriteFile(filepath.Join(repo, "script/deploy"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := gitIn(t, repo, dir)
	run("init", "-q")
	run("add", ".")
	run("commit", "-q", "-m", "v1")
	return repo, run("rev-parse", "HEAD")
}

// logPageGet fetches url with an Accept header and returns the answer.
func logPageGet(t *testing.T, url, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var logPageLinkRE = regexp.MustCompile(`http://\S+/deployments/1/log\?token=[0-9a-f]+`)

func TestLogPageInABrowserFollowsARunningDeployUntilItEnds(t *testing.T) {
	chromium := logPageChromium(t)
	gate := filepath.Join(t.TempDir(), "gate")
	repo, sha := logPageRepo(t, gate)
	addr := freePort(t)
	cfg, _, _ := deployConfig(t, fmt.Sprintf("http:\n  addr: %s\n", addr),
		fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"]}}`, repo), nil)
	c := startConsole(t, cfg)
	c.say(t, "chima deploy demo/main to staging")
	c.expect(t, "is deploying demo/main to staging (#1)")
	c.say(t, "chima deploy:status 1")
	link := logPageLinkRE.FindString(c.expect(t, "/deployments/1/log?token="))
	if link == "" {
		t.Fatal("deploy:status gave no log link")
	}

	// curl gets the text, as before; wait until the first lines are there.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body := logPageGet(t, link, "*/*")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("curl's GET %s = %d %s %q, want the plain log", link, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if strings.Contains(body, "<b>not bold</b>") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log never showed the script's first lines: %q", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The page as served while the script waits: running, no step 3, and
	// its policy passed on by the bot's server.
	resp, page := logPageGet(t, link, "text/html")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("the page's Content-Security-Policy = %q; the bot did not pass it on", csp)
	}
	if !strings.Contains(page, `class="badge s-running">running<`) || strings.Contains(page, "step 3 of 3") {
		t.Fatalf("page of the running deploy:\n%s", page)
	}

	// The browser goes through a proxy that opens the gate once the page
	// polls: every line after that reaches the page by its polling only.
	// It also counts the polls made after one that said the deploy ended.
	target, _ := url.Parse("http://" + addr)
	var (
		once             sync.Once
		mu               sync.Mutex
		endSeen          bool
		pollsAfterTheEnd int
	)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !resp.Request.URL.Query().Has("since") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(string(body), `"ended":true`) && !strings.Contains(string(body), `"more":true`) {
			mu.Lock()
			endSeen = true
			mu.Unlock()
		}
		return err
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("since") {
			once.Do(func() {
				if err := os.WriteFile(gate, nil, 0o644); err != nil {
					t.Error(err)
				}
			})
			mu.Lock()
			if endSeen {
				pollsAfterTheEnd++
			}
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	proxied := strings.Replace(link, "http://"+addr, proxy.URL, 1)
	dom := logPageDOM(t, chromium, proxied, 10*time.Minute)
	if _, err := os.Stat(gate); errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the page never polled:\n%s", dom)
	}
	logPageCheckFinal(t, dom, sha)
	mu.Lock()
	if !endSeen || pollsAfterTheEnd != 0 {
		t.Errorf("the page saw the end: %v, and polled %d times after it; want it to stop", endSeen, pollsAfterTheEnd)
	}
	mu.Unlock()
	c.expect(t, "Deployed demo/main ("+sha[:7]+") to staging in")

	// Opened afresh after the end, the page shows the same.
	logPageCheckFinal(t, logPageDOM(t, chromium, link, time.Second), sha)
}

// logPageCheckFinal checks the DOM of the log page of the test's deploy once
// it succeeded: the title block, every line numbered, the script's markup
// shown as text.
func logPageCheckFinal(t *testing.T, dom, sha string) {
	t.Helper()
	for _, want := range []string{
		`<title>#1 demo to staging: success</title>`,
		`<dd id="app">demo</dd>`, `<dd id="env">staging</dd>`,
		`<code id="what">main@` + sha[:7] + `</code>`, `<dd id="who">alice</dd>`,
		`<span id="state" class="badge s-success">success</span>`,
		`data-ended="true"`,
		`<a class="n" href="#L1">1</a><span class="t">chima: deployment #1 of demo/main to staging`,
		`<span class="t">step 1 of 3: building</span>`,
		`<span class="t">&lt;script&gt;document.title="pwned"&lt;/script&gt;&lt;b&gt;not bold&lt;/b&gt;</span>`,
		`<span class="t">step 2 of 3: uploading</span>`,
		`<span class="t">step 3 of 3: done</span>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	m := regexp.MustCompile(`<dd id="duration">([^<]*)</dd>`).FindStringSubmatch(dom)
	if m == nil || !regexp.MustCompile(`^[0-9.]+m?s$|^[0-9]+m[0-9.]+s$`).MatchString(m[1]) {
		t.Errorf("the duration of the ended deploy = %v, want a duration like 1.2s", m)
	}
	if n := regexp.MustCompile(`id="L(\d+)"`).FindAllString(dom, -1); len(n) < 6 {
		t.Errorf("the page numbers %d lines, want at least 6", len(n))
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
