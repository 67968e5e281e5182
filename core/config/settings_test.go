package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestPluginSettingsHoldAnyYAML(t *testing.T) {
	cases := []struct {
		name     string
		settings string // the YAML under settings:, indented for it
		want     map[string]any
	}{
		{
			name:     "top-level scalars keep their types",
			settings: "apps_file: apps.json\n      port: 8080\n      ratio: 1.10\n      init: true\n      none: null",
			want:     map[string]any{"apps_file": "apps.json", "port": json.Number("8080"), "ratio": json.Number("1.10"), "init": true, "none": nil},
		},
		{
			name: "nested mappings and lists",
			settings: `targets:
        demo-db:
          kind: sqlite
          excludes: [".git", "tmp"]
          retention: {keep_last: 10, keep_daily: 7}`,
			want: map[string]any{"targets": map[string]any{"demo-db": map[string]any{
				"kind": "sqlite", "excludes": []any{".git", "tmp"},
				"retention": map[string]any{"keep_last": json.Number("10"), "keep_daily": json.Number("7")},
			}}},
		},
		{
			name: "aliases and merge keys are expanded",
			settings: `base: &base {repository: /r, init: true}
      targets:
        a: {<<: *base, kind: sqlite}`,
			want: map[string]any{
				"base":    map[string]any{"repository": "/r", "init": true},
				"targets": map[string]any{"a": map[string]any{"repository": "/r", "init": true, "kind": "sqlite"}},
			},
		},
		{
			name:     "numbers JSON cannot spell are converted, a block string stays a string",
			settings: "mask: 0o17\n      hex: 0x1F\n      inf: .inf\n      old: |\n        a: 1\n",
			want:     map[string]any{"mask": json.Number("15"), "hex": json.Number("31"), "inf": ".inf", "old": "a: 1\n"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustParse(t, valid+"    settings:\n      "+c.settings+"\n")
			got := cfg.Plugins[0].Settings
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("settings = %#v\nwant       %#v", got, c.want)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Fatalf("settings are not JSON: %v", err)
			}
		})
	}
}

func TestPluginSettingsMistakesAreNamed(t *testing.T) {
	got := problems(t, valid+"    settings:\n      a: 1\n      a: 2\n      targets:\n        t: {x: 1, x: 2}\n")
	want := []string{
		"chima.yaml:11: plugins[0].settings.a: duplicate key (first set at line 10)",
		"chima.yaml:13: plugins[0].settings.targets.t.x: duplicate key (first set at line 13)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
