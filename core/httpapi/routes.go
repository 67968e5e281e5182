package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/webhook"
)

// DefaultMaxBody bounds the body of an adapter's route whose Route.MaxBody
// is 0.
const DefaultMaxBody int64 = 1 << 20

// Reasons in chima_http_rejected_total.
const (
	reasonTooLarge     = "too_large"
	reasonUnauthorized = "unauthorized"
	reasonBadBody      = "bad_body"
	reasonBusy         = "busy"
)

// newRejected returns the counter of requests refused before their handler,
// registered on reg (taking the one already there, when a server was built
// on reg before).
func newRejected(reg *prometheus.Registry) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chima_http_rejected_total",
		Help: "HTTP requests to adapters' routes refused before their handler ran, by route and reason (too_large, unauthorized, bad_body).",
	}, []string{"route", "reason"})
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

// RoutePattern is the pattern an adapter's route is served at: its method,
// then "/<adapter>/" + Path ("POST /slack/events"), or "/<adapter>" for an
// empty Path. Prefixing every route with its adapter's name keeps adapters
// from colliding, two workspaces of one type included.
func RoutePattern(adapter string, r chat.Route) string {
	path := "/" + adapter
	if r.Path != "" {
		path += "/" + strings.TrimPrefix(r.Path, "/")
	}
	return r.Method + " " + path
}

// Mount serves an adapter's route at RoutePattern through the one path every
// adapter's request takes: the body is limited to Route.MaxBody (default
// DefaultMaxBody; longer is 413 before Verify is called) and read whole,
// Route.Verify checks it (an error is 401, and nothing else runs), then
// Handler gets the request with the same body again. Refusals are counted
// in chima_http_rejected_total. A route without Verify or Handler, with a
// method other than GET or POST, or whose pattern another route has, is an
// error: nothing is mounted.
func (s *Server) Mount(adapter string, r chat.Route) (err error) {
	pattern := RoutePattern(adapter, r)
	switch {
	case r.Method != http.MethodPost && r.Method != http.MethodGet:
		return fmt.Errorf("adapter %s: route %q: method must be GET or POST", adapter, pattern)
	case r.Verify == nil:
		// Unverified ingress is a programming error, never a default.
		return fmt.Errorf("adapter %s: route %q has no Verify: every adapter route checks its requests", adapter, pattern)
	case r.Handler == nil:
		return fmt.Errorf("adapter %s: route %q has no Handler", adapter, pattern)
	}
	defer func() {
		// ServeMux panics on a malformed or conflicting pattern.
		if p := recover(); p != nil {
			err = fmt.Errorf("adapter %s: cannot mount %q: %v", adapter, pattern, p)
		}
	}()
	s.mux.Handle(pattern, s.verified(pattern, r))
	if !s.prefixes[adapter] {
		// Below an adapter's prefix, a POST no route takes (an unknown
		// inbound hook) is 404: without this, the pages' GET / would make
		// net/http answer 405.
		s.mux.HandleFunc("POST /"+adapter+"/", http.NotFound)
		if s.prefixes == nil {
			s.prefixes = map[string]bool{}
		}
		s.prefixes[adapter] = true
	}
	return nil
}

// verified wraps r.Handler in the body limit and r.Verify.
func (s *Server) verified(pattern string, r chat.Route) http.Handler {
	limit := r.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	reject := func(w http.ResponseWriter, req *http.Request, status int, reason string, err error) {
		s.rejected.WithLabelValues(pattern, reason).Inc()
		// The logger masks configured secrets; the request's headers
		// (signatures, tokens) are never logged.
		s.o.Logger.Warn("http request refused", "route", pattern, "reason", reason, "remote", req.RemoteAddr, "error", err)
		http.Error(w, http.StatusText(status), status)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.ContentLength > limit {
			reject(w, req, http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Errorf("body of %d bytes is over the limit of %d", req.ContentLength, limit))
			return
		}
		// What a stranger may make the bot hold before Verify is bounded
		// across requests, not only per request: a flood of large forged
		// bodies waits for the budget, then gets 503, unread.
		need := limit
		if req.ContentLength >= 0 && req.ContentLength < limit {
			need = req.ContentLength
		}
		budget, wait := s.o.BodyBudget, s.o.BudgetWait
		if budget == nil {
			budget = webhook.SharedBudget()
		}
		if wait <= 0 {
			wait = webhook.DefaultBudgetWait
		}
		ctx, cancel := context.WithTimeout(req.Context(), wait)
		ok := budget.Acquire(ctx, need)
		cancel()
		if !ok {
			w.Header().Set("Retry-After", "5")
			reject(w, req, http.StatusServiceUnavailable, reasonBusy, fmt.Errorf("no room for %d more unverified bytes", need))
			return
		}
		// Held only until Verify has spoken: a verified request's handler
		// may take long (an inbound hook waits for its replies).
		released := false
		release := func() {
			if !released {
				released = true
				budget.Release(need)
			}
		}
		defer release()
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				reject(w, req, http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Errorf("body over the limit of %d bytes", limit))
				return
			}
			reject(w, req, http.StatusBadRequest, reasonBadBody, err)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		err = r.Verify(req, body)
		release()
		if err != nil {
			reject(w, req, http.StatusUnauthorized, reasonUnauthorized, err)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		r.Handler.ServeHTTP(w, req)
	})
}
