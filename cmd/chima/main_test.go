package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binDir holds chima and the plugins, built once for these tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chima-cli-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for out, pkg := range map[string]string{
		"chima":          ".",
		"plugins/hello":  "../../examples/hello",
		"plugins/crashy": "../../core/internal/testplugins/crashy",
		"plugins/deploy": "../../plugins/deploy",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			panic(fmt.Sprintf("build %s: %v", pkg, err))
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeConfig writes a chima.yaml using the built plugins and returns its path.
func writeConfig(t testing.TB, extra string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`bot:
  name: chima
  prefix: "!"
adapters:
  - {name: shell, type: shell, room: general, user: alice}
store:
  path: %s
plugins:
  - name: hello
    path: %s
  - name: crashy
    path: %s
    max_restarts: 3
roles:
  admin: {users: ["shell:alice"], permissions: ["*"]}
policies:
  - command: echo
    allowed_rooms: [ops]
%s`, filepath.Join(dir, "chima.db"), filepath.Join(binDir, "plugins/hello"), filepath.Join(binDir, "plugins/crashy"), extra)
	path := filepath.Join(dir, "chima.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// chima runs the CLI and returns stdout, stderr and the exit code.
func chima(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "chima"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestSendPrintsRepliesAndExitStatus(t *testing.T) {
	cfg := writeConfig(t, "")
	cases := []struct {
		name, room, text, want string
		code                   int
	}{
		{"command answered by a plugin", "", "chima hello world", "[general] chima: Hello, world!", 0},
		{"unknown command suggests", "", "chima helo", `Did you mean "hello"?`, 1},
		{"refused by room policy", "", "chima echo hi", "Sorry,", 1},
		{"allowed in its room", "ops", "chima echo hi", "[ops] chima: hi", 0},
		{"jobs the command started are waited for", "", "chima job now", "job said now", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"send", "--config", cfg, c.text}
			if c.room != "" {
				args = append(args, "--room", c.room)
			}
			out, stderr, code := chima(t, args...)
			if !strings.Contains(out, c.want) || code != c.code {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d and %q", code, out, stderr, c.code, c.want)
			}
		})
	}
}

func TestAuditShowsWhoAskedForWhatAndHowItEnded(t *testing.T) {
	cfg := writeConfig(t, "")
	chima(t, "send", "--config", cfg, "chima hello auditor")
	chima(t, "send", "--config", cfg, "--user", "mallory", "--room", "general", "chima echo sneaky")
	out, stderr, code := chima(t, "audit", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "mallory") || !strings.Contains(lines[1], "crashy/echo") ||
		!strings.Contains(lines[1], "denied") || !strings.Contains(lines[2], "hello/hello") || !strings.Contains(lines[2], "ok") {
		t.Fatalf("audit:\n%s", out)
	}
}

func TestSendRefusesToShareTheStoreOfARunningBot(t *testing.T) {
	addr := freePort(t)
	cfg := writeConfig(t, fmt.Sprintf("http:\n  addr: %s\n", addr))
	c := startConsole(t, cfg)
	c.say(t, "chima hello world")
	c.expect(t, "Hello, world!")
	_, stderr, code := chima(t, "send", "--config", cfg, "chima hello again")
	if code == 0 || !strings.Contains(stderr, "a bot is running with") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestRunningBotServesHealthMetricsAndItsLivePluginList(t *testing.T) {
	addr := freePort(t)
	cfg := writeConfig(t, fmt.Sprintf("http:\n  addr: %s\n", addr))
	c := startConsole(t, cfg)
	c.say(t, "chima hello world")
	c.expect(t, "Hello, world!")
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	if body := get("/healthz"); body != "ok\n" {
		t.Fatalf("healthz = %q", body)
	}
	// The reply reaches chat a moment before the command is counted: poll.
	wants := []string{`chima_commands_total{outcome="ok",plugin="hello"} 1`, "chima_dispatch_duration_seconds_bucket", "process_resident_memory_bytes"}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		metrics := get("/metrics")
		var missing []string
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s", strings.Join(missing, ", "))
		}
	}
	out, stderr, code := chima(t, "plugins", "--config", cfg)
	if code != 0 || !strings.Contains(out, "live, from the bot at") || !strings.Contains(out, "running") {
		t.Fatalf("plugins (exit %d):\n%s%s", code, out, stderr)
	}
}

