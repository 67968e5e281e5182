package sdk

import "testing"

func TestDebugModeIsAskedForByFlagOrEnvironment(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  string
		want bool
	}{
		{"started by the bot", nil, "", false},
		{"--debug", []string{"--debug"}, "", true},
		{"-debug among others", []string{"-v", "-debug"}, "", true},
		{"CHIMA_PLUGIN_DEBUG=1", nil, "1", true},
		{"CHIMA_PLUGIN_DEBUG=true", nil, "TRUE", true},
		{"CHIMA_PLUGIN_DEBUG=0", nil, "0", false},
		{"a flag that only looks like it", []string{"--debugger"}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := debugRequested(c.args, func(k string) string {
				if k == "CHIMA_PLUGIN_DEBUG" {
					return c.env
				}
				return ""
			})
			if got != c.want {
				t.Fatalf("debugRequested = %v, want %v", got, c.want)
			}
		})
	}
}

func TestShellQuoteSurvivesSingleQuotes(t *testing.T) {
	if got, want := shellQuote(`{"a":"it's"}`), `'{"a":"it'\''s"}'`; got != want {
		t.Fatalf("shellQuote = %s, want %s", got, want)
	}
}
