// Package httpapi is Chima's HTTP server: health, Prometheus metrics and the
// plugin list for operators, and (as plugins need them) verified webhook
// endpoints. Every route is registered here so the surface stays reviewable.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chimaops/chima/core/webhook"
)

// Options configure the server.
type Options struct {
	// Addr is host:port to listen on.
	Addr     string
	Registry *prometheus.Registry
	// Plugins returns the plugin status list served at /plugins.
	Plugins func() any
	// Health returns an error when the bot is not healthy.
	Health func(ctx context.Context) error
	// Details, when set, adds lines below a healthy answer's "ok" (which
	// replica answered, say).
	Details func(ctx context.Context) string
	Logger  *slog.Logger
	// BodyBudget bounds the bytes of adapter routes' bodies being read
	// before Verify, across all requests at once; webhook.SharedBudget()
	// when nil, the same as GitHub's webhook.
	BodyBudget *webhook.Budget
	// BudgetWait is how long a request waits for room in the budget before
	// it is answered 503 with Retry-After; webhook.DefaultBudgetWait when 0.
	BudgetWait time.Duration
}

// Server is the HTTP server.
type Server struct {
	o   Options
	mux *http.ServeMux
	srv *http.Server
	ln  net.Listener
	// rejected counts requests to adapters' routes refused before their
	// handler (Mount).
	rejected *prometheus.CounterVec
	// prefixes are the adapters whose routes are mounted, each with a
	// catch-all that answers 404.
	prefixes map[string]bool
}

// New builds the server and its routes.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, mux: http.NewServeMux(), rejected: newRejected(o.Registry)}
	s.mux.HandleFunc("GET /healthz", s.health)
	if o.Registry != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	}
	s.mux.HandleFunc("GET /plugins", s.plugins)
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	return s
}

// Handle adds a route, for webhook receivers wired by the CLI.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the routes, for tests with httptest.
func (s *Server) Handler() http.Handler { return s.mux }

// Listen binds the address; Serve then serves on it. Split so that a bad
// address fails start-up before anything else runs.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.o.Addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.o.Addr
	}
	return s.ln.Addr().String()
}

// Serve serves until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.o.Logger.Info("http server listening", "addr", s.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.o.Health != nil {
		if err := s.o.Health(r.Context()); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
	if s.o.Details != nil {
		_, _ = w.Write([]byte(s.o.Details(r.Context())))
	}
}

func (s *Server) plugins(w http.ResponseWriter, _ *http.Request) {
	var v any = []any{}
	if s.o.Plugins != nil {
		v = s.o.Plugins()
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
