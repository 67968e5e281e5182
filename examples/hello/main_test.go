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
	cmds := h.Manifest.GetCommands()
	if len(cmds) != 1 || cmds[0].GetName() != "hello" || !cmds[0].GetArgs()[0].GetRequired() {
		t.Fatalf("manifest commands = %v", cmds)
	}
}