func TestSendRefusesTextNotAddressedToTheBot(t *testing.T) {
	_, stderr, code := chima(t, "send", "--config", writeConfig(t, ""), "hello world")
	if code != 2 || !strings.Contains(stderr, "not addressed") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestExplainShowsParsedArgumentsAndPolicyDecision(t *testing.T) {
	cfg := writeConfig(t, "")
	out, stderr, code := chima(t, "explain", "--config", cfg, "--user", "bob", "chima echo hi there")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var ex map[string]any
	if err := json.Unmarshal([]byte(out), &ex); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	args, _ := ex["args"].(map[string]any)
	if ex["plugin"] != "crashy" || ex["command"] != "echo" || args["text"] != "hi there" || ex["allowed"] != false || ex["reason"] == "" {
		t.Fatalf("explain = %s", out)
	}
}

// A secret argument typed into explain stays out of its JSON: out of the
// parsed arguments and out of the text as typed.
func TestExplainMasksASecretArgumentEverywhereInItsAnswer(t *testing.T) {
	out, stderr, code := chima(t, "explain", "--config", writeConfig(t, ""), "chima secret tok-S3CRET-123")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(out, "S3CRET") || !strings.Contains(out, `"token": "[secret]"`) {
		t.Fatalf("explain shows the secret argument:\n%s", out)
	}
}

func TestPluginsListsVersionsCommandsAndState(t *testing.T) {
	out, stderr, code := chima(t, "plugins", "--config", writeConfig(t, ""))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"NAME", "hello", "1.0.0", "crashy", "running", "echo"} {
		if !strings.Contains(out, want) {
			t.Errorf("plugins output lacks %q:\n%s", want, out)
		}
	}
}

func TestConfigValidateListsEveryProblemAndFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chima.yaml")
	bad := "bot:\n  nmae: chima\n  command_timeout: soon\nplugins:\n  - name: x\n    path: /nonexistent/plugin\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := chima(t, "config", "validate", "--config", path)
	if code == 0 {
		t.Fatal("invalid config validated")
	}
	for _, want := range []string{"chima.yaml:2", "nmae", "chima.yaml:3", "command_timeout", "/nonexistent/plugin"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("problems lack %q:\n%s", want, stderr)
		}
	}
	out, _, code := chima(t, "config", "validate", "--config", writeConfig(t, ""))
	if code != 0 || !strings.Contains(out, "is valid") {
		t.Fatalf("valid config: exit %d %s", code, out)
	}
}

func TestBotStartsWithOtherPluginsWhenOneCannotStart(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "broken")
	if err := os.WriteFile(notExec, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "")
	b, _ := os.ReadFile(cfg)
	cfgText := strings.Replace(string(b), "roles:", fmt.Sprintf("  - name: broken\n    path: %s\nroles:", notExec), 1)
	if err := os.WriteFile(cfg, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := chima(t, "send", "--config", cfg, "chima hello world")
	if code != 0 || !strings.Contains(out, "Hello, world!") || !strings.Contains(stderr, "plugin broken:") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	if out, _, _ := chima(t, "send", "--config", cfg, "chima help"); !strings.Contains(out, "Not available now: broken (failed)") {
		t.Fatalf("help does not say the broken plugin is down:\n%s", out)
	}
}

// console runs `chima run` on a pipe, like `make run` without a terminal.
type console struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startConsole(t *testing.T, cfg string) *console {
	t.Helper()
	return startConsoleCmd(t, exec.Command(filepath.Join(binDir, "chima"), "run", "--config", cfg))
}

// startConsoleCmd starts cmd, a chima run, with its console on pipes, and
// kills it when the test ends.
func startConsoleCmd(t *testing.T, cmd *exec.Cmd) *console {
	t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &console{cmd: cmd, in: in, out: bufio.NewScanner(out)}
}

