package pluginhost

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestSettingsReachPluginsAsJSONAndAsStrings(t *testing.T) {
	cases := []struct {
		name     string
		settings map[string]any
		wantStrs map[string]string
		wantJSON string
	}{
		{"none", nil, map[string]string{}, `{}`},
		{
			"top-level scalars are their text in the string map",
			map[string]any{"apps_file": "apps.json", "port": json.Number("8080"), "init": true, "none": nil},
			map[string]string{"apps_file": "apps.json", "port": "8080", "init": "true", "none": ""},
			`{"apps_file":"apps.json","init":true,"none":null,"port":8080}`,
		},
		{
			"nested values are their JSON in the string map, and nested in the document",
			map[string]any{"targets": map[string]any{"db": map[string]any{"keep": json.Number("7"), "excludes": []any{".git"}}}},
			map[string]string{"targets": `{"db":{"excludes":[".git"],"keep":7}}`},
			`{"targets":{"db":{"excludes":[".git"],"keep":7}}}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			strs, doc, err := settingsMessages(c.settings)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(strs, c.wantStrs) {
				t.Errorf("strings = %q, want %q", strs, c.wantStrs)
			}
			if doc != c.wantJSON {
				t.Errorf("json = %s, want %s", doc, c.wantJSON)
			}
		})
	}
}
