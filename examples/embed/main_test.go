package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The example embeds the core as a program of its own would: built with go
// build, it answers a command through its plugin on a console fed by a
// pipe, and stops cleanly, its plugin process with it, whichever way it is
// stopped.
func TestEmbeddedBotAnswersThroughItsPluginAndStopsCleanly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("finds the plugin's process in /proc")
	}
	dir := t.TempDir()
	embed, hello := filepath.Join(dir, "embed"), filepath.Join(dir, "hello")
	for out, pkg := range map[string]string{embed: ".", hello: "../hello"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	cases := []struct {
		name string
		stop func(t *testing.T, cmd *exec.Cmd, in io.Closer)
	}{
		{"by SIGTERM", func(t *testing.T, cmd *exec.Cmd, _ io.Closer) {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}},
		{"by the end of its input", func(t *testing.T, _ *exec.Cmd, in io.Closer) {
			if err := in.Close(); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(embed, "-plugin", hello, "-store", filepath.Join(t.TempDir(), "embed.db"))
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			lines := make(chan string, 64)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()

			if _, err := io.WriteString(in, "chima hello embedded world\n"); err != nil {
				t.Fatal(err)
			}
			expect(t, lines, "[general] chima: Hello, embedded world!", &stderr)
			plugins := children(t, cmd.Process.Pid)
			if len(plugins) != 1 {
				t.Fatalf("plugin processes %v; want the hello plugin's one", plugins)
			}

			c.stop(t, cmd, in)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("embed after it was stopped: %v\n%s", err, stderr.String())
			}
			for _, pid := range plugins {
				if alive(pid) {
					t.Errorf("plugin process %d outlived the bot", pid)
				}
			}
		})
	}
}

// expect reads lines until one is want; the deadline only guards against a
// hang, it asserts no duration.
func expect(t *testing.T, lines <-chan string, want string, stderr *strings.Builder) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("output ended without %q\n%s", want, stderr.String())
			}
			if line == want {
				return
			}
		case <-timeout:
			t.Fatalf("no output line %q\n%s", want, stderr.String())
		}
	}
}

// children lists the direct children of pid, whichever of its threads
// started them.
func children(t *testing.T, pid int) []int {
	t.Helper()
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, field := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(field); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}
