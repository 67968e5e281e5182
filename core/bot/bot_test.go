package bot_test

import (
	"bytes"
	"cmp"
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/approvals"
	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/internal/testplugins"
	"github.com/chimaops/chima/core/outbox"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testplugins.Cleanup()
	os.Exit(code)
}

// testBot is a running bot with real plugin processes and an in-memory chat.
type testBot struct {
	t     testing.TB
	bot   *bot.Bot
	chat  *chattest.Memory
	store *store.Store
	host  *pluginhost.Host
	db    string
	stop  func()
	// others are the chats of botOptions.adapters, by name.
	others map[string]*chattest.Memory
}

type botOptions struct {
	plugins  []string            // fixture names: crashy, examples/hello
	people   map[string][]string // person → "adapter:userid" accounts
	roles    map[string]config.Role
	policies []config.Policy
	timeout  time.Duration
	turn     time.Duration // bot.Options.TurnLimit
	dbPath   string
	before   func(*store.Store)        // runs on the store before the bot starts
	settings map[string]map[string]any // plugin → settings
	redactor *redact.Redactor
	metrics  *bot.Metrics // nil: the bot's own
	// startErrsOK lets plugins fail to start; the bot runs without them.
	startErrsOK bool
	// maxRestarts is every plugin's max_restarts; 0 means 3.
	maxRestarts int
	logger      *slog.Logger // the bot's; nil discards
	// threadReplies makes the chat answer room messages in threads, as
	// Slack and Mattermost do.
	threadReplies bool
	// concurrency is bot.Options.MaxConcurrency; 0 is its default.
	concurrency int
	// adapters are more in-memory chats beside "mem", by name.
	adapters []string
	// approvalSweep is bot.Options.ApprovalSweep.
	approvalSweep time.Duration
	// now is the approvals' clock (nil: time.Now).
	now func() time.Time
	// buttons gives the "mem" chat buttons.
	buttons bool
	// copies are more plugins, by name, each running the fixture named
	// (crashy twice, as crashy and crashy2).
	copies map[string]string
	// eventRetry is bot.Options.EventRetry.
	eventRetry store.Retry
	// runAs is bot.Options.RunAs: who each plugin may run commands as.
	runAs map[string][]string
	// scheduler builds bot.Options.Scheduler, given the bot (set by the
	// time it runs).
	scheduler func(b func() *bot.Bot, st *store.Store) interface{ Run(context.Context) }
	// outbox is bot.Options.Outbox.
	outbox outbox.Options
}

