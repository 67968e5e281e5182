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
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
)

// Heroku deploys with the Heroku Platform API, the way `git push heroku`
// would, from the exact checkout:
//
//  1. POST /sources gives a source blob's put_url and get_url;
//  2. a tar.gz of the checkout (without .git) is PUT to put_url;
//  3. POST /apps/<app>/builds with {"source_blob": {"url": get_url,
//     "version": <sha>, "checksum": "SHA256:<hex>"}} starts the build;
//  4. the build's output_stream_url is copied to the output while
//     GET /apps/<app>/builds/<id> is polled until the status is succeeded
//     or failed.
//
// The app is the app's heroku.apps entry for the environment; the API token
// is read from the environment variable named by heroku.token_env (default
// HEROKU_API_KEY) and sent only to the API, as a Bearer token, never to the
// upload or stream URLs and never into the output. Every API request
// carries Accept: application/vnd.heroku+json; version=3. Heroku has no way
// to cancel a build: when ctx ends, Deploy stops following it and says so.
type Heroku struct{ opts Options }

// Name returns "heroku".
func (*Heroku) Name() string { return "heroku" }

// HerokuError is an error answer of the Heroku API.
type HerokuError struct {
	// Method and Path are the request: "POST", "/sources".
	Method, Path string
	// Status is the HTTP status code.
	Status int
	// ID and Message are Heroku's error id and message, when it sent them.
	ID, Message string
	// Hint says what to check, when the status suggests something.
	Hint string
}

// Error returns "heroku: POST /sources: 401 unauthorized: Invalid credentials provided. (hint)".
func (e *HerokuError) Error() string {
	msg := fmt.Sprintf("heroku: %s %s: %d", e.Method, e.Path, e.Status)
	if e.ID != "" {
		msg += " " + e.ID
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

type herokuBuild struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	OutputStreamURL string `json:"output_stream_url"`
	Release         *struct {
		ID string `json:"id"`
	} `json:"release"`
}

// Deploy builds the checkout on Heroku.
func (p *Heroku) Deploy(ctx context.Context, d Deployment, out io.Writer) error {
	if err := d.Validate(); err != nil {
		return err
	}
	s := d.Settings.Heroku
	app := s.Apps[d.Env]
	if app == "" {
		return fmt.Errorf("heroku: %s has no Heroku app for environment %q (set heroku.apps in the apps file)", d.App, d.Env)
	}
	tokenEnv := s.TokenEnv
	if tokenEnv == "" {
		tokenEnv = apps.DefaultHerokuTokenEnv
	}
	lookup := p.opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	token, _ := lookup(tokenEnv)
	if token == "" {
		return fmt.Errorf("heroku: no API token: set %s in the bot's environment", tokenEnv)
	}
	api := s.APIURL
	if api == "" {
		api = apps.DefaultHerokuAPI
	}
	hc := p.opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport}
	}
	c := &herokuClient{http: hc, api: strings.TrimRight(api, "/"), token: token, tokenEnv: tokenEnv, app: app}
	w := &syncWriter{w: out}

	tgz, err := os.CreateTemp("", "chima-heroku-*.tar.gz")
	if err != nil {
		return fmt.Errorf("heroku: %w", err)
	}
	defer os.Remove(tgz.Name())
	defer tgz.Close()
	size, sum, files, err := packSource(tgz, d.Dir)
	if err != nil {
		return fmt.Errorf("heroku: packing the checkout: %w", err)
	}
	w.say("heroku: packed %d files of %s (%s, %d bytes)", files, d.SHA[:12], d.Ref, size)

	var src struct {
		SourceBlob struct {
			GetURL string `json:"get_url"`
			PutURL string `json:"put_url"`
		} `json:"source_blob"`
	}
	if err := c.call(ctx, http.MethodPost, "/sources", nil, &src); err != nil {
		return err
	}
	if src.SourceBlob.PutURL == "" || src.SourceBlob.GetURL == "" {
		return errors.New("heroku: POST /sources: the answer has no source_blob put_url and get_url")
	}
	if err := c.upload(ctx, src.SourceBlob.PutURL, tgz, size); err != nil {
		return err
	}
	w.say("heroku: uploaded the source")

	var build herokuBuild
	body := map[string]any{"source_blob": map[string]string{
		"url": src.SourceBlob.GetURL, "version": d.SHA, "checksum": "SHA256:" + sum,
	}}
	if err := c.call(ctx, http.MethodPost, "/apps/"+url.PathEscape(app)+"/builds", body, &build); err != nil {
		return err
	}
	if build.ID == "" {
		return errors.New("heroku: the build answer has no id")
	}
	w.say("heroku: build %s of %s started", build.ID, app)

	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	streamed := make(chan error, 1)
	if build.OutputStreamURL != "" {
		go func() { streamed <- c.stream(streamCtx, build.OutputStreamURL, w) }()
	} else {
		streamed <- nil
	}

	interval := p.opts.PollInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	for build.Status == "pending" || build.Status == "" {
		select {
		case <-ctx.Done():
			w.say("heroku: stopped following build %s; Heroku may still finish it", build.ID)
			return fmt.Errorf("heroku build %s: %w", build.ID, context.Cause(ctx))
		case <-time.After(interval):
		}
		if err := c.call(ctx, http.MethodGet, "/apps/"+url.PathEscape(app)+"/builds/"+url.PathEscape(build.ID), nil, &build); err != nil {
			return err
		}
	}
	// The stream ends when the build does; give it a moment to finish.
	select {
	case err := <-streamed:
		if err != nil && ctx.Err() == nil {
			w.say("heroku: the build output could not be read: %v", err)
		}
	case <-time.After(10 * time.Second):
		stopStream()
		<-streamed
	}
	switch build.Status {
	case "succeeded":
		if build.Release != nil && build.Release.ID != "" {
			w.say("heroku: build %s succeeded; release %s", build.ID, build.Release.ID)
		} else {
			w.say("heroku: build %s succeeded", build.ID)
		}
		return w.err
	case "failed":
		return fmt.Errorf("heroku build %s of %s failed", build.ID, app)
	}
	return fmt.Errorf("heroku build %s of %s ended with status %q", build.ID, app, build.Status)
}

