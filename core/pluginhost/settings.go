package pluginhost

import (
	"encoding/json"
	"fmt"
)

// settingsMessages renders a plugin's settings for Describe and Validate:
// the whole document as JSON (settings_json, protocol minor 8), and the
// string map older plugins read, in which a top-level scalar is its text
// and a nested mapping or list its JSON.
func settingsMessages(settings map[string]any) (map[string]string, string, error) {
	strs, err := settingsStrings(settings)
	if err != nil {
		return nil, "", err
	}
	if settings == nil {
		settings = map[string]any{}
	}
	doc, err := json.Marshal(settings)
	if err != nil {
		return nil, "", fmt.Errorf("settings: %w", err)
	}
	return strs, string(doc), nil
}

// settingsStrings is settings as the string map of protocol minors before
// 8: a string as it is, a number or bool as its text, null as "", and a
// mapping or list as its JSON.
func settingsStrings(settings map[string]any) (map[string]string, error) {
	strs := make(map[string]string, len(settings))
	for k, v := range settings {
		switch v := v.(type) {
		case nil:
			strs[k] = ""
		case string:
			strs[k] = v
		case json.Number:
			strs[k] = v.String()
		case map[string]any, []any:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("settings.%s: %w", k, err)
			}
			strs[k] = string(b)
		default:
			strs[k] = fmt.Sprint(v)
		}
	}
	return strs, nil
}
