package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chimaops/chima/core/chat"
)

// logBuffer collects the adapter's log lines, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testSetup is a chat.Setup whose secrets come from env and whose logs go
// to logs.
func testSetup(env map[string]string, logs io.Writer) chat.Setup {
	if logs == nil {
		logs = io.Discard
	}
	return chat.Setup{
		Name:    "hooks",
		BotName: "chima",
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Secret: func(name string) (string, error) {
			if v := env[name]; v != "" {
				return v, nil
			}
			return "", fmt.Errorf("$%s is empty", name)
		},
	}
}

// mount serves a's routes as the core does: under /<adapter>/, the body read
// within Route.MaxBody (413 beyond), then Verify (401 on its error), then
// the Handler with the same body again. Anything else is 404.
func mount(t *testing.T, a chat.Adapter) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	if rp, ok := a.(chat.RouteProvider); ok {
		for _, rt := range rp.Routes() {
			max := rt.MaxBody
			if max == 0 {
				max = 1 << 20
			}
			mux.HandleFunc(rt.Method+" /"+a.Name()+"/"+rt.Path, func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
				var tooBig *http.MaxBytesError
				if errors.As(err, &tooBig) {
					http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
					return
				}
				if err != nil {
					http.Error(w, "cannot read the body", http.StatusBadRequest)
					return
				}
				if err := rt.Verify(r, body); err != nil {
					if !errors.Is(err, chat.ErrUnauthorized) {
						t.Errorf("Verify returned %v, which does not wrap chat.ErrUnauthorized", err)
					}
					http.Error(w, "unauthorized", http.StatusUnauthorized)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				rt.Handler.ServeHTTP(w, r)
			})
		}
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// receiver is a webhook receiver: it records each post and answers with
// the next status of its script (200 when the script is used up).
type receiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	script []int
	posts  []received
	got    chan received
	// retryAfter is sent with 429 answers.
	retryAfter string
}

type received struct {
	Path   string
	Header http.Header
	Body   []byte
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	rc := &receiver{script: script, got: make(chan received, 1024), retryAfter: "0"}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p := received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		rc.mu.Lock()
		code := http.StatusOK
		if len(rc.script) > 0 {
			code, rc.script = rc.script[0], rc.script[1:]
		}
		rc.posts = append(rc.posts, p)
		ra := rc.retryAfter
		rc.mu.Unlock()
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(code)
		if code/100 == 2 {
			rc.got <- p
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// attempts is how many posts reached the receiver, taken or not.
func (rc *receiver) attempts() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.posts)
}

func (rc *receiver) url(path string) string { return rc.srv.URL + path }

func containsAny(s string, subs ...string) string {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return sub
		}
	}
	return ""
}
