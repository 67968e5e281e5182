package httpapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/webhook"
)

var routeSecret = []byte("s3cret-signing-key")

func sign(body []byte) string {
	m := hmac.New(sha256.New, routeSecret)
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// signedRoute is a route whose Verify checks an HMAC of the body, as Slack's
// and the generic webhooks' do; ran counts handler calls and got keeps the
// body the handler read.
func signedRoute(max int64, ran *atomic.Int32, got *[]byte) chat.Route {
	return chat.Route{
		Method: http.MethodPost, Path: "events", MaxBody: max,
		Verify: func(r *http.Request, body []byte) error {
			sig := r.Header.Get("X-Signature")
			if sig == "" {
				return fmt.Errorf("no X-Signature: %w", chat.ErrUnauthorized)
			}
			if !hmac.Equal([]byte(sig), []byte(sign(body))) {
				return fmt.Errorf("signature mismatch: %w", chat.ErrUnauthorized)
			}
			return nil
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran.Add(1)
			b, _ := io.ReadAll(r.Body)
			*got = b
			w.WriteHeader(http.StatusAccepted)
		}),
	}
}

func TestAnAdapterRouteRunsOnlyForAVerifiedBodyWithinItsLimit(t *testing.T) {
	good := []byte(`{"type":"event_callback","text":"chima deploy demo"}`)
	tests := []struct {
		name       string
		body       []byte
		sig        string
		chunked    bool // no Content-Length: the limit must hold while reading
		wantStatus int
		wantReason string // counted in chima_http_rejected_total; "" when it ran
	}{
		{"a good signature reaches the handler", good, sign(good), false, http.StatusAccepted, ""},
		{"a forged signature is 401", good, sign([]byte("other body")), false, http.StatusUnauthorized, "unauthorized"},
		{"a missing signature is 401", good, "", false, http.StatusUnauthorized, "unauthorized"},
		{"a tampered body is 401", append(bytes.Clone(good), ' '), sign(good), false, http.StatusUnauthorized, "unauthorized"},
		{"an oversized body is 413", bytes.Repeat([]byte("x"), 65), sign(bytes.Repeat([]byte("x"), 65)), false, http.StatusRequestEntityTooLarge, "too_large"},
		{"an oversized body without a length is 413", bytes.Repeat([]byte("x"), 65), sign(bytes.Repeat([]byte("x"), 65)), true, http.StatusRequestEntityTooLarge, "too_large"},
		{"a body of exactly the limit is read", bytes.Repeat([]byte("y"), 64), sign(bytes.Repeat([]byte("y"), 64)), true, http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			s := New(Options{Registry: reg})
			var ran atomic.Int32
			var got []byte
			verifyCalls := 0
			rt := signedRoute(64, &ran, &got)
			verify := rt.Verify
			rt.Verify = func(r *http.Request, body []byte) error { verifyCalls++; return verify(r, body) }
			if err := s.Mount("slack", rt); err != nil {
				t.Fatal(err)
			}
			var body io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length from httptest
			}
			req := httptest.NewRequest(http.MethodPost, "/slack/events", body)
			if tt.sig != "" {
				req.Header.Set("X-Signature", tt.sig)
			}
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d %q, want %d", rec.Code, rec.Body.String(), tt.wantStatus)
			}
			if tt.wantReason == "" {
				if ran.Load() != 1 || !bytes.Equal(got, tt.body) {
					t.Fatalf("handler ran %d times with body %q, want once with %q", ran.Load(), got, tt.body)
				}
				return
			}
			if ran.Load() != 0 {
				t.Fatalf("the handler ran for a refused request")
			}
			if tt.wantReason == "too_large" && verifyCalls != 0 {
				t.Fatalf("Verify was called for an oversized body")
			}
			if strings.Contains(rec.Body.String(), string(routeSecret)) || len(rec.Body.String()) > 40 {
				t.Fatalf("the refusal says too much: %q", rec.Body.String())
			}
			if n := rejectedCount(t, reg, "POST /slack/events", tt.wantReason); n != 1 {
				t.Fatalf("chima_http_rejected_total{reason=%q} = %v, want 1", tt.wantReason, n)
			}
		})
	}
}

