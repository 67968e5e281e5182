package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// do performs one request against h and returns the recorded response.
func do(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name       string
		health     func(context.Context) error
		wantStatus int
		wantBody   string
	}{
		{"healthy without a check", nil, http.StatusOK, "ok\n"},
		{"healthy when the check passes", func(context.Context) error { return nil }, http.StatusOK, "ok\n"},
		{"unhealthy says why", func(context.Context) error { return errors.New("database is locked") },
			http.StatusServiceUnavailable, "unhealthy: database is locked\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, New(Options{Health: tt.health}).Handler(), http.MethodGet, "/healthz")
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("GET /healthz = %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
		})
	}
}

type ctxKey struct{}

func TestHealthCheckGetsTheRequestContext(t *testing.T) {
	var got any
	s := New(Options{Health: func(ctx context.Context) error {
		got = ctx.Value(ctxKey{})
		return nil
	}})
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req = req.WithContext(context.WithValue(req.Context(), ctxKey{}, "probe-1"))
	s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	if got != "probe-1" {
		t.Errorf("Health saw context value %v, want the request's", got)
	}
}

func TestMetricsServesRegisteredCollectorsAsText(t *testing.T) {
	reg := prometheus.NewRegistry()
	commands := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chima_test_commands_total",
		Help: "Commands handled, by plugin.",
	}, []string{"plugin"})
	reg.MustRegister(commands)
	commands.WithLabelValues("hello").Add(3)
	commands.WithLabelValues("deploy").Inc()

	rec := do(t, New(Options{Registry: reg}).Handler(), http.MethodGet, "/metrics")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(ct, "version=0.0.4") {
		t.Errorf("Content-Type = %q, want the text exposition format", ct)
	}
	body := rec.Body.String()
	for _, line := range []string{
		"# HELP chima_test_commands_total Commands handled, by plugin.",
		"# TYPE chima_test_commands_total counter",
		`chima_test_commands_total{plugin="deploy"} 1`,
		`chima_test_commands_total{plugin="hello"} 3`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, body)
		}
	}
}

func TestMetricsOnlyWithARegistry(t *testing.T) {
	rec := do(t, New(Options{}).Handler(), http.MethodGet, "/metrics")
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /metrics without a registry = %d, want 404", rec.Code)
	}
}

func TestPluginsServesTheStatusListAsJSON(t *testing.T) {
	type status struct {
		Name    string `json:"name"`
		State   string `json:"state"`
		Version string `json:"version,omitempty"`
	}
	tests := []struct {
		name    string
		plugins func() any
		want    string
	}{
		{"the list Plugins returns", func() any {
			return []status{{Name: "deploy", State: "running", Version: "2.1.0"}, {Name: "hello", State: "crashed"}}
		}, `[{"name":"deploy","state":"running","version":"2.1.0"},{"name":"hello","state":"crashed"}]`},
		{"an empty list without Plugins", nil, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, New(Options{Plugins: tt.plugins}).Handler(), http.MethodGet, "/plugins")
			if rec.Code != http.StatusOK {
				t.Fatalf("GET /plugins = %d", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var got, want any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, rec.Body.String())
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("GET /plugins = %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestHandleAddsARoute(t *testing.T) {
	s := New(Options{})
	s.Handle("POST /webhooks/github", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(append([]byte("got "), b...))
	}))
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/github", strings.NewReader("push")))
	if rec.Code != http.StatusAccepted || rec.Body.String() != "got push" {
		t.Errorf("POST /webhooks/github = %d %q", rec.Code, rec.Body.String())
	}
	if rec := do(t, s.Handler(), http.MethodGet, "/webhooks/github"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET of a POST route = %d, want 405", rec.Code)
	}
	if rec := do(t, s.Handler(), http.MethodGet, "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("adding a route broke /healthz: %d", rec.Code)
	}
}

func TestRoutesAnswerOnlyTheirMethods(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := New(Options{Registry: reg}).Handler()
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/healthz", http.StatusOK},
		{http.MethodHead, "/healthz", http.StatusOK},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		{http.MethodPut, "/plugins", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nowhere", http.StatusNotFound},
		{http.MethodGet, "/healthz/extra", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := do(t, h, tt.method, tt.path)
			if rec.Code != tt.want {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, rec.Code, tt.want)
			}
			if tt.want == http.StatusMethodNotAllowed && !strings.Contains(rec.Header().Get("Allow"), http.MethodGet) {
				t.Errorf("405 without Allow: GET, got %q", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestListenServeAndShutDown(t *testing.T) {
	s := New(Options{Addr: "127.0.0.1:0", Health: func(context.Context) error { return nil }})
	if got := s.Addr(); got != "127.0.0.1:0" {
		t.Errorf("Addr before Listen = %q, want the configured address", got)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr after Listen = %q, want the bound port", addr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz on %s: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q", resp.StatusCode, body)
	}
	client.CloseIdleConnections()

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
	if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
		_ = resp.Body.Close()
		t.Errorf("server still answers after shutdown: %d", resp.StatusCode)
	}
}

func TestListenRefusesABadAddress(t *testing.T) {
	s := New(Options{Addr: "127.0.0.1:99999"})
	if err := s.Listen(); err == nil || !strings.Contains(err.Error(), "127.0.0.1:99999") {
		t.Errorf("Listen on a bad port = %v, want an error naming the address", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Serve(ctx); err == nil {
		t.Error("Serve without a usable address returned nil")
	}
}
