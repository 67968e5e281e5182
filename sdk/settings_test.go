package sdk_test

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
)

type retention struct {
	KeepLast  int `settings:"keep_last"`
	KeepDaily int `settings:"keep_daily"`
}

type target struct {
	Kind      string         `settings:"kind,required"`
	Path      string         `settings:"path"`
	Excludes  []string       `settings:"excludes"`
	Init      bool           `settings:"init"`
	Retention *retention     `settings:"retention"`
	Extra     map[string]any `settings:"extra"`
}

type sub struct {
	Repo     string   `json:"repo"`
	Room     string   `json:"room"`
	Branches []string `json:"branches"`
}

type common struct {
	ConfigDir string `settings:"chima_config_dir"`
}

type testSettings struct {
	common
	AppsFile string            `settings:"apps_file"`
	Interval time.Duration     `settings:"interval"`
	Ratio    float64           `settings:"ratio"`
	Workers  uint8             `settings:"workers"`
	Rooms    map[string]string `settings:"rooms"`
	Targets  map[string]target `settings:"targets"`
	Subs     []sub             `settings:"subscriptions"`
	Addr     netip.Addr        `settings:"addr"`
	Ignored  string            `settings:"-"`
	Verbose  bool
}

func TestDecodeSettingsGoodDocuments(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		strs map[string]string
		want testSettings
	}{
		{
			name: "nested maps, lists and scalars from settings_json",
			doc: `{"apps_file":"apps.json","interval":"5m","ratio":0.5,"workers":3,"verbose":true,
				"rooms":{"acme/web":"deploys"},
				"targets":{"demo-db":{"kind":"sqlite","path":"x.db","excludes":[".git"],"init":true,
					"retention":{"keep_last":10,"keep_daily":7},"extra":{"n":2,"s":"t"}}},
				"subscriptions":[{"repo":"acme/web","room":"ci","branches":["main"]}],
				"addr":"127.0.0.1","chima_config_dir":"/etc/chima","chima_bot_name":"chima"}`,
			want: testSettings{
				common: common{ConfigDir: "/etc/chima"}, AppsFile: "apps.json", Interval: 5 * time.Minute, Ratio: 0.5, Workers: 3, Verbose: true,
				Rooms: map[string]string{"acme/web": "deploys"},
				Targets: map[string]target{"demo-db": {Kind: "sqlite", Path: "x.db", Excludes: []string{".git"}, Init: true,
					Retention: &retention{KeepLast: 10, KeepDaily: 7}, Extra: map[string]any{"n": int64(2), "s": "t"}}},
				Subs: []sub{{Repo: "acme/web", Room: "ci", Branches: []string{"main"}}},
				Addr: netip.MustParseAddr("127.0.0.1"),
			},
		},
		{
			name: "an older host's string map: scalars parsed, nested values as YAML",
			strs: map[string]string{
				"apps_file": "apps.json", "interval": "30s", "workers": "2", "verbose": "true",
				"targets":        "demo-db:\n  kind: sqlite\n  retention: {keep_daily: 7}\n",
				"subscriptions":  `[{"repo": "acme/web", "room": "ci"}]`,
				"chima_adapters": "console",
			},
			want: testSettings{
				AppsFile: "apps.json", Interval: 30 * time.Second, Workers: 2, Verbose: true,
				Targets: map[string]target{"demo-db": {Kind: "sqlite", Retention: &retention{KeepDaily: 7}}},
				Subs:    []sub{{Repo: "acme/web", Room: "ci"}},
			},
		},
		{
			name: "the old string form in settings_json: a YAML string where a map is wanted",
			doc:  `{"targets":"demo-db:\n  kind: directory\n  excludes: [\".git\"]\n"}`,
			want: testSettings{Targets: map[string]target{"demo-db": {Kind: "directory", Excludes: []string{".git"}}}},
		},
		{
			name: "a number or bool where a string is wanted is its text",
			doc:  `{"apps_file":1.10,"rooms":{"a":true}}`,
			want: testSettings{AppsFile: "1.10", Rooms: map[string]string{"a": "true"}},
		},
		{
			name: "null and empty settings leave the defaults",
			doc:  `{"apps_file":null,"targets":""}`,
			want: testSettings{},
		},
		{
			name: "no settings at all",
			doc:  `null`,
			want: testSettings{},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got testSettings
			if err := sdk.DecodeSettings(c.doc, c.strs, &got); err != nil {
				t.Fatalf("DecodeSettings: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestDecodeSettingsKeepsDefaultsOfAbsentKeys(t *testing.T) {
	got := testSettings{AppsFile: "default.json", Interval: time.Hour}
	if err := sdk.DecodeSettings(`{"interval":"1m"}`, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.AppsFile != "default.json" || got.Interval != time.Minute {
		t.Fatalf("got %+v, want apps_file kept and interval set", got)
	}
}

func TestDecodeSettingsBadDocumentsNameTheKeyPath(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		strs map[string]string
		want []string // "key: message", in order
	}{
		{
			name: "wrong type deep in a map of structs",
			doc:  `{"targets":{"demo-db":{"kind":"sqlite","retention":{"keep_daily":"seven"}}}}`,
			want: []string{`targets.demo-db.retention.keep_daily: want an integer, got "seven"`},
		},
		{
			name: "unknown keys, with a suggestion for a typo",
			doc:  `{"apps_fiel":"x","targets":{"demo-db":{"kind":"sqlite","retention":{"keep_dialy":7}}},"bogus":1}`,
			want: []string{
				`apps_fiel: unknown key (did you mean "apps_file"?)`,
				`bogus: unknown key`,
				`targets.demo-db.retention.keep_dialy: unknown key (did you mean "keep_daily"?)`,
			},
		},
		{
			name: "items of a list are named by index",
			doc:  `{"subscriptions":[{"repo":"a/b"},{"repo":["x"],"rooom":"ci"}]}`,
			want: []string{
				`subscriptions[1].repo: want a string, got a list`,
				`subscriptions[1].rooom: unknown key (did you mean "room"?)`,
			},
		},
		{
			name: "a required key missing",
			doc:  `{"targets":{"t1":{"path":"/x"}}}`,
			want: []string{`targets.t1.kind: is required`},
		},
		{
			name: "durations, bools, numbers and shapes",
			doc:  `{"interval":5,"verbose":"sometimes","ratio":"lots","workers":300,"rooms":["a"],"targets":{"t":{"kind":"k","init":1}},"addr":"not-an-ip"}`,
			want: []string{
				`addr: "not-an-ip": ParseAddr("not-an-ip"): unable to parse IP`,
				`interval: want a duration with a unit, like 5s or 5m, got 5`,
				`ratio: want a number, got "lots"`,
				`rooms: want a mapping, got a list`,
				`targets.t.init: want true or false, got 1`,
				`verbose: want true or false, got "sometimes"`,
				`workers: 300 is out of range`,
			},
		},
		{
			name: "a bad duration string",
			doc:  `{"interval":"soon"}`,
			want: []string{`interval: want a duration like 30s, 5m or 1h30m, got "soon"`},
		},
		{
			name: "an older host's string that is not YAML where a map is wanted",
			strs: map[string]string{"targets": "demo-db: [unclosed", "workers": "many"},
			want: []string{
				`targets: want a mapping, got a string that is not YAML or JSON: line 1: did not find expected ',' or ']'`,
				`workers: want a whole number of 0 or more, got "many"`,
			},
		},
		{
			name: "a nested YAML string with a typo inside it is named by path",
			strs: map[string]string{"targets": "demo-db:\n  kind: sqlite\n  retention: {keep_daily: seven}\n"},
			want: []string{`targets.demo-db.retention.keep_daily: want an integer, got "seven"`},
		},
		{
			name: "a scalar string where a list is wanted",
			doc:  `{"subscriptions":"acme/web"}`,
			want: []string{`subscriptions: want a list, got "acme/web"`},
		},
		{
			name: "host keys are skipped only at the top",
			doc:  `{"chima_anything":"x","targets":{"t":{"kind":"k","chima_x":1}}}`,
			want: []string{`targets.t.chima_x: unknown key`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got testSettings
			err := sdk.DecodeSettings(c.doc, c.strs, &got)
			var se *sdk.SettingsError
			if !errors.As(err, &se) {
				t.Fatalf("DecodeSettings = %v, want a *SettingsError", err)
			}
			var lines []string
			for _, p := range se.Problems {
				if p.File != "" {
					t.Errorf("problem %v has a file", p)
				}
				lines = append(lines, p.Key+": "+p.Message)
			}
			if strings.Join(lines, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

func TestDecodeSettingsRefusesWhatIsNotAStructPointer(t *testing.T) {
	for _, into := range []any{nil, testSettings{}, new(map[string]string), (*testSettings)(nil)} {
		if err := sdk.DecodeSettings(`{}`, nil, into); err == nil {
			t.Errorf("DecodeSettings into %T: no error", into)
		}
	}
	var s testSettings
	if err := sdk.DecodeSettings(`{"a":`, nil, &s); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("DecodeSettings of broken JSON = %v", err)
	}
}

// TestTypedSettingsReachConfigureAndValidate checks the server: Describe
// fills Settings before Configure, refuses bad settings without calling
// it, and Validate reports decoding problems without the plugin's own
// Validate.
func TestTypedSettingsReachConfigureAndValidate(t *testing.T) {
	var s testSettings
	var configured, validated int
	p := &sdk.Plugin{
		Name:     "typed",
		Settings: &s,
		Configure: func(map[string]string) error {
			configured++
			if s.Targets["demo-db"].Retention.KeepDaily != 7 {
				t.Errorf("Configure saw %+v", s)
			}
			return nil
		},
		Validate: func(map[string]string) error { validated++; return nil },
	}
	srv := sdk.NewServer(p, nil, nil)
	good := `{"targets":{"demo-db":{"kind":"sqlite","retention":{"keep_daily":7}}}}`
	if _, err := srv.Describe(context.Background(), &pluginv1.DescribeRequest{SettingsJson: good}); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	bad := `{"targets":{"demo-db":{"kind":"sqlite","retention":{"keep_daily":"seven"}}}}`
	_, err := srv.Describe(context.Background(), &pluginv1.DescribeRequest{SettingsJson: bad})
	if err == nil || !strings.Contains(err.Error(), `targets.demo-db.retention.keep_daily: want an integer, got "seven"`) {
		t.Fatalf("Describe with bad settings = %v", err)
	}
	resp, err := srv.Validate(context.Background(), &pluginv1.ValidateRequest{SettingsJson: bad})
	if err != nil {
		t.Fatal(err)
	}
	if ps := resp.GetProblems(); len(ps) != 1 || ps[0].GetKey() != "targets.demo-db.retention.keep_daily" {
		t.Fatalf("Validate problems = %v", ps)
	}
	if _, err := srv.Validate(context.Background(), &pluginv1.ValidateRequest{SettingsJson: good}); err != nil {
		t.Fatal(err)
	}
	if configured != 1 || validated != 1 {
		t.Fatalf("Configure ran %d times, Validate %d; want 1 each (not on bad settings)", configured, validated)
	}
}

func TestTypedSettingsWithoutValidateAreValidatedByDecoding(t *testing.T) {
	p := &sdk.Plugin{Name: "typed", Settings: &testSettings{}, Configure: func(map[string]string) error { return nil }}
	resp, err := sdk.NewServer(p, nil, nil).Validate(context.Background(), &pluginv1.ValidateRequest{Settings: map[string]string{"workers": "x"}})
	if err != nil {
		t.Fatalf("Validate: %v (a plugin with Settings validates)", err)
	}
	if ps := resp.GetProblems(); len(ps) != 1 || ps[0].GetKey() != "workers" {
		t.Fatalf("problems = %v", ps)
	}
}
