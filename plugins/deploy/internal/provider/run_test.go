package provider

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script writes an executable sh script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func shEnv(extra ...string) []string {
	return append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, extra...)
}

func TestRunOutput(t *testing.T) {
	long := strings.Repeat("a", 70000)
	tests := []struct {
		name string
		body string
		want []string // the Writes, in order
	}{
		{"stdout and stderr arrive combined, in order, one line per write",
			"echo out1; echo err1 >&2; echo out2\n",
			[]string{"out1\n", "err1\n", "out2\n"}},
		{"a last line without a newline gets one",
			"printf 'a\\nb'\n",
			[]string{"a\n", "b\n"}},
		{"empty lines are kept",
			"echo a; echo; echo b\n",
			[]string{"a\n", "\n", "b\n"}},
		{"an overlong line is split",
			"head -c 70000 /dev/zero | tr '\\0' a; echo\n",
			[]string{long[:lineMax] + "\n", long[lineMax:] + "\n"}},
		{"stdin is empty, so a reader ends at once",
			"cat; echo after-cat\n",
			[]string{"after-cat\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out lines
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := Run(ctx, Spec{Path: script(t, tt.body), Env: shEnv()}, &out); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := out.all()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d writes, want %d: %.200q", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("write %d = %.80q, want %.80q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestRunResults(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
		check   func(t *testing.T, err error)
	}{
		{"exit 0 is success", "exit 0\n", "", nil},
		{"a nonzero exit is an ExitError with the status", "exit 3\n", "script.sh exited with status 3",
			func(t *testing.T, err error) {
				var xe *ExitError
				if !errors.As(err, &xe) || xe.Code != 3 {
					t.Errorf("want ExitError code 3, got %#v", err)
				}
			}},
		{"a signal death names the signal", "kill -9 $$\n", "script.sh was killed by SIGKILL (signal 9)",
			func(t *testing.T, err error) {
				var xe *ExitError
				if !errors.As(err, &xe) || xe.Signal != syscall.SIGKILL || xe.Code != -1 {
					t.Errorf("want ExitError by SIGKILL, got %#v", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), Spec{Path: script(t, tt.body), Env: shEnv()}, &lines{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Run error = %v, want %q", err, tt.wantErr)
			}
			tt.check(t, err)
		})
	}
}

func TestRunEnvironmentIsExplicit(t *testing.T) {
	t.Setenv("CHIMA_TEST_SECRET", "s3cret")
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"nil means an empty environment", nil, ""},
		{"the given variables and nothing else", []string{"A=1", "B=two words"}, "A=1\nB=two words\n"},
		{"a later duplicate wins", []string{"A=1", "A=2"}, "A=2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out lines
			if err := Run(context.Background(), Spec{Path: "/usr/bin/env", Env: tt.env}, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("env printed %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestRunFindsProgramsInTheSpecsPATH(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "mytool"), []byte("#!/bin/sh\necho tool ran in \"$PWD\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	var out lines
	err := Run(context.Background(), Spec{Path: "mytool", Env: []string{"PATH=" + bin + ":/usr/bin:/bin"}, Dir: work}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "tool ran in "+work+"\n" {
		t.Errorf("output %q", out.String())
	}
	err = Run(context.Background(), Spec{Path: "mytool", Env: []string{"PATH=/usr/bin:/bin"}}, &out)
	if err == nil || !strings.Contains(err.Error(), "mytool is not installed") {
		t.Errorf("a program missing from the spec's PATH: %v", err)
	}
	err = Run(context.Background(), Spec{Path: filepath.Join(work, "nope")}, &out)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a missing absolute program: %v", err)
	}
}

func TestRunDoesNotStartWhenTheContextIsDone(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, Spec{Path: script(t, "touch "+marker+"\n"), Env: shEnv()}, &lines{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
}

// failingWriter fails every write.
type failingWriter struct{ calls int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.calls++
	return 0, errors.New("log store is down")
}

func TestRunSurvivesAFailingWriter(t *testing.T) {
	// Far more output than a pipe holds: the command must not block.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &failingWriter{}
	err := Run(ctx, Spec{Path: script(t, "seq 1 200000\n"), Env: shEnv()}, w)
	if err == nil || !strings.Contains(err.Error(), "succeeded, but its output could not be written: log store is down") {
		t.Fatalf("Run = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the command blocked on its output")
	}
	if w.calls != 1 {
		t.Errorf("writer called %d times after failing, want 1", w.calls)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	p, ok := procStat(strconv.Itoa(pid))
	return ok && p.live()
}

// waitGone fails the test if the processes are still alive after 10s.
func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("process %d is still running", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// readPIDs waits (up to 10s) for a script to write its pids to path. At the
// end of the test it kills them, in case the test failed before they ended.
func readPIDs(t *testing.T, path string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if f := strings.Fields(string(b)); len(f) == n && strings.HasSuffix(string(b), "\n") {
			pids := make([]int, n)
			for i, s := range f {
				pid, err := strconv.Atoi(s)
				if err != nil {
					t.Fatal(err)
				}
				pids[i] = pid
			}
			t.Cleanup(func() {
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script never wrote %d pids to %s (got %q)", n, path, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startScript starts Run on a script with body, which writes the n pids
// the test watches to "$PIDS", with grace, under a context that times out
// after timeout (never when it is 0); the test ends the context when it is
// done. It returns once the script wrote its pids.
func startScript(t *testing.T, body string, timeout, grace time.Duration, n int) (cancel context.CancelFunc, done <-chan error, pids []int) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(context.Background())
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
	}
	t.Cleanup(cancel)
	spec := Spec{Path: script(t, body), Env: shEnv("PIDS=" + pidFile), Grace: grace}
	ran := make(chan error, 1)
	go func() { ran <- Run(ctx, spec, &lines{}) }()
	return cancel, ran, readPIDs(t, pidFile, n)
}

func TestStoppingEndsTheWholeProcessGroup(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		stop    func(cancel context.CancelFunc)
		timeout time.Duration
		want    error
	}{
		{"cancel ends the script and the child it spawned",
			`sleep 600 &
echo "$$ $!" > "$PIDS"
wait
`, func(cancel context.CancelFunc) { cancel() }, 0, context.Canceled},
		{"a timeout ends a script that ignores SIGTERM, with SIGKILL",
			`trap '' TERM
sleep 600 &
echo "$$ $!" > "$PIDS"
while :; do wait; done
`, nil, 500 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cancel, done, pids := startScript(t, tt.body, tt.timeout, 200*time.Millisecond, 2)
			if tt.stop != nil {
				tt.stop(cancel)
			}
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Fatalf("Run = %v, want %v", err, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after the context ended")
			}
			waitGone(t, pids...)
		})
	}
}

func TestProcessesLeftBehindAreEnded(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"a background process with its own output",
			"sleep 600 >/dev/null 2>&1 &\necho \"$!\" > \"$PIDS\"\necho done\n"},
		{"a background process holding the output pipe",
			"sleep 600 &\necho \"$!\" > \"$PIDS\"\necho done\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out lines
			err := Run(ctx, Spec{Path: script(t, tt.body), Env: shEnv("PIDS=" + pidFile), Grace: 200 * time.Millisecond}, &out)
			pids := readPIDs(t, pidFile, 1)
			if err != nil {
				t.Fatalf("Run = %v; the script itself succeeded", err)
			}
			if out.String() != "done\n" {
				t.Errorf("output %q", out.String())
			}
			waitGone(t, pids...)
		})
	}
}

func TestSpecString(t *testing.T) {
	s := Spec{Path: "ansible-playbook", Args: []string{"-i", "hosts", "--extra-vars", `{"a":"b c"}`, "--", "deploy.yml"}}
	want := `ansible-playbook -i hosts --extra-vars "{\"a\":\"b c\"}" -- deploy.yml`
	if s.String() != want {
		t.Errorf("String = %s, want %s", s, want)
	}
}

func TestProcStatParsesCommandsWithParentheses(t *testing.T) {
	p, ok := procStat(strconv.Itoa(os.Getpid()))
	state, pgid := p.state, p.pgid
	if !ok || state != 'R' && state != 'S' || pgid != syscall.Getpgrp() {
		t.Errorf("procStat(self) = %c, %d, %v", state, pgid, ok)
	}
}
