package sdktest

import (
	"fmt"
	"testing"

	"github.com/chimaops/chima/sdk"
)

// Start runs p as New does, outside a test (an Example function, a small
// program trying a plugin out): what would fail a test panics instead, and
// Close ends everything.
func Start(p *sdk.Plugin, settings ...map[string]string) *Harness {
	return New(&standalone{}, p, settings...)
}

// Close stops a harness made by Start. A harness made by New is closed when
// its test ends; Close does nothing for it.
func (h *Harness) Close() {
	if s, ok := h.t.(*standalone); ok {
		s.cleanup()
	}
}

// standalone is the testing.TB of a harness outside a test. The embedded
// interface is nil: only the methods below are ever called.
type standalone struct {
	testing.TB
	cleanups []func()
}

func (s *standalone) Helper()                      {}
func (s *standalone) Cleanup(f func())             { s.cleanups = append(s.cleanups, f) }
func (s *standalone) Fatal(args ...any)            { panic(fmt.Sprint(args...)) }
func (s *standalone) Error(args ...any)            { panic(fmt.Sprint(args...)) }
func (s *standalone) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }
func (s *standalone) Errorf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

// cleanup runs the cleanups, last first, once.
func (s *standalone) cleanup() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}