func (c *console) say(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// expect reads output lines until one contains want (a failure guard of
// 10s applies; it asserts no duration).
func (c *console) expect(t *testing.T, want string) string {
	if os.Getenv("CHIMA_TEST_ECHO") != "" {
		defer func() { t.Logf("matched %q", want) }()
	}
	t.Helper()
	found := make(chan string, 1)
	go func() {
		for c.out.Scan() {
			if os.Getenv("CHIMA_TEST_ECHO") != "" {
				fmt.Println("OUT:", c.out.Text())
			}
			if strings.Contains(c.out.Text(), want) {
				found <- c.out.Text()
				return
			}
		}
		close(found)
	}()
	select {
	case line, ok := <-found:
		if !ok {
			t.Fatalf("output ended without %q", want)
		}
		return line
	case <-time.After(10 * time.Second):
		t.Fatalf("no output line with %q", want)
	}
	return ""
}

// childPIDs lists the direct children of pid, whichever of its threads
// started them.
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(field)
			out = append(out, n)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("plugin process %d still running", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestConsoleRunsCommandsAndSwitchesRoomAndUser(t *testing.T) {
	c := startConsole(t, writeConfig(t, ""))
	c.say(t, "chima hello world")
	c.expect(t, "Hello, world!")
	c.say(t, "chima echo hi")
	c.expect(t, "Sorry,")
	c.say(t, "/room ops")
	c.say(t, "chima echo in ops")
	c.expect(t, "[ops] chima: in ops")
}

func TestPluginKilledByHandFailsTheCommandInFlightAndIsBackForTheNext(t *testing.T) {
	c := startConsole(t, writeConfig(t, ""))
	c.say(t, "chima hello warm")
	c.expect(t, "Hello, warm!")
	c.say(t, "/room ops")
	c.say(t, "chima sleep 1h")
	time.Sleep(200 * time.Millisecond) // let the command reach the plugin
	var crashy int
	for _, pid := range childPIDs(t, c.cmd.Process.Pid) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "crashy") {
			crashy = pid
		}
	}
	if crashy == 0 {
		t.Fatal("crashy plugin process not found")
	}
	if err := syscall.Kill(crashy, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "crashed while handling sleep 1h; it was restarted") // the console shows `code` plain
	c.say(t, "chima echo back")
	c.expect(t, "[ops] chima: back")
}

func TestSIGTERMStopsTheBotAndLeavesNoPluginProcess(t *testing.T) {
	c := startConsole(t, writeConfig(t, ""))
	c.say(t, "chima hello world")
	c.expect(t, "Hello, world!")
	plugins := childPIDs(t, c.cmd.Process.Pid)
	if len(plugins) != 2 {
		t.Fatalf("want 2 plugin processes, got %v", plugins)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("chima run after SIGTERM: %v", err)
	}
	waitGone(t, plugins)
}

func TestKilledBotLeavesNoPluginProcess(t *testing.T) {
	c := startConsole(t, writeConfig(t, ""))
	c.say(t, "chima hello world")
	c.expect(t, "Hello, world!")
	plugins := childPIDs(t, c.cmd.Process.Pid)
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	waitGone(t, plugins)
}

// deployConfig writes apps (an apps file's JSON) and a chima.yaml, from
// writeConfig with extra, that also runs the built deploy plugin with that
// apps file, a workspace of its own, the plugin keys given in plugin (YAML
// lines such as "secrets: {GITHUB_TOKEN: X}") and the further settings given
// in settings ("key: value"). It returns the config's path, the apps file's
// and the temp dir both are in.
func deployConfig(t testing.TB, extra, apps string, plugin []string, settings ...string) (cfg, appsFile, dir string) {
	t.Helper()
	dir = t.TempDir()
	appsFile = filepath.Join(dir, "apps.json")
	if err := os.WriteFile(appsFile, []byte(apps), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = writeConfig(t, extra)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var entry strings.Builder
	fmt.Fprintf(&entry, "  - name: deploy\n    path: %s\n", filepath.Join(binDir, "plugins/deploy"))
	for _, line := range plugin {
		fmt.Fprintf(&entry, "    %s\n", line)
	}
	// Checkouts beside the workspace, in the test's folder: on /dev/shm,
	// the default, every test would leave its installation's folder.
	fmt.Fprintf(&entry, "    settings:\n      apps_file: %s\n      workspace_dir: %s\n      checkout_dir: %s\n", appsFile, filepath.Join(dir, "ws"), filepath.Join(dir, "checkouts"))
	for _, line := range settings {
		fmt.Fprintf(&entry, "      %s\n", line)
	}
	text := strings.Replace(string(b), "roles:", entry.String()+"roles:", 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, appsFile, dir
}
