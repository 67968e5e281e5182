package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a bytes.Buffer safe for one writer and many readers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// recordedConsole is `chima run` on a pipe whose whole stdout and stderr
// are kept, to look for what must not be there.
type recordedConsole struct {
	*console
	stdout, stderr *syncBuf
}

func startRecordedConsole(t *testing.T, cfg string, args ...string) *recordedConsole {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "chima"), append([]string{"run", "--config", cfg}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordedConsole{stdout: &syncBuf{}, stderr: &syncBuf{}}
	cmd.Stderr = io.MultiWriter(rc.stderr, os.Stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rc.console = &console{cmd: cmd, in: in, out: bufio.NewScanner(io.TeeReader(out, rc.stdout))}
	return rc
}

// quit ends the console's input and waits for the bot to exit.
func (c *recordedConsole) quit(t *testing.T) {
	t.Helper()
	_ = c.in.Close()
	done := make(chan error, 1)
	go func() {
		_, _ = io.Copy(io.Discard, scannerRest(c.out)) // drain what is left
		done <- c.cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("chima run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("chima run did not exit at end of input")
	}
}

// scannerRest reads what a scanner has not consumed yet.
func scannerRest(s *bufio.Scanner) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		for s.Scan() {
			_, _ = pw.Write(append(s.Bytes(), '\n'))
		}
		pw.Close()
	}()
	return pr
}