func startBot(t testing.TB, o botOptions) *testBot {
	t.Helper()
	if o.dbPath == "" {
		o.dbPath = filepath.Join(t.TempDir(), "chima.db")
	}
	st, err := store.Open(context.Background(), "sqlite", o.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if o.before != nil {
		o.before(st)
	}
	rt := router.New(router.Options{Name: "chima", Prefix: "!", MaxMessageBytes: 4000})
	var b *bot.Bot
	host := pluginhost.New(pluginhost.Options{
		HostService: func(name string) pluginv1.HostServer { return b.HostService(name) },
		OnChange: func(name string, m *pluginv1.Manifest, s pluginhost.State) {
			if s == pluginhost.StateRunning {
				if err := rt.SetPlugin(name, m); err != nil {
					t.Errorf("set plugin %s: %v", name, err)
				}
			}
			b.PluginChanged(name, m, s) // remembers manifests, tells of interrupted jobs
		},
	})
	mem := chattest.NewMemory("mem")
	mem.SetThreadReplies(o.threadReplies)
	if o.buttons {
		mem.SetButtons(true)
	}
	adapters := []chat.Adapter{mem}
	others := map[string]*chattest.Memory{}
	for _, name := range o.adapters {
		others[name] = chattest.NewMemory(name)
		adapters = append(adapters, others[name])
	}
	pol := policy.NewWithPeople(o.people, o.roles, o.policies)
	var scheduler interface{ Run(context.Context) }
	if o.scheduler != nil {
		scheduler = o.scheduler(func() *bot.Bot { return b }, st)
	}
	b = bot.New(bot.Options{
		RunAs: o.runAs, Scheduler: scheduler,
		Router: rt, Policy: pol, Plugins: host, Store: st,
		Adapters: adapters, CommandTimeout: o.timeout, Redactor: o.redactor, TurnLimit: o.turn,
		Logger: o.logger, Metrics: o.metrics, MaxConcurrency: o.concurrency,
		Approvals: approvals.New(st, pol, o.now), ApprovalSweep: o.approvalSweep, EventRetry: o.eventRetry,
		Outbox: o.outbox,
	})
	if o.maxRestarts == 0 {
		o.maxRestarts = 3
	}
	var specs []pluginhost.Spec
	for _, name := range o.plugins {
		path, err := testplugins.Build(name)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, pluginhost.Spec{Name: filepath.Base(name), Path: path, MaxRestarts: o.maxRestarts,
			Settings: o.settings[filepath.Base(name)], Env: []string{"PATH=" + os.Getenv("PATH")}})
	}
	for _, name := range slices.Sorted(maps.Keys(o.copies)) {
		path, err := testplugins.Build(o.copies[name])
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, pluginhost.Spec{Name: name, Path: path, MaxRestarts: o.maxRestarts,
			Settings: o.settings[name], Env: []string{"PATH=" + os.Getenv("PATH")}})
	}
	if errs := host.Start(context.Background(), specs); len(errs) > 0 && !o.startErrsOK {
		t.Fatal(errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	tb := &testBot{t: t, bot: b, chat: mem, store: st, host: host, db: o.dbPath, others: others}
	var stopped bool
	tb.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bot run: %v", err)
		}
		host.Stop()
		st.Close()
	}
	t.Cleanup(tb.stop)
	return tb
}

// say injects a message from alice in room general.
func (tb *testBot) say(text string) chat.MessageRef {
	return tb.sayAs("alice", "general", text)
}

func (tb *testBot) sayAs(user, room, text string) chat.MessageRef {
	return tb.chat.Inject(chat.Message{Ref: chat.MessageRef{Room: room}, User: chat.User{ID: user, Name: user}, Text: text})
}

// next returns the next message the bot sent or edited.
func (tb *testBot) next() chattest.Sent {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := tb.chat.Next(ctx)
	if err != nil {
		tb.t.Fatal(err)
	}
	return s
}

// expect waits for the next message and checks it contains want.
func (tb *testBot) expect(want string) chattest.Sent {
	tb.t.Helper()
	s := tb.next()
	if !strings.Contains(s.Out.PlainText(), want) {
		tb.t.Fatalf("bot said %q, want it to contain %q", s.Out.PlainText(), want)
	}
	return s
}

// expectAll waits for len(wants) messages, in any order (a command's reply
// and its job's first progress race), and returns them by want.
func (tb *testBot) expectAll(wants ...string) map[string]chattest.Sent {
	tb.t.Helper()
	got := map[string]chattest.Sent{}
	var said []string
	for range wants {
		s := tb.next()
		said = append(said, s.Out.PlainText())
		for _, w := range wants {
			if _, seen := got[w]; !seen && strings.Contains(s.Out.PlainText(), w) {
				got[w] = s
				break
			}
		}
	}
	if len(got) != len(wants) {
		tb.t.Fatalf("bot said %q, want messages containing %q", said, wants)
	}
	return got
}

func TestBotAnswersAddressedCommandsFromPluginProcesses(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"examples/hello"}})
	cases := []struct{ name, text, want string }{
		{"by name", "chima hello world", "Hello, world!"},
		{"by mention", "@chima hello QA", "Hello, QA!"},
		{"by prefix", "!hello PMs", "Hello, PMs!"},
		{"help lists plugin commands", "chima help", "hello <name>"},
		{"help on one command", "chima help hello", "Greets someone by name"},
		{"unknown command gets a suggestion and usage", "chima helo world", `Did you mean "hello"?`},
		{"missing argument gets usage", "chima hello", "Usage: hello <name>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb.t = t
			tb.say(c.text)
			s := tb.expect(c.want)
			if s.Ref.Room != "general" {
				t.Errorf("reply went to %q", s.Ref.Room)
			}
		})
	}
}

