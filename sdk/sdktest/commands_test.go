package sdktest_test

import (
	"reflect"
	"testing"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/sdktest"
)

func TestCommandsAreWhatThePluginDeclaredInTheSDKsTypes(t *testing.T) {
	declared := []sdk.Command{
		{Name: "deploy", Aliases: []string{"ship"}, Usage: "deploy <app> [to <env>]", Help: "Deploys an app.",
			Permission: "deploy", Pattern: `(?P<app>\S+)(?: to (?P<env>\S+))?`, Examples: []string{"deploy web to staging"},
			Args: []sdk.Arg{
				{Name: "app", Required: true, Help: "the app", Pattern: `[a-z-]+`},
				{Name: "env", Type: sdk.Enum, Default: "staging", Enum: []string{"staging", "production"}},
				{Name: "count", Type: sdk.Int}, {Name: "force", Type: sdk.Bool},
				{Name: "wait", Type: sdk.Duration}, {Name: "token", Secret: true}, {Name: "note", Rest: true},
			}},
		{Name: "ping"},
	}
	p := &sdk.Plugin{Name: "decl", Version: "1.0.0"}
	for _, c := range declared {
		c.Run = func(*sdk.Context) error { return nil }
		p.Commands = append(p.Commands, c)
	}
	got := sdktest.New(t, p).Commands()
	if !reflect.DeepEqual(got, declared) {
		t.Errorf("Commands() =\n%#v\nwant what was declared (without Run):\n%#v", got, declared)
	}
}
