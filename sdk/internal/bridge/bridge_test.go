package bridge

import (
	"strings"
	"testing"
)

type probe func(int) string

func TestAFunctionIsFoundByItsTypeAndAMissingOneIsABug(t *testing.T) {
	Register(probe(func(n int) string { return strings.Repeat("x", n) }))
	if got := Func[probe]()(3); got != "xxx" {
		t.Errorf("the registered func answered %q", got)
	}
	tests := []struct {
		name string
		do   func()
	}{
		{"a type never registered", func() { Func[func(bool) bool]() }},
		{"a type registered twice", func() { Register(probe(nil)) }},
		{"something not a function", func() { Register(42) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.do()
		})
	}
}
