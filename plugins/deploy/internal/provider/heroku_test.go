package provider

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
)

const herokuToken = "hk-test-0123456789abcdef"

// fakeHeroku is a local stand-in for the Heroku Platform API and its blob
// store and build output streams. It checks what a real client must send.
type fakeHeroku struct {
	t   *testing.T
	srv *httptest.Server

	// buildResult is the status a build ends with: "succeeded" or "failed".
	buildResult string
	// pendingPolls is how many status polls answer "pending".
	pendingPolls int
	// streamMissing is how many stream requests answer 404 first.
	streamMissing int
	// blockBuild keeps the build pending forever.
	blockBuild bool

	mu       sync.Mutex
	requests []string
	blob     []byte
	build    map[string]any // the POST /apps/.../builds body
	polls    int
}

func newFakeHeroku(t *testing.T) *fakeHeroku {
	f := &fakeHeroku{t: t, buildResult: "succeeded", pendingPolls: 2}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	if host, _, _ := net.SplitHostPort(f.srv.Listener.Addr().String()); host != "127.0.0.1" {
		t.Fatalf("the fake must listen on 127.0.0.1 only, got %s", host)
	}
	return f
}

func (f *fakeHeroku) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.requests...)
}

func herokuErr(w http.ResponseWriter, status int, id, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"id":%q,"message":%q}`, id, msg)
}

// api checks the headers of a Platform API request.
func (f *fakeHeroku) api(w http.ResponseWriter, r *http.Request) bool {
	if got := r.Header.Get("Accept"); got != "application/vnd.heroku+json; version=3" {
		f.t.Errorf("%s %s: Accept = %q", r.Method, r.URL.Path, got)
	}
	if r.ContentLength > 0 && r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("%s %s: Content-Type = %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	if r.Header.Get("Authorization") != "Bearer "+herokuToken {
		herokuErr(w, http.StatusUnauthorized, "unauthorized", "Invalid credentials provided.")
		return false
	}
	return true
}

// notAPI checks that the token is not sent to blob and stream URLs.
func (f *fakeHeroku) notAPI(r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		f.t.Errorf("%s %s: the API token was sent outside the API", r.Method, r.URL.Path)
	}
}

func (f *fakeHeroku) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	base := f.srv.URL
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/sources":
		if !f.api(w, r) {
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"source_blob":{"get_url":%q,"put_url":%q}}`, base+"/blobs/1?sig=get", base+"/blobs/1?sig=put")
	case r.Method == http.MethodPut && r.URL.Path == "/blobs/1":
		f.notAPI(r)
		if r.URL.Query().Get("sig") != "put" || r.Header.Get("Content-Type") != "" || r.ContentLength <= 0 {
			f.t.Errorf("upload: sig=%q Content-Type=%q Content-Length=%d", r.URL.Query().Get("sig"), r.Header.Get("Content-Type"), r.ContentLength)
		}
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.blob = b
		f.mu.Unlock()
	case r.Method == http.MethodPost && r.URL.Path == "/apps/x-prod/builds":
		if !f.api(w, r) {
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			herokuErr(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		f.mu.Lock()
		f.build = body
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":"b-1","status":"pending","output_stream_url":%q,"release":null}`, base+"/streams/b-1")
	case r.Method == http.MethodGet && r.URL.Path == "/apps/x-prod/builds/b-1":
		if !f.api(w, r) {
			return
		}
		f.mu.Lock()
		f.polls++
		status := f.buildResult
		if f.polls <= f.pendingPolls || f.blockBuild {
			status = "pending"
		}
		f.mu.Unlock()
		release := "null"
		if status == "succeeded" {
			release = `{"id":"r-7"}`
		}
		fmt.Fprintf(w, `{"id":"b-1","status":%q,"output_stream_url":%q,"release":%s}`, status, base+"/streams/b-1", release)
	case r.Method == http.MethodGet && r.URL.Path == "/streams/b-1":
		f.notAPI(r)
		f.mu.Lock()
		missing := f.streamMissing > 0
		f.streamMissing--
		f.mu.Unlock()
		if missing {
			http.NotFound(w, r)
			return
		}
		fl := w.(http.Flusher)
		lines := []string{"-----> Building on the Heroku-22 stack", "-----> Go app detected"}
		if f.buildResult == "failed" {
			lines = append(lines, " !     Push rejected, failed to compile Go app.")
		} else {
			lines = append(lines, "-----> Compressing...", "       Done: 12.3M")
		}
		for _, l := range lines {
			fmt.Fprintln(w, l)
			fl.Flush()
		}
	case strings.HasPrefix(r.URL.Path, "/apps/"):
		if !f.api(w, r) {
			return
		}
		herokuErr(w, http.StatusNotFound, "not_found", "Couldn't find that app.")
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

// tarball lists the uploaded source's entries with their modes.
func (f *fakeHeroku) tarball(t *testing.T) map[string]string {
	t.Helper()
	f.mu.Lock()
	blob := f.blob
	f.mu.Unlock()
	gz, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatalf("upload is not gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	entries := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			entries[h.Name] = fmt.Sprintf("%o %s", h.Mode&0o777, b)
		case tar.TypeSymlink:
			entries[h.Name] = "-> " + h.Linkname
		case tar.TypeDir:
			entries[h.Name] = "dir"
		}
	}
	return entries
}

func herokuDeployment(t *testing.T, f *fakeHeroku, tokenEnv string) Deployment {
	dir, sha := repo(t, map[string]file{
		"main.go":      {content: "package main\n"},
		"bin/start":    {content: "#!/bin/sh\n", mode: 0o755},
		"current-link": {link: "main.go"},
	})
	d := deployment(dir, sha, &apps.App{Provider: "heroku", Environments: []string{"production", "edge"},
		Heroku: apps.HerokuSettings{Apps: map[string]string{"production": "x-prod"}, APIURL: f.srv.URL, TokenEnv: tokenEnv}})
	d.Env = "production"
	return d
}

func lookupOnly(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestHerokuBuildSucceeds(t *testing.T) {
	f := newFakeHeroku(t)
	f.streamMissing = 1 // the stream shows up a moment after the build
	d := herokuDeployment(t, f, "")
	p, _ := New("heroku", Options{LookupEnv: lookupOnly(map[string]string{"HEROKU_API_KEY": herokuToken}), PollInterval: 10 * time.Millisecond})
	var out lines
	if err := p.Deploy(context.Background(), d, &out); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, out.String())
	}
	want := []string{
		"POST /sources", "PUT /blobs/1", "POST /apps/x-prod/builds",
	}
	if got := f.log(); !equalPrefix(got, want) {
		t.Errorf("requests %q, want them to start with %q", got, want)
	}
	entries := f.tarball(t)
	wantEntries := map[string]string{
		"main.go": "644 package main\n", "bin/": "dir", "bin/start": "755 #!/bin/sh\n", "current-link": "-> main.go",
	}
	if fmt.Sprint(entries) != fmt.Sprint(wantEntries) {
		t.Errorf("tarball entries %v, want %v (and no .git)", entries, wantEntries)
	}
	sum := sha256.Sum256(f.blob)
	wantBuild := map[string]any{"source_blob": map[string]any{
		"url": f.srv.URL + "/blobs/1?sig=get", "version": d.SHA, "checksum": "SHA256:" + hex.EncodeToString(sum[:]),
	}}
	if fmt.Sprint(f.build) != fmt.Sprint(wantBuild) {
		t.Errorf("build request %v, want %v", f.build, wantBuild)
	}
	text := out.String()
	for _, wantLine := range []string{
		"heroku: packed 2 files of " + d.SHA[:12] + " (feature/login, ",
		"heroku: uploaded the source\n",
		"heroku: build b-1 of x-prod started\n",
		"-----> Building on the Heroku-22 stack\n-----> Go app detected\n-----> Compressing...\n       Done: 12.3M\n",
		"heroku: build b-1 succeeded; release r-7\n",
	} {
		if !strings.Contains(text, wantLine) {
			t.Errorf("output lacks %q:\n%s", wantLine, text)
		}
	}
	if strings.Contains(text, herokuToken) {
		t.Error("the token is in the output")
	}
	for _, w := range out.all() {
		if !strings.HasSuffix(w, "\n") || strings.Count(w, "\n") != 1 {
			t.Errorf("write %q is not one line", w)
		}
	}
}

func TestHerokuFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(f *fakeHeroku, d *Deployment)
		env      map[string]string
		tokenEnv string
		wantErr  string
		wantOut  string
		noCalls  bool
	}{
		{"a failed build fails the deploy with its output",
			func(f *fakeHeroku, d *Deployment) { f.buildResult = "failed" },
			map[string]string{"HEROKU_API_KEY": herokuToken}, "",
			"heroku build b-1 of x-prod failed", " !     Push rejected, failed to compile Go app.\n", false},
		{"a rejected token names the variable to check",
			func(*fakeHeroku, *Deployment) {},
			map[string]string{"HEROKU_API_KEY": "wrong-token"}, "",
			"heroku: POST /sources: 401 unauthorized: Invalid credentials provided. (check the token in HEROKU_API_KEY)", "", false},
		{"a missing token is named before any request",
			func(*fakeHeroku, *Deployment) {},
			map[string]string{}, "",
			"heroku: no API token: set HEROKU_API_KEY in the bot's environment", "", true},
		{"the token comes from the configured variable",
			func(*fakeHeroku, *Deployment) {},
			map[string]string{"HEROKU_API_KEY": herokuToken}, "X_HEROKU",
			"heroku: no API token: set X_HEROKU in the bot's environment", "", true},
		{"an environment without a Heroku app is named",
			func(f *fakeHeroku, d *Deployment) { d.Env = "edge" },
			map[string]string{"HEROKU_API_KEY": herokuToken}, "",
			`heroku: project-x has no Heroku app for environment "edge" (set heroku.apps in the apps file)`, "", true},
		{"an app Heroku doesn't know is a 404 with a hint",
			func(f *fakeHeroku, d *Deployment) { d.Settings.Heroku.Apps["production"] = "x-nope" },
			map[string]string{"HEROKU_API_KEY": herokuToken}, "",
			"heroku: POST /apps/x-nope/builds: 404 not_found: Couldn't find that app. (is there a Heroku app x-nope that the token can see?)", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHeroku(t)
			d := herokuDeployment(t, f, tt.tokenEnv)
			tt.setup(f, &d)
			p, _ := New("heroku", Options{LookupEnv: lookupOnly(tt.env), PollInterval: 10 * time.Millisecond})
			var out lines
			err := p.Deploy(context.Background(), d, &out)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Deploy = %v\nwant %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error()+out.String(), "wrong-token") || strings.Contains(err.Error()+out.String(), herokuToken) {
				t.Error("a token leaked into the error or output")
			}
			if tt.wantOut != "" && !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out.String())
			}
			if tt.noCalls && len(f.log()) != 0 {
				t.Errorf("requests were made: %q", f.log())
			}
		})
	}
}

func TestHerokuCancelStopsFollowingTheBuild(t *testing.T) {
	f := newFakeHeroku(t)
	f.blockBuild = true
	d := herokuDeployment(t, f, "")
	p, _ := New("heroku", Options{LookupEnv: lookupOnly(map[string]string{"HEROKU_API_KEY": herokuToken}), PollInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var out lines
	done := make(chan error, 1)
	go func() { done <- p.Deploy(ctx, d, &out) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("the build never started:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "heroku build b-1: ") {
			t.Fatalf("Deploy = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Deploy did not return after cancel")
	}
	if !strings.Contains(out.String(), "heroku: stopped following build b-1; Heroku may still finish it\n") {
		t.Errorf("output:\n%s", out.String())
	}
}

func equalPrefix(got, want []string) bool {
	if len(got) < len(want) {
		return false
	}
	g := append([]string{}, got[:len(want)]...)
	w := append([]string{}, want...)
	sort.Strings(g)
	sort.Strings(w)
	return strings.Join(g, "|") == strings.Join(w, "|") && got[0] == want[0]
}