func TestBotIgnoresMessagesNotAddressedToIt(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"examples/hello"}})
	tb.say("hello world, chima")
	tb.say("chima hello marker")
	tb.expect("Hello, marker!") // the first message caused nothing before it
}

func TestBotRepliesInTheThreadTheCommandCameFrom(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"examples/hello"}})
	tb.chat.Inject(chat.Message{Ref: chat.MessageRef{Room: "general", ThreadID: "t1"}, User: chat.User{ID: "alice"}, Text: "chima hello thread"})
	s := tb.expect("Hello, thread!")
	if s.Ref.ThreadID != "t1" {
		t.Fatalf("reply thread = %q, want t1", s.Ref.ThreadID)
	}
}

func TestBotAnswersARoomMessageInAThreadUnderItWhereTheServiceDoes(t *testing.T) {
	cases := []struct {
		name          string
		threadReplies bool
		msg           chat.Message
		wantThread    string // "" the room; "self" the message's own id
	}{
		{"a room message starts a thread under it", true, chat.Message{Ref: chat.MessageRef{Room: "general"}}, "self"},
		{"a message in a thread is answered in that thread", true, chat.Message{Ref: chat.MessageRef{Room: "general", ThreadID: "t1"}}, "t1"},
		{"a direct message is answered in place", true, chat.Message{Ref: chat.MessageRef{Room: chattest.DirectRoom("alice")}, Direct: true}, ""},
		{"without thread replies a room message is answered in the room", false, chat.Message{Ref: chat.MessageRef{Room: "general"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := startBot(t, botOptions{plugins: []string{"examples/hello"}, threadReplies: c.threadReplies})
			m := c.msg
			m.User, m.Text = chat.User{ID: "alice", Name: "alice"}, "chima hello thread"
			ref := tb.chat.Inject(m)
			want := c.wantThread
			if want == "self" {
				want = ref.MessageID
			}
			s := tb.expect("Hello, thread!")
			if s.Ref.Room != m.Ref.Room || s.Ref.ThreadID != want {
				t.Fatalf("reply went to %s/%s, want %s/%s", s.Ref.Room, s.Ref.ThreadID, m.Ref.Room, want)
			}
		})
	}
}

func TestPolicyRefusesWithReasonAndAuditsIt(t *testing.T) {
	tb := startBot(t, botOptions{
		plugins: []string{"crashy"},
		roles:   map[string]config.Role{"admin": {Users: []string{"mem:alice"}, Permissions: []string{"*"}}},
		policies: []config.Policy{
			{Command: "echo", AllowedRooms: []string{"ops"}},
		},
	})
	tb.sayAs("alice", "general", "chima echo hi")
	tb.expect("Sorry,")
	tb.sayAs("alice", "ops", "chima echo hi")
	tb.expect("hi")
	tb.sayAs("bob", "general", "chima admin")
	tb.expect("admin:do")
	tb.sayAs("alice", "general", "chima admin")
	tb.expect("admin done")

	tb.stop() // flushes the audit log
	st, err := store.Open(context.Background(), "sqlite", tb.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.Audit(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	// In the order the requests came (their ids count up): an allowed
	// command's row is written before a denied one queued earlier in the
	// same millisecond, so the log's ids need not say it.
	slices.SortFunc(entries, func(a, b store.AuditEntry) int { return cmp.Compare(reqSeq(a.RequestID), reqSeq(b.RequestID)) })
	var outcomes []string
	for _, e := range entries {
		outcomes = append(outcomes, e.UserID+"@"+e.Room+":"+e.Command+"="+e.Outcome)
		if e.Plugin != "crashy" || e.RequestID == "" || e.Adapter != "mem" {
			t.Errorf("audit entry lacks context: %+v", e)
		}
	}
	want := "alice@general:echo=denied alice@ops:echo=ok bob@general:admin=denied alice@general:admin=ok"
	if got := strings.Join(outcomes, " "); got != want {
		t.Fatalf("audit = %s\nwant    %s", got, want)
	}
}

func TestSecretArgumentsNeverReachTheAuditLog(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	tb.say("chima secret s3cr3t-t0ken")
	tb.expect("got a token of 12 bytes")
	tb.stop()
	st, err := store.Open(context.Background(), "sqlite", tb.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, _ := st.Audit(context.Background(), 1)
	if len(entries) != 1 || strings.Contains(entries[0].Text, "s3cr3t") {
		t.Fatalf("audit = %+v", entries)
	}
}

func TestPluginCrashMidCommandIsReportedAndNextCommandWorks(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	tb.say("chima exit")
	tb.expect("about to exit")
	tb.expect("The crashy plugin crashed while handling `exit`; it was restarted")
	tb.say("chima echo back again")
	tb.expect("back again")
}

func TestCommandThatRunsTooLongTimesOut(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, timeout: 300 * time.Millisecond})
	tb.say("chima sleep 1h")
	tb.expect("`sleep 1h` timed out after 300ms")
	tb.say("chima echo still serving")
	tb.expect("still serving")
}

func TestOversizedMessageIsRefused(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	tb.say("chima echo " + strings.Repeat("x", 5000))
	tb.expect("too long")
}

func TestJobsEnqueuedByACommandRunAndReportToItsThread(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	ref := tb.say("chima job first")
	progress := tb.expectAll("queued job 1", "working on first", "job said first")["working on first"]
	if progress.Ref.ThreadID != ref.MessageID {
		t.Errorf("progress thread = %q, want the command's message %q", progress.Ref.ThreadID, ref.MessageID)
	}
	tb.say("chima job fail")
	tb.expectAll("queued job 2", "working on fail")
	j := waitJob(t, tb.store, 2)
	if j.State != store.JobFailed || !strings.Contains(j.Detail, "failed on purpose") {
		t.Fatalf("job 2 = %s %q", j.State, j.Detail)
	}
}

func waitJob(t *testing.T, st *store.Store, id int64) store.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := st.GetJob(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State.Terminal() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d still %s", id, j.State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProcessAndWaitJobsSeeEveryReplyOfACommandAndItsJobs(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, ok := tb.bot.Process(ctx, chat.Message{Ref: chat.MessageRef{Adapter: "mem", Room: "general", MessageID: "x1"}, User: chat.User{ID: "alice"}, Text: "chima job waited"})
	if !ok || res.Outcome != "ok" {
		t.Fatalf("process = %+v %v", res, ok)
	}
	if err := tb.bot.WaitJobs(ctx, res.RequestID); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, s := range tb.chat.Sent() {
		texts = append(texts, s.Out.PlainText())
	}
	got := strings.Join(texts, "|")
	for _, want := range []string{"queued job 1", "working on waited", "job said waited"} {
		if !strings.Contains(got, want) {
			t.Fatalf("when WaitJobs returned the bot had sent %q, without %q", got, want)
		}
	}
}

func TestJobRunningWhenTheProcessDiedIsMarkedInterruptedAndRoomTold(t *testing.T) {
	ctx := context.Background()
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, before: func(st *store.Store) {
		// What a killed process leaves behind: a running job holding a lock.
		id, err := st.EnqueueJob(ctx, store.Job{Plugin: "crashy", Kind: "say", Payload: []byte("x"),
			QueueKey: "crashy/q", Notify: chat.MessageRef{Adapter: "mem", Room: "deployment", ThreadID: "t9"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.ClaimJob(ctx, "dead-worker", time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := st.AcquireLock(ctx, store.Lock{Name: "crashy/env", Owner: "alice", JobID: id, AcquiredAt: time.Now()}); err != nil || !ok {
			t.Fatalf("lock: %v %v", ok, err)
		}
	}})
	s := tb.expect("was interrupted by restart")
	if s.Ref.Room != "deployment" || s.Ref.ThreadID != "t9" {
		t.Errorf("told %s/%s, want deployment/t9", s.Ref.Room, s.Ref.ThreadID)
	}
	j, err := tb.store.GetJob(ctx, 1)
	if err != nil || j.State != store.JobInterrupted {
		t.Fatalf("job = %+v %v", j, err)
	}
	locks, err := tb.store.Locks(ctx, "crashy/")
	if err != nil || len(locks) != 0 {
		t.Fatalf("locks after restart = %v %v", locks, err)
	}
	// Nothing was re-run behind anyone's back.
	if n := len(tb.chat.Sent()); n != 1 {
		t.Fatalf("bot sent %d messages, want only the notice", n)
	}
}

func TestCancellingARunningJobStopsIt(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	tb.say("chima job hang")
	tb.expectAll("queued job 1", "working on hang")
	// A second job waits behind the first in the same queue.
	tb.say("chima job second")
	tb.expect("queued job 2")
	if ok, err := tb.bot.Jobs().Cancel(context.Background(), 2); err != nil || !ok {
		t.Fatalf("cancel queued: %v %v", ok, err)
	}
	// The plugin never ran it, so the core says so.
	tb.expect(`The job saying "second" was cancelled`)
	if ok, err := tb.bot.Jobs().Cancel(context.Background(), 1); err != nil || !ok {
		t.Fatalf("cancel running: %v %v", ok, err)
	}
	if j := waitJob(t, tb.store, 1); j.State != store.JobCancelled {
		t.Fatalf("job 1 state = %s", j.State)
	}
	if j := waitJob(t, tb.store, 2); j.State != store.JobCancelled || !j.StartedAt.IsZero() {
		t.Fatalf("job 2 = %s, started %v", j.State, j.StartedAt)
	}
}

// syncBuffer is a bytes.Buffer that a logger and a test may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A plugin that breaks under a command says so in chat and in the bot's log,
// where an operator looks for a plugin that keeps breaking.
func TestPluginFailingUnderACommandIsLoggedAsWellAsToldInChat(t *testing.T) {
	var log syncBuffer
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, logger: slog.New(slog.NewTextHandler(&log, nil))})
	tb.say("chima panic")
	tb.expect("The crashy plugin failed while handling `panic`: panic: on purpose")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), `msg="plugin command failed" plugin=crashy command=panic`) {
		if time.Now().After(deadline) {
			t.Fatalf("the bot's log does not say the plugin failed:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reqSeq is the sequence number that ends a request id.
func reqSeq(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	return n
}

// A reply that its room's rate limit holds back does not hold its command:
// with room for one command at a time, a command in another room is
// answered while the first room waits out its Retry-After, and the held
// reply still goes out after it.
func TestARateLimitedReplyHoldsUpNoOtherCommand(t *testing.T) {
	m := bot.NewMetrics()
	tb := startBot(t, botOptions{concurrency: 1, metrics: m})
	tb.chat.LimitNext(2 * time.Second) // the busy room's reply
	tb.sayAs("alice", "busy", "chima help")
	// The busy room's reply was refused before the next command comes.
	deadline := time.Now().Add(10 * time.Second)
	for outboxRetries(t, m) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the busy room's reply never reached the service")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tb.sayAs("bob", "calm", "chima help")
	if s := tb.next(); s.Ref.Room != "calm" {
		t.Fatalf("the first reply went to %s (%q): the calm room's command waited for the busy room's rate limit", s.Ref.Room, s.Out.PlainText())
	}
	if s := tb.next(); s.Ref.Room != "busy" {
		t.Fatalf("then %s, want the busy room's held reply", s.Ref.Room)
	}
}

// outboxRetries is the bot's chima_outbox_retries_total, summed.
func outboxRetries(t *testing.T, m *bot.Metrics) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "chima_outbox_retries_total" {
			for _, x := range mf.GetMetric() {
				sum += x.GetCounter().GetValue()
			}
		}
	}
	return sum
}