func TestAdapterRoutesAreMountedUnderTheAdapterName(t *testing.T) {
	tests := []struct {
		adapter, path, target string
	}{
		{"slack", "events", "/slack/events"},
		{"ops-slack", "events", "/ops-slack/events"},
		{"hooks", "{name}", "/hooks/ci"},
		{"mattermost", "", "/mattermost"},
	}
	s := New(Options{})
	for _, tt := range tests {
		var ran atomic.Int32
		var got []byte
		rt := signedRoute(0, &ran, &got)
		rt.Path = tt.path
		if err := s.Mount(tt.adapter, rt); err != nil {
			t.Fatalf("%s %q: %v", tt.adapter, tt.path, err)
		}
		req := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader("{}"))
		req.Header.Set("X-Signature", sign([]byte("{}")))
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted || ran.Load() != 1 {
			t.Errorf("POST %s: %d, handler ran %d times", tt.target, rec.Code, ran.Load())
		}
	}
	// The default limit is 1 MiB.
	var ran atomic.Int32
	var got []byte
	if err := s.Mount("big", signedRoute(0, &ran, &got)); err != nil {
		t.Fatal(err)
	}
	huge := bytes.Repeat([]byte("z"), int(DefaultMaxBody)+1)
	req := httptest.NewRequest(http.MethodPost, "/big/events", bytes.NewReader(huge))
	req.Header.Set("X-Signature", sign(huge))
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || ran.Load() != 0 {
		t.Errorf("a body over 1 MiB: %d, handler ran %d times", rec.Code, ran.Load())
	}
}

func TestARouteThatCannotBeMountedSafelyIsRefused(t *testing.T) {
	h := http.NotFoundHandler()
	ok := func(*http.Request, []byte) error { return nil }
	tests := []struct {
		name  string
		route chat.Route
		want  string
	}{
		{"no Verify", chat.Route{Method: "POST", Path: "events", Handler: h}, "has no Verify"},
		{"no Handler", chat.Route{Method: "POST", Path: "events", Verify: ok}, "has no Handler"},
		{"another method", chat.Route{Method: "DELETE", Path: "events", Verify: ok, Handler: h}, "GET or POST"},
		{"a taken pattern", chat.Route{Method: "POST", Path: "events", Verify: ok, Handler: h}, "cannot mount"},
	}
	s := New(Options{})
	if err := s.Mount("slack", chat.Route{Method: "POST", Path: "events", Verify: ok, Handler: h}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Mount("slack", tt.route)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "slack") {
				t.Fatalf("Mount = %v, want an error naming the adapter and %q", err, tt.want)
			}
		})
	}
}

func TestTwoServersOnOneRegistryShareTheRejectedCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := New(Options{Registry: reg}), New(Options{Registry: reg})
	if a.rejected != b.rejected {
		t.Fatal("the second server's counter is not the registered one")
	}
}

// rejectedCount reads chima_http_rejected_total{route,reason} from reg.
func rejectedCount(t *testing.T, reg *prometheus.Registry, route, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "chima_http_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestAPostToNoRouteIsNotFound: an unknown inbound hook or webhook path is
// 404 even though the plugin pages serve every GET below /.
func TestAPostToNoRouteIsNotFound(t *testing.T) {
	s := New(Options{})
	s.Handle("GET /", http.NotFoundHandler())
	var ran atomic.Int32
	var got []byte
	rt := signedRoute(0, &ran, &got)
	rt.Path = "ci"
	if err := s.Mount("hooks", rt); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/hooks/nope", "/hooks/nope/deeper"} {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader("{}"))
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound || ran.Load() != 0 {
			t.Errorf("POST %s: %d, handler ran %d times; want 404 and nothing run", target, rec.Code, ran.Load())
		}
	}
}

// TestUnverifiedBodiesShareOneBudget: what strangers make the bot hold
// before Verify is bounded across requests. While one slow body holds the
// whole budget, the next request is answered 503 with Retry-After, unread,
// and once the first is done the budget is whole again.
func TestUnverifiedBodiesShareOneBudget(t *testing.T) {
	budget := webhook.NewBudget(100)
	s := New(Options{BodyBudget: budget, BudgetWait: 20 * time.Millisecond})
	var ran atomic.Int32
	var got []byte
	if err := s.Mount("slack", signedRoute(100, &ran, &got)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	// A body of unknown length that never ends holds the route's whole
	// limit of the budget.
	pr, pw := io.Pipe()
	slow := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/slack/events", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	deadline := time.Now().Add(5 * time.Second)
	for budget.InUse() != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow request holds %d bytes of the budget, want 100", budget.InUse())
		}
		time.Sleep(time.Millisecond)
	}

	post := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/slack/events", strings.NewReader("{}"))
		req.Header.Set("X-Signature", sign([]byte("{}")))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || ran.Load() != 0 {
		t.Errorf("a request while the budget is used up: %d, Retry-After %q, handler ran %d times; want 503 with Retry-After and nothing run",
			resp.StatusCode, resp.Header.Get("Retry-After"), ran.Load())
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-slow
	for budget.InUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the budget still holds %d bytes after the slow request ended", budget.InUse())
		}
		time.Sleep(time.Millisecond)
	}
	if resp := post(); resp.StatusCode != http.StatusAccepted || ran.Load() != 1 {
		t.Errorf("a request once the budget is free: %d, handler ran %d times", resp.StatusCode, ran.Load())
	}
}
