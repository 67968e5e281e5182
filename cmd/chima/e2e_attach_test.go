package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// debugPlugin is a plugin binary a developer runs with --debug, and the two
// ways it printed to attach a bot to it.
type debugPlugin struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	flagLine string // chima run --attach NAME='…'
	envLine  string // CHIMA_REATTACH_PLUGINS='…' chima run
}

// startDebugPlugin runs bin --debug and reads what it prints.
func startDebugPlugin(t *testing.T, bin string) *debugPlugin {
	t.Helper()
	cmd := exec.Command(bin, "--debug")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &debugPlugin{cmd: cmd, exited: make(chan struct{})}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_ = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-d.exited })
	timeout := time.After(10 * time.Second)
	for d.flagLine == "" || d.envLine == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("%s --debug exited before printing how to attach", bin)
			}
			switch {
			case strings.HasPrefix(line, "chima run --attach "):
				d.flagLine = line
			case strings.HasPrefix(line, "or: CHIMA_REATTACH_PLUGINS="):
				d.envLine = strings.TrimPrefix(line, "or: ")
			}
		case <-timeout:
			t.Fatalf("%s --debug printed no attach lines within 10s", bin)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return d
}

// waitExit waits for the debug process to exit (a failure guard of 10s).
func (d *debugPlugin) waitExit(t *testing.T, why string) {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the debugged plugin is still running %s", why)
	}
}

// startPastedConsole runs line, as a developer pastes it into a shell, with
// --config cfg appended and bin/chima first on PATH, on a pipe. env runs
// it (an assignment first or not) in the shell's place, so that the test's
// cleanup kills chima itself.
func startPastedConsole(t *testing.T, line, cfg string) *console {
	t.Helper()
	cmd := exec.Command("sh", "-c", "exec env "+line+" --config '"+cfg+"'")
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	return startConsoleCmd(t, cmd)
}

func TestChimaRunAttachesToAPluginRunWithDebugAndStopsItWhenItQuits(t *testing.T) {
	for _, c := range []struct {
		name string
		line func(*debugPlugin) string
	}{
		{"with the --attach line it printed", func(d *debugPlugin) string { return d.flagLine }},
		{"with the CHIMA_REATTACH_PLUGINS line it printed", func(d *debugPlugin) string { return d.envLine }},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := startDebugPlugin(t, filepath.Join(binDir, "plugins/crashy"))
			con := startPastedConsole(t, c.line(d), writeConfig(t, ""))
			// kv goes through the bot's Host service and store.
			con.say(t, "chima kv colour blue")
			con.expect(t, "colour=blue")
			con.say(t, "chima hello world") // a plugin the bot started itself
			con.expect(t, "Hello, world!")
			if err := con.in.Close(); err != nil {
				t.Fatal(err)
			}
			if err := con.cmd.Wait(); err != nil {
				t.Fatalf("chima run: %v", err)
			}
			d.waitExit(t, "after the bot it served quit")
		})
	}
}

func TestAnAttachedPluginThatExitsIsDownInChatAndHealthzAndNotRestarted(t *testing.T) {
	d := startDebugPlugin(t, filepath.Join(binDir, "plugins/crashy"))
	addr := freePort(t)
	con := startPastedConsole(t, d.flagLine, writeConfig(t, fmt.Sprintf("http:\n  addr: %s\n", addr)))
	con.say(t, "chima kv a b")
	con.expect(t, "a=b")
	waitHealthz(t, addr, http.StatusOK)
	con.say(t, "chima exit") // the plugin exits, as a developer's process may
	con.expect(t, "crashed while handling")
	d.waitExit(t, "after exit")
	con.say(t, "chima kv a c")
	if line := con.expect(t, "The crashy plugin is down"); !strings.Contains(line, "does not restart") {
		t.Fatalf("down message %q does not say the bot will not restart it", line)
	}
	if body := waitHealthz(t, addr, http.StatusServiceUnavailable); !strings.Contains(body, "plugin crashy is down") {
		t.Fatalf("/healthz = %q, want the attached plugin named", body)
	}
}

func TestChimaRunRefusesAnAttachItCannotUse(t *testing.T) {
	cfg := writeConfig(t, "")
	for _, c := range []struct {
		name, attach, env, want string
	}{
		{"a plugin not in the config", `nosuch={"protocol":"grpc","protocol_version":1,"pid":1,"addr":{"network":"unix","string":"/tmp/x"}}`, "",
			"attach nosuch: no enabled plugin of that name in the config (plugins: hello, crashy)"},
		{"no name", `{"protocol":"grpc"}`, "", "want NAME='{...}'"},
		{"not JSON", `crashy=pid 12`, "", "--attach crashy: reattach config is not the JSON the plugin printed"},
		{"another protocol major", `crashy={"protocol":"grpc","protocol_version":2,"pid":1,"addr":{"network":"unix","string":"/tmp/x"}}`, "",
			"protocol version 2, this Chima speaks 1"},
		{"a bad environment variable", "", `{"crashy":{"protocol":"netrpc"}}`, `CHIMA_REATTACH_PLUGINS: plugin crashy: reattach config: protocol "netrpc"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"run", "--config", cfg}
			if c.attach != "" {
				args = append(args, "--attach", c.attach)
			}
			t.Setenv("CHIMA_REATTACH_PLUGINS", c.env)
			_, stderr, code := chima(t, args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant a failure saying %q", code, stderr, c.want)
			}
		})
	}
}
