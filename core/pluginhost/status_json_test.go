package pluginhost

import (
	"encoding/json"
	"strings"
	"testing"
)

// A plugin that could not start has no commands: /plugins and
// `chima plugins --json` say [] rather than null.
func TestAFailedPluginsStatusListsNoCommandsAsAnEmptyList(t *testing.T) {
	m := &managed{spec: Spec{Name: "deploy"}, state: StateFailed, lastErr: "configure deploy: bad apps file"}
	b, err := json.Marshal(m.status())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"commands":[]`) {
		t.Errorf("status = %s, want \"commands\":[]", b)
	}
}
