package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/core/internal/testplugins"
)

func checkerSpec(t *testing.T, settings map[string]any) Spec {
	t.Helper()
	bin, err := testplugins.Build("checker")
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: "checker", Path: bin, Env: []string{"PATH=" + os.Getenv("PATH")}, Settings: settings}
}

func TestValidateReturnsThePluginsProblems(t *testing.T) {
	dir := t.TempDir()
	pidFile, marker := filepath.Join(dir, "pid"), filepath.Join(dir, "configured")
	tests := []struct {
		name     string
		settings map[string]any
		want     []Problem
	}{
		{"valid settings have no problems", map[string]any{"apps_file": "ok"}, []Problem{}},
		{"each problem keeps its file, line and key",
			map[string]any{"file": "/etc/apps.json", "a": "bad", "a_line": "7", "b": "bad"},
			[]Problem{{File: "/etc/apps.json", Line: 7, Key: "a", Message: "is bad"}, {File: "/etc/apps.json", Key: "b", Message: "is bad"}}},
		{"a plain error is one problem", map[string]any{"fail": "cannot read the apps file"},
			[]Problem{{Message: "cannot read the apps file"}}},
	}
	h := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.settings["pid_file"], tt.settings["configured_marker"] = pidFile, marker
			got, err := h.Validate(context.Background(), checkerSpec(t, tt.settings))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems = %+v, want %+v", got, tt.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("Validate configured the plugin")
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatalf("the plugin did not run Validate: %v", err)
			}
			pid, _ := strconv.Atoi(string(b))
			// Started only to validate: it is gone once Validate returns.
			deadline := time.Now().Add(5 * time.Second)
			for syscall.Kill(pid, 0) == nil {
				if time.Now().After(deadline) {
					t.Fatalf("plugin process %d still runs after Validate", pid)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	if st := h.Status(); len(st) != 0 {
		t.Errorf("Validate added plugins to the host: %+v", st)
	}
}

func TestValidateOfAPluginWithoutValidateIsNotValidated(t *testing.T) {
	h := New(Options{})
	_, err := h.Validate(context.Background(), spec("crashy"))
	if !errors.Is(err, ErrNotValidated) {
		t.Fatalf("Validate = %v, want ErrNotValidated", err)
	}
}

func TestValidateOfAPluginThatCannotStart(t *testing.T) {
	h := New(Options{})
	_, err := h.Validate(context.Background(), Spec{Name: "nope", Path: filepath.Join(t.TempDir(), "missing")})
	if err == nil || errors.Is(err, ErrNotValidated) || !strings.Contains(err.Error(), "plugin nope") {
		t.Fatalf("Validate = %v, want a start error naming the plugin", err)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "apps.json", Line: 7, Key: "demo.deploy_scrpt", Message: "unknown key"}, "apps.json:7: demo.deploy_scrpt: unknown key"},
		{Problem{File: "apps.json", Message: "is empty"}, "apps.json: is empty"},
		{Problem{Key: "apps_file", Message: "is required"}, "settings.apps_file: is required"},
		{Problem{Message: "broken"}, "broken"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}
