package main

import (
	"testing"

	"github.com/chimaops/chima/sdk/sdktest"
)

func TestHelloGreetsByName(t *testing.T) {
	h := sdktest.New(t, plugin())
	for _, name := range []string{"world", "QA team"} {
		res := h.Command("hello", sdktest.Args{"name": name})
		if got, want := res.Text(), "Hello, "+name+"!"; got != want {
			t.Errorf("hello %q = %q, want %q", name, got, want)
		}
	}
}

func TestHelloDeclaresItsCommand(t *testing.T) {
	h := sdktest.New(t, plugin())
	cmds := h.Commands()
	if len(cmds) != 1 || cmds[0].Name != "hello" || len(cmds[0].Args) != 1 || !cmds[0].Args[0].Required {
		t.Fatalf("declared commands = %+v, want hello with a required argument", cmds)
	}
}