type herokuClient struct {
	http     *http.Client
	api      string
	token    string
	tokenEnv string
	app      string
}

// call makes an API request with a JSON body (or none) and decodes the
// JSON answer into v.
func (c *herokuClient) call(ctx context.Context, method, path string, body, v any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("heroku: %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.api+path, rd)
	if err != nil {
		return fmt.Errorf("heroku: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "chima-deploy")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("heroku: %s %s: %w", method, path, c.scrub(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("heroku: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		he := &HerokuError{Method: method, Path: path, Status: resp.StatusCode}
		var e struct{ ID, Message string }
		if json.Unmarshal(data, &e) == nil {
			he.ID, he.Message = e.ID, e.Message
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			he.Hint = "check the token in " + c.tokenEnv
		case http.StatusForbidden:
			he.Hint = "the token in " + c.tokenEnv + " may not use " + c.app
		case http.StatusNotFound:
			he.Hint = "is there a Heroku app " + c.app + " that the token can see?"
		}
		return he
	}
	if v != nil {
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("heroku: %s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}

// scrub keeps the token out of an error, whatever a transport put in it.
func (c *herokuClient) scrub(err error) error {
	if c.token != "" && strings.Contains(err.Error(), c.token) {
		return errors.New(strings.ReplaceAll(err.Error(), c.token, "[token]"))
	}
	return err
}

// upload PUTs the source tarball to the signed put_url, without the token
// and without a Content-Type (the URL's signature covers none).
func (c *herokuClient) upload(ctx context.Context, putURL string, f *os.File, size int64) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("heroku: upload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, putURL, io.NopCloser(f))
	if err != nil {
		return fmt.Errorf("heroku: upload: %w", err)
	}
	req.ContentLength = size
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("heroku: uploading the source: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("heroku: uploading the source: %s", resp.Status)
	}
	return nil
}

// stream copies the build output to w, line by line, retrying briefly
// while the stream is not there yet.
func (c *herokuClient) stream(ctx context.Context, streamURL string, w io.Writer) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
		if err != nil {
			return err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			err := copyLines(w, resp.Body)
			resp.Body.Close()
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || attempt >= 10 {
			return fmt.Errorf("build output: %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// packSource writes a tar.gz of dir (without its .git) to f and returns its
// size, SHA-256 and the number of files.
func packSource(f *os.File, dir string) (size int64, sum string, files int, err error) {
	h := sha256.New()
	counter := &countWriter{}
	gz := gzip.NewWriter(io.MultiWriter(f, h, counter))
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		if rel == ".git" {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil // a worktree's .git file
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return nil // sockets, devices, fifos: not source
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			files++
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		return 0, "", 0, err
	}
	return counter.n, hex.EncodeToString(h.Sum(nil)), files, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// syncWriter serialises writes from the stream and the status messages,
// and remembers the first write error.
type syncWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return len(p), nil
	}
	if _, err := s.w.Write(p); err != nil {
		s.err = err
	}
	return len(p), nil
}

func (s *syncWriter) say(format string, args ...any) {
	fmt.Fprintf(s, format+"\n", args...)
}