// healthz returns the status code and body of GET /healthz.
func healthz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitHealthz polls /healthz until it answers code (a failure guard of
// 60s applies; it asserts no duration).
func waitHealthz(t *testing.T, addr string, code int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, body := healthz(t, addr)
		if got == code {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still answers %d %q, want %d", got, body, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// healthConfig writes a chima.yaml with hello, crashy (failed after two
// crashes) and, when apps is set, the deploy plugin with that apps file.
func healthConfig(t *testing.T, dir, addr, apps, extra string) string {
	t.Helper()
	var deploy string
	if apps != "" {
		appsFile := filepath.Join(dir, "apps.json")
		if err := os.WriteFile(appsFile, []byte(apps), 0o644); err != nil {
			t.Fatal(err)
		}
		deploy = fmt.Sprintf("  - name: deploy\n    path: %s\n    settings: {apps_file: %s, workspace_dir: %s, checkout_dir: %s}\n",
			filepath.Join(binDir, "plugins/deploy"), appsFile, filepath.Join(dir, "ws"), filepath.Join(dir, "checkouts"))
	}
	var http string
	if addr != "" {
		http = fmt.Sprintf("http:\n  addr: %s\n", addr)
	}
	cfg := fmt.Sprintf(`bot:
  name: chima
adapters:
  - {name: shell, type: shell, room: general, user: alice}
store:
  path: %s
%splugins:
  - name: hello
    path: %s
%s  - name: crashy
    path: %s
    max_restarts: 1
%sroles:
  admin: {users: ["shell:alice"], permissions: ["*"]}
`, filepath.Join(dir, "chima.db"), http, filepath.Join(binDir, "plugins/hello"), extra, filepath.Join(binDir, "plugins/crashy"), deploy)
	path := filepath.Join(dir, "chima.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const demoApps = `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["staging"]}}`

func TestHealthzNamesAFailedPluginUntilItsRetryBringsItBack(t *testing.T) {
	addr := freePort(t)
	cfg := healthConfig(t, t.TempDir(), addr, "", "")
	c := startRecordedConsole(t, cfg)
	c.say(t, "chima hello world")
	c.expect(t, "Hello, world!")
	if code, body := healthz(t, addr); code != http.StatusOK {
		t.Fatalf("/healthz with every plugin running: %d %q", code, body)
	}

	c.say(t, "chima exit")
	c.expect(t, "The crashy plugin crashed while handling exit; it was restarted.")
	c.say(t, "chima exit")
	c.expect(t, "The crashy plugin crashed while handling exit, and is down now (it crashed 2 times within 1m0s; next restart in")
	c.say(t, "chima echo hi")
	c.expect(t, "The crashy plugin is down (it crashed 2 times within 1m0s; next restart in")
	code, body := healthz(t, addr)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "plugin crashy is down: it crashed 2 times within 1m0s; next restart in") ||
		strings.Contains(body, "hello") {
		t.Fatalf("/healthz with crashy failed: %d %q", code, body)
	}
	out, stderr, exit := chima(t, "plugins", "--config", cfg)
	if exit != 0 || !strings.Contains(out, "live, from the bot at") || !strings.Contains(out, "failed (") || !strings.Contains(out, "next try in") {
		t.Fatalf("plugins (exit %d):\n%s%s", exit, out, stderr)
	}

	// The failed plugin is started again after its backoff.
	if body := waitHealthz(t, addr, http.StatusOK); body != "ok\n" {
		t.Fatalf("/healthz after the retry = %q", body)
	}
	c.say(t, "chima exit")
	c.expect(t, "The crashy plugin crashed while handling exit; it was restarted.")
}

func TestPluginWithBadSettingsSaysInChatItCouldNotStartAndWhy(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	bad := `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["staging"], "colour": "blue"}}`

	t.Run("never started", func(t *testing.T) {
		cfg := healthConfig(t, t.TempDir(), addr, bad, "")
		c := startRecordedConsole(t, cfg)
		c.say(t, "chima deploy demo to staging")
		line := c.expect(t, "The deploy plugin could not start:")
		if !strings.Contains(line, `unknown key "colour"`) || !strings.Contains(line, "chima plugins") {
			t.Fatalf("chat said %q", line)
		}
		c.say(t, "chima deploy:lock demo in staging")
		c.expect(t, "The deploy plugin could not start:")
		if code, body := healthz(t, addr); code != http.StatusServiceUnavailable || !strings.Contains(body, "plugin deploy is down") {
			t.Fatalf("/healthz: %d %q", code, body)
		}
		c.quit(t)
	})

	t.Run("started before with good settings", func(t *testing.T) {
		cfg := healthConfig(t, dir, addr, demoApps, "")
		c := startRecordedConsole(t, cfg)
		c.say(t, "chima where can I deploy demo")
		c.expect(t, "staging")
		c.quit(t)

		// The same bot, its apps file broken since: every command the
		// plugin had is answered with why it is down.
		healthConfig(t, dir, addr, bad, "")
		c = startRecordedConsole(t, cfg)
		c.say(t, "chima where can I deploy demo")
		line := c.expect(t, "The deploy plugin could not start:")
		if !strings.Contains(line, `unknown key "colour"`) {
			t.Fatalf("chat said %q", line)
		}
		c.quit(t)
	})
}

func TestSecretTypedIntoChatIsMaskedEverywhereChimaWrites(t *testing.T) {
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	secret := "e2e-secret-" + hex.EncodeToString(raw)
	t.Setenv("CHIMA_E2E_SECRET", secret)
	dir := t.TempDir()
	// The secret is hello's; crashy and deploy do not know it.
	cfg := healthConfig(t, dir, "", demoApps, "    secrets: {HELLO_TOKEN: CHIMA_E2E_SECRET}\n")
	c := startRecordedConsole(t, cfg, "--log-level", "debug")

	c.say(t, "chima echo token "+secret)
	c.expect(t, "chima: token ")
	c.say(t, "chima deploy:lock demo in staging because "+secret)
	c.expect(t, "Locked demo in staging: because ")
	c.say(t, "chima where can I deploy demo")
	c.expect(t, "locked by alice")
	c.say(t, "chima kv note "+secret)
	c.expect(t, "note=")
	c.say(t, "chima env NAMES "+secret) // crashy logs what it was asked
	c.expect(t, "NAMES=")
	c.say(t, "chima nonsense "+secret)
	c.expect(t, "nonsense")
	time.Sleep(100 * time.Millisecond) // let the audit writer write its batch
	running := readStore(t, dir)       // the -wal file, while the bot runs
	c.quit(t)

	audit, _, code := chima(t, "audit", "--config", cfg)
	if code != 0 {
		t.Fatalf("audit (exit %d):\n%s", code, audit)
	}
	// Each place did get the text, masked: the test reached it.
	for name, text := range map[string]string{
		"console output": c.stdout.String(), "chima audit": audit,
		"bot's log (crashy's log line)": grepLines(c.stderr.String(), "env asked"),
	} {
		if !strings.Contains(text, "[redacted]") {
			t.Errorf("%s never showed the masked secret:\n%s", name, text)
		}
	}
	places := map[string]string{"console output": c.stdout.String(), "bot's log (stderr)": c.stderr.String(), "chima audit": audit}
	var store strings.Builder
	for when, files := range map[string]map[string]string{"while running": running, "after exit": readStore(t, dir)} {
		for name, b := range files {
			places[name+" "+when] = b
			store.WriteString(b)
		}
	}
	if !strings.Contains(store.String(), "because [redacted]") {
		t.Errorf("the store never got the masked lock reason")
	}
	for name, text := range places {
		if strings.Contains(text, secret) {
			i := strings.Index(text, secret)
			t.Errorf("%s holds the secret: …%q…", name, text[max(i-80, 0):min(i+len(secret)+20, len(text))])
		}
	}
}

// grepLines returns the lines of text that contain want.
func grepLines(text, want string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, want) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// readStore returns the bytes of the SQLite store files in dir (the db, its
// -wal and -shm), by file name.
func readStore(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "chima.db*"))
	if len(files) == 0 {
		t.Fatal("no store file")
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = string(b)
	}
	return out
}
