package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store"
)

var (
	runnerOnce sync.Once
	runnerErr  error
)

// runnerPlugin builds the runner fixture (RunCommand, a schedule from its
// settings) beside the binaries TestMain built, once.
func runnerPlugin(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "plugins/runner")
	runnerOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", path, "../../core/internal/testplugins/runner")
		if out, err := cmd.CombinedOutput(); err != nil {
			runnerErr = fmt.Errorf("build runner: %v\n%s", err, out)
		}
	})
	if runnerErr != nil {
		t.Fatal(runnerErr)
	}
	return path
}

// platformConfig writes a chima.yaml with hello and the runner plugin, which
// may run commands as the person alice; runner takes settings and extra is
// appended at the top level.
func platformConfig(t *testing.T, dir, runnerSettings, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`bot:
  name: chima
adapters:
  - {name: shell, type: shell, room: general, user: alice}
store:
  path: %s
plugins:
  - name: hello
    path: %s
  - name: runner
    path: %s
    run_as: [alice]
    settings: {%s}
people:
  alice: [shell:alice, shell:al]
  bob: [shell:bob]
roles:
  admin: {people: [alice], permissions: ["*"]}
%s`, filepath.Join(dir, "chima.db"), filepath.Join(binDir, "plugins/hello"), runnerPlugin(t), runnerSettings, extra)
	path := filepath.Join(dir, "chima.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loggedBot is a `chima run` whose console is fed by a pipe and whose log is
// kept (at info, so the scheduler's decisions show).
type loggedBot struct {
	*console
	mu  sync.Mutex
	log strings.Builder
	// logged is signalled on every log line.
	logged chan struct{}
	done   chan struct{}
}

func startBotLogging(t *testing.T, cfg string) *loggedBot {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "chima"), "run", "--config", cfg, "--log-level", "info")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &loggedBot{console: &console{cmd: cmd, in: in, out: bufio.NewScanner(out)}, logged: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			b.mu.Lock()
			b.log.WriteString(sc.Text() + "\n")
			b.mu.Unlock()
			select {
			case b.logged <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return b
}

// stop ends the bot as an operator does (SIGTERM) and waits for it.
func (b *loggedBot) stop(t *testing.T) {
	t.Helper()
	_ = b.in.Close()
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Drain the console so the bot never blocks writing to it.
	go func() {
		for b.out.Scan() {
		}
	}()
	<-b.done
	_ = b.cmd.Wait()
}

// waitLog waits, bounded, for a log line matching re and returns its
// submatches.
func (b *loggedBot) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		b.mu.Lock()
		m := re.FindStringSubmatch(b.log.String())
		b.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-b.logged:
		case <-deadline:
			b.mu.Lock()
			defer b.mu.Unlock()
			t.Fatalf("no log line matching %s in:\n%s", re, b.log.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// scheduleRuns reads the fired slots of schedule from the bot's store.
func scheduleRuns(t *testing.T, cfgDir, schedule string) []store.ScheduleRun {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", filepath.Join(cfgDir, "chima.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.ScheduleRuns(context.Background(), schedule, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// auditEntries reads `chima audit --json` with args.
func auditEntries(t *testing.T, cfg string, args ...string) []auditJSON {
	t.Helper()
	out, stderr, code := chima(t, append([]string{"audit", "--config", cfg, "--json", "--limit", "500"}, args...)...)
	if code != 0 {
		t.Fatalf("audit: exit %d: %s", code, stderr)
	}
	var entries []auditJSON
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("audit --json: %v\n%s", err, out)
	}
	return entries
}

// waitAudit waits, bounded, for an entry of `chima audit --json args` that
// match accepts.
func waitAudit(t *testing.T, cfg, what string, match func(auditJSON) bool, args ...string) auditJSON {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries := auditEntries(t, cfg, args...)
		for _, e := range entries {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, e := range entries {
				lines = append(lines, fmt.Sprintf("%+v", e))
			}
			t.Fatalf("no audit entry %s in:\n%s", what, strings.Join(lines, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAMissedSlotRunsOnceAfterARealRestartOnlyWithCatchUp stops the built
// bot while its schedule's slots pass and starts it again: with catch_up the
// latest missed slot runs once at start (not once per missed slot);
// without, none does.
func TestAMissedSlotRunsOnceAfterARealRestartOnlyWithCatchUp(t *testing.T) {
	const period = 2 * time.Second
	for _, catchUp := range []bool{true, false} {
		t.Run(fmt.Sprintf("catch_up=%v", catchUp), func(t *testing.T) {
			dir := t.TempDir()
			cfg := platformConfig(t, dir, "", fmt.Sprintf(`schedules:
  - {name: tock, cron: "@every 2s", command: "hello tock", room: general, as: alice, catch_up: %v}
`, catchUp))
			first := startBotLogging(t, cfg)
			first.expect(t, "Hello, tock!")
			first.stop(t)
			before := scheduleRuns(t, dir, "tock")
			if len(before) == 0 {
				t.Fatal("the first bot fired no slot")
			}
			last := before[len(before)-1].Slot
			// Let at least two slots pass while no bot runs.
			time.Sleep(3*period + period/2)

			second := startBotLogging(t, cfg)
			var missed, latest string
			if catchUp {
				m := second.waitLog(t, regexp.MustCompile(`catching up once on slots missed while down".*? schedule=tock missed=(\d+) slot=(\S+)`))
				missed, latest = m[1], m[2]
				second.expect(t, "Hello, tock!")
			} else {
				m := second.waitLog(t, regexp.MustCompile(`skipping slots missed while down \(catch_up is off\)".*? schedule=tock missed=(\d+) latest=(\S+)`))
				missed, latest = m[1], m[2]
			}
			if missed == "0" || missed == "1" {
				t.Fatalf("the bot missed %s slots; the test needs two or more", missed)
			}
			latestSlot, err := time.Parse(time.RFC3339, latest)
			if err != nil {
				t.Fatal(err)
			}
			// The slots missed are those after the last fired one, up to
			// latest: how many of them ran?
			var ran []time.Time
			deadline := time.Now().Add(15 * time.Second)
			for {
				ran = ran[:0]
				var ended bool
				for _, r := range scheduleRuns(t, dir, "tock") {
					if r.Slot.After(last) && !r.Slot.After(latestSlot) {
						ran = append(ran, r.Slot)
						ended = r.Outcome != ""
					}
				}
				if !catchUp || (len(ran) > 0 && ended) || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			want := 0
			if catchUp {
				want = 1
			}
			if len(ran) != want {
				t.Fatalf("%d of the %s slots missed while stopped ran (%v); want %d", len(ran), missed, ran, want)
			}
			if catchUp && !ran[0].Equal(latestSlot) {
				t.Errorf("the slot that ran is %s; want the latest missed, %s", ran[0], latestSlot)
			}
			second.stop(t)
		})
	}
}

// TestAPluginRunsAnotherPluginsCommandAsAnAllowedPersonOnly has the runner
// plugin run hello's command through Host.RunCommand: as alice, whom
// run_as allows, it runs and the audit names the person and the plugin; as
// bob it is refused and audited as denied.
func TestAPluginRunsAnotherPluginsCommandAsAnAllowedPersonOnly(t *testing.T) {
	dir := t.TempDir()
	cfg := platformConfig(t, dir, "", "")
	c := startConsole(t, cfg)

	c.say(t, "/user dave")
	c.say(t, "chima runas alice hello from runner")
	c.expect(t, "Hello, from runner!")
	c.expect(t, "runas ") // the plugin's own reply, after the command returned
	e := waitAudit(t, cfg, "of hello run by the runner", func(e auditJSON) bool {
		return e.Plugin == "hello" && e.TriggeredBy == "runner" && e.Outcome == "ok"
	})
	if e.Person != "alice" || e.UserID != "alice" || e.Via != "plugin runner: asked by dave" || e.Text != "hello from runner" {
		t.Errorf("audit entry = %+v; want alice's hello, via plugin runner: asked by dave", e)
	}
	// The command that asked, typed by dave, is audited too, apart.
	waitAudit(t, cfg, "of dave's runas", func(x auditJSON) bool {
		return x.Command == "runas" && x.UserID == "dave" && x.TriggeredBy == "" && x.Outcome == "ok"
	})

	c.say(t, "chima runas bob hello from runner")
	line := c.expect(t, "runas failed")
	if !strings.Contains(line, "PermissionDenied") || !strings.Contains(line, "may not run commands as bob") {
		t.Errorf("runner said %q; want a PermissionDenied naming bob", line)
	}
	d := waitAudit(t, cfg, "denying bob", func(x auditJSON) bool {
		return x.TriggeredBy == "runner" && x.Outcome == "denied"
	})
	if d.Person != "bob" || d.Decision != "denied" || !strings.Contains(d.Detail, "plugins[].run_as of runner allows alice") || d.Text != "hello from runner" {
		t.Errorf("denial entry = %+v; want bob, denied, naming run_as", d)
	}

	// --person finds alice's entries, whichever account; not bob's.
	for _, x := range auditEntries(t, cfg, "--person", "alice") {
		if x.Person != "alice" {
			t.Errorf("--person alice listed %+v", x)
		}
	}
	if got := auditEntries(t, cfg, "--person", "bob"); len(got) != 1 || got[0].Outcome != "denied" {
		t.Errorf("--person bob = %+v; want the one denial", got)
	}
	if got := auditEntries(t, cfg, "--triggered-by", "runner"); len(got) != 2 {
		t.Errorf("--triggered-by runner = %+v; want the run and the denial", got)
	}
}

// TestAPluginsScheduleFiresItsJobAndIsListed runs the runner with a
// schedule in its manifest, and one whose cron is wrong: the good one's job
// runs, chima schedules and the chat command list it with its last
// outcome, and /healthz names the bad one, which did not stop the bot.
func TestAPluginsScheduleFiresItsJobAndIsListed(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	cfg := platformConfig(t, dir, `tick_cron: "@every 2s", tick_room: general, tick_payload: hi, bad_cron: "0 25 * * *"`,
		"http:\n  addr: "+addr+"\n")
	c := startConsole(t, cfg)
	c.expect(t, "tick job ran: hi")

	e := waitAudit(t, cfg, "of the scheduled job's end", func(e auditJSON) bool {
		return e.Command == "job" && e.Plugin == "runner" && e.Outcome == "succeeded"
	})
	if !strings.HasPrefix(e.RequestID, "schedule:runner:tick@") || !strings.HasPrefix(e.Text, "tick job #") {
		t.Errorf("job entry = %+v; want the tick job under its slot", e)
	}
	waitAudit(t, cfg, "of the scheduled job's enqueue", func(e auditJSON) bool {
		return e.Command == "job" && e.Outcome == "enqueued" && e.Via == "schedule runner:tick" && e.TriggeredBy == "chima"
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		out, stderr, code := chima(t, "schedules", "--config", cfg)
		if code != 0 {
			t.Fatalf("schedules: exit %d: %s", code, stderr)
		}
		if strings.Contains(out, "runner:tick: a tick job of the runner plugin, @every 2s (UTC) — says tick") &&
			regexp.MustCompile(`next: [^;]+; last: [0-9-]+ [0-9:]+ \S+, job succeeded`).MatchString(out) {
			if strings.Contains(out, "broken") {
				t.Errorf("chima schedules lists the schedule whose cron is wrong:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chima schedules:\n%s\nwant runner:tick with its next run and last outcome", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.say(t, "chima schedules")
	c.expect(t, "runner:tick: a tick job of the runner plugin")

	body := waitHealthz(t, addr, http.StatusServiceUnavailable)
	if !strings.Contains(body, `plugin runner: schedule "broken" (manifest schedules[1]): bad cron spec "0 25 * * *"`) {
		t.Errorf("/healthz = %q; want the broken schedule named", body)
	}
}
