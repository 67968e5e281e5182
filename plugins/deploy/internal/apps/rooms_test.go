package apps

import (
	"errors"
	"testing"
)

func TestNotifyRoomsMustReachAnAdapterTheBotRuns(t *testing.T) {
	const file = `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["edge"], "notify_rooms": ["deployment", "slack:ops"]}}`
	tests := []struct {
		name     string
		adapters []string
		def      string
		want     []string // problems, "app: message"
	}{
		{"every room resolves", []string{"shell", "slack"}, "shell", nil},
		{"a bare room without a default adapter", []string{"mattermost", "slack"}, "", []string{
			`demo: notify_rooms[0]: "deployment" names no chat adapter, and the bot runs several (mattermost, slack) without a default; write it adapter:room, or set bot.default_adapter in chima.yaml`,
		}},
		{"a room of an adapter the bot does not run", []string{"shell"}, "shell", []string{
			`demo: notify_rooms[1]: "slack:ops": the bot runs no slack adapter (it runs shell)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mustParse(t, file).CheckNotifyRooms(tt.adapters, tt.def)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var le *LoadError
			if !errors.As(err, &le) || le.File != "apps.json" || len(le.Problems) != len(tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
			for i, p := range le.Problems {
				if p.String() != tt.want[i] || p.Key == "" {
					t.Fatalf("problem %d = %q (key %q), want %q", i, p.String(), p.Key, tt.want[i])
				}
			}
		})
	}
}

func TestABareRoomResolvesToTheDefaultAdapter(t *testing.T) {
	if got := ParseRoom("#deployment").Resolve("shell"); got != (Room{Adapter: "shell", Name: "deployment"}) {
		t.Fatalf("bare room = %+v", got)
	}
	if got := ParseRoom("slack:ops").Resolve("shell"); got != (Room{Adapter: "slack", Name: "ops"}) {
		t.Fatalf("qualified room = %+v", got)
	}
}

func TestAnAppWithoutNotifyRoomsReportsToItsFirstAllowedRoom(t *testing.T) {
	s := mustParse(t, `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["edge"], "allowed_rooms": ["deployment", "ops"]},
		"quiet": {"provider": "shell", "repository": "oursky/quiet", "environments": ["edge"]}}`)
	if got := mustApp(t, s, "demo").ReportRooms(); len(got) != 1 || got[0] != (Room{Name: "deployment"}) {
		t.Fatalf("demo reports to %+v", got)
	}
	if got := mustApp(t, s, "quiet").ReportRooms(); got != nil {
		t.Fatalf("quiet reports to %+v", got)
	}
	err := s.CheckNotifyRooms([]string{"mattermost", "slack"}, "")
	want := `apps.json: demo: allowed_rooms[0]: "deployment" (deployments made outside chat are announced there, as the app has no notify_rooms) names no chat adapter, and the bot runs several (mattermost, slack) without a default; write it adapter:room, or set bot.default_adapter in chima.yaml`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
}
