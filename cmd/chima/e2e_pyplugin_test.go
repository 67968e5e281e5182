package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// pyPluginScript is the Python example plugin, run by the bot as it is in
// the repository (it finds chima_plugin in sdk/python); the test skips
// when Debian's Python cannot import what the library needs.
func pyPluginScript(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput(); err != nil {
		sdktest.Missing(t, "%s cannot run the Python plugin (install python3-grpcio, python3-protobuf and python3-cryptography): %v: %s",
			python, err, bytes.TrimSpace(out))
	}
	path, err := filepath.Abs("../../examples/pyplugin/plugin.py")
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// pyConfig writes a chima.yaml whose only plugin is the Python example, with
// nothing about TLS: AutoMTLS is how every plugin is connected.
func pyConfig(t *testing.T) string {
	t.Helper()
	return pyConfigWith(t, "")
}

// pyConfigWith is pyConfig with settings, YAML lines indented for
// plugins[0], after its env.
func pyConfigWith(t *testing.T, settings string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`bot:
  name: chima
adapters:
  - {name: shell, type: shell, room: general, user: alice}
store:
  path: %s
plugins:
  - name: pyhello
    path: %s
    env: {PYHELLO_LOG_LEVEL: debug}
%sroles:
  admin: {users: ["shell:alice"], permissions: ["*"]}
`, filepath.Join(dir, "chima.db"), pyPluginScript(t), settings)
	path := filepath.Join(dir, "chima.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pythonPID returns the pid of the bot's plugin.py process, waiting
// (bounded) for one other than not.
func pythonPID(t *testing.T, bot int, not int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, pid := range childPIDs(t, bot) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if pid != not && alive(pid) && strings.Contains(string(b), "pyplugin/plugin.py") {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no plugin.py process under the bot (other than %d)", not)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPythonPluginOnTheRealBotUsesTheHostServiceOverMutualTLS runs the
// Python example in `chima run`: a command and its reply, a note kept in
// the bot's store through the Host service (KV, under a lock) that a new
// plugin process, after the first is killed, still reads, and a durable
// job that posts to the room through Host.Post. If the plugin cannot reach
// the Host service it does not start, and every step fails.
func TestPythonPluginOnTheRealBotUsesTheHostServiceOverMutualTLS(t *testing.T) {
	b := startBotLogging(t, pyConfig(t))

	b.say(t, "chima pyhello world")
	b.expect(t, "Hello from Python, world!")
	// Through go-plugin's AutoMTLS: the plugin got the host's certificate
	// and was connected over TLS (it serves nothing else).
	b.waitLog(t, regexp.MustCompile(`msg=serving .*plugin=pyhello`))

	// The first Host call comes after the plugin sat idle past go-plugin's
	// 5 s broker timeout: the plugin dialled the Host service at Describe
	// and kept the connection, so it still reaches it.
	if !testing.Short() {
		idle(t)
	}
	b.say(t, "chima pynote set freeze until Friday")
	b.expect(t, "noted freeze")
	b.say(t, "chima pynote get freeze")
	b.expect(t, "freeze: until Friday")

	first := pythonPID(t, b.cmd.Process.Pid, 0)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := pythonPID(t, b.cmd.Process.Pid, first)
	// The new process described itself to the host, which it does only once
	// it has dialled the Host service through the broker.
	b.waitLog(t, regexp.MustCompile(`(?s)described to host.*described to host`))
	b.say(t, "chima pynote get freeze")
	b.expect(t, "freeze: until Friday")
	if !alive(second) {
		t.Fatalf("the restarted plugin process %d is gone", second)
	}

	b.say(t, "chima pynote report")
	b.expect(t, "report queued as job")
	b.expect(t, "pyhello notes (1): freeze = until Friday")

	b.say(t, "chima pynote get nothing")
	b.expect(t, "no note 'nothing'")
	b.stop(t)
	if alive(second) {
		t.Errorf("plugin process %d outlived the bot", second)
	}
}

// TestConfigValidateAsksThePythonPluginAboutItsSettings runs `chima config
// validate` on the Python example: the plugin's on_validate answers the
// host's Validate call, so good settings are said to be valid and a bad
// one is named by its key and line in chima.yaml; no Python traceback
// reaches the output (before the library served Validate, grpcio logged
// one for the unimplemented method).
func TestConfigValidateAsksThePythonPluginAboutItsSettings(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		code     int
		stdout   string
		stderr   string
	}{
		{"no settings are valid", "", 0, "(settings valid: pyhello)", ""},
		{"a greeting is valid", "    settings: {greeting: Howdy}\n", 0, "(settings valid: pyhello)", ""},
		{"a misspelt key is named with its line", "    settings:\n      gretting: Howdy\n", 1, "",
			":12: settings.gretting: unknown setting (known: greeting)\n"},
		{"an empty greeting is named with its line", "    settings:\n      greeting: \"\"\n", 1, "",
			":12: settings.greeting: must be one line of 1 to 40 characters, not ''\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pyConfigWith(t, tt.settings)
			out, stderr, code := chima(t, "config", "validate", "--config", cfg)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, out, stderr)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out)
			}
			if tt.stderr != "" && !strings.Contains(stderr, "plugin pyhello: "+cfg+tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", "plugin pyhello: "+cfg+tt.stderr, stderr)
			}
			for _, bad := range []string{"Traceback", "NotImplementedError", "not validated"} {
				if strings.Contains(out+stderr, bad) {
					t.Errorf("output says %q:\nstdout:\n%s\nstderr:\n%s", bad, out, stderr)
				}
			}
		})
	}
}
