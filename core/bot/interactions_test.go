package bot_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/core/bot"
	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/policy"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// recordingPlugins is bot.Plugins with one plugin, "ops", that records
// every call it gets and answers each with a reply saying what it got.
type recordingPlugins struct {
	manifest *pluginv1.Manifest
	mu       sync.Mutex
	calls    []*pluginv1.Call
}

func (p *recordingPlugins) Call(_ context.Context, plugin string, call *pluginv1.Call, fn func(*pluginv1.Event)) error {
	if plugin != "ops" {
		return pluginhost.ErrUnknownPlugin
	}
	p.mu.Lock()
	p.calls = append(p.calls, call)
	p.mu.Unlock()
	text := "command " + call.GetCommand().GetCommand()
	if in := call.GetInteraction(); in != nil {
		text = "action " + in.GetAction() + " " + in.GetValue()
	}
	out := &pluginv1.Output{Text: text}
	if call.GetCommand().GetCommand() == "who" {
		// One button that works and one the core must leave out.
		out.Buttons = []*pluginv1.Button{{Label: "Poke", Action: "poke", Value: "2"}, {Label: "Bad", Action: "undeclared"}}
	}
	fn(&pluginv1.Event{Kind: &pluginv1.Event_Reply{Reply: &pluginv1.Reply{Output: out}}})
	fn(&pluginv1.Event{Kind: &pluginv1.Event_Done{Done: &pluginv1.Done{}}})
	return nil
}

func (p *recordingPlugins) State(plugin string) pluginhost.State {
	if plugin == "ops" {
		return pluginhost.StateRunning
	}
	return ""
}

func (p *recordingPlugins) PluginStatus(plugin string) (pluginhost.Status, bool) {
	return pluginhost.Status{Name: plugin, State: p.State(plugin)}, plugin == "ops"
}

func (p *recordingPlugins) Manifest(plugin string) *pluginv1.Manifest {
	if plugin == "ops" {
		return p.manifest
	}
	return nil
}

func (p *recordingPlugins) Plugins() []string { return []string{"ops"} }

func (p *recordingPlugins) HTTP(context.Context, string, *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	return nil, errors.New("no pages")
}

func (p *recordingPlugins) taken() []*pluginv1.Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*pluginv1.Call(nil), p.calls...)
}

// opsManifest has a command that needs a permission, one anyone may run,
// an action that stands for the first and one of its own.
func opsManifest() *pluginv1.Manifest {
	return &pluginv1.Manifest{
		Name: "ops",
		Commands: []*pluginv1.CommandSpec{
			{Name: "stop", Usage: "stop <id>", Args: []*pluginv1.ArgSpec{{Name: "id", Type: pluginv1.ArgType_ARG_TYPE_INT, Required: true}}, Permission: "ops"},
			{Name: "who"},
		},
		Actions: []*pluginv1.ActionSpec{
			{Name: "cancel", Command: "stop"},
			{Name: "poke"},
		},
	}
}

type clickBot struct {
	t       *testing.T
	bot     *bot.Bot
	chat    *chattest.Memory
	plugins *recordingPlugins
	store   *store.Store
	stop    func()
}

// newClickBot builds a bot on Memory (buttons on) and recordingPlugins,
// with mem:alice holding the ops permission. adapter, when set, wraps the
// Memory adapter to hide capabilities.
func newClickBot(t *testing.T, policies []config.Policy, adapter func(*chattest.Memory) chat.Adapter) *clickBot {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "chima.db"))
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New(router.Options{Name: "chima", Prefix: "!", MaxMessageBytes: 4000})
	plugins := &recordingPlugins{manifest: opsManifest()}
	if err := rt.SetPlugin("ops", plugins.manifest); err != nil {
		t.Fatal(err)
	}
	mem := chattest.NewMemory("mem")
	mem.SetButtons(true)
	var a chat.Adapter = mem
	if adapter != nil {
		a = adapter(mem)
	}
	roles := map[string]config.Role{"operator": {Users: []string{"mem:alice"}, Permissions: []string{"ops"}}}
	b := bot.New(bot.Options{
		Router: rt, Policy: policy.New(roles, policies), Plugins: plugins, Store: st,
		Adapters: []chat.Adapter{a},
	})
	stopJobs := b.StartJobs(context.Background())
	cb := &clickBot{t: t, bot: b, chat: mem, plugins: plugins, store: st}
	var once sync.Once
	cb.stop = func() { once.Do(func() { stopJobs(); st.Close() }) }
	t.Cleanup(cb.stop)
	return cb
}

// post has the ops plugin post out to room general and returns the
// message as the adapter got it.
func (cb *clickBot) post(out *pluginv1.Output) chattest.Sent {
	cb.t.Helper()
	resp, err := cb.bot.HostService("ops").Post(context.Background(), &pluginv1.PostRequest{
		Target: &pluginv1.MessageRef{Adapter: "mem", Room: "general"}, Output: out,
	})
	if err != nil {
		cb.t.Fatalf("post: %v", err)
	}
	for _, s := range cb.chat.Sent() {
		if s.Ref.MessageID == resp.GetMessage().GetMessageId() {
			return s
		}
	}
	cb.t.Fatalf("posted message %v not sent", resp.GetMessage())
	return chattest.Sent{}
}

// click clicks the button labelled label of s as user.
func (cb *clickBot) click(s chattest.Sent, label, user string) bot.Result {
	cb.t.Helper()
	for _, b := range s.Out.Buttons {
		if b.Label == label {
			return cb.bot.ProcessInteraction(context.Background(), chat.Interaction{
				Ref: s.Ref, User: chat.User{ID: user, Name: user}, ActionID: b.ActionID, Value: b.Value, Time: clickTime,
			})
		}
	}
	cb.t.Fatalf("no button %q in %+v", label, s.Out.Buttons)
	return bot.Result{}
}

var clickTime = time.Unix(1700000000, 0)

func TestCommandButtonClickRunsTheCommandAsTheClickerMarkedAsAClick(t *testing.T) {
	cb := newClickBot(t, nil, nil)
	msg := cb.post(&pluginv1.Output{Text: "job 5 runs", Buttons: []*pluginv1.Button{{Label: "Stop", Command: "stop 5", Style: "danger"}}})
	if got := msg.Out.Buttons[0]; got.ActionID != bot.ActionIDCommand || got.Value != "stop 5" {
		t.Fatalf("adapter got button %+v, want action id %q and the command as value", got, bot.ActionIDCommand)
	}
	res := cb.click(msg, "Stop", "alice")
	if res.Outcome != "ok" {
		t.Fatalf("outcome = %q, want ok", res.Outcome)
	}
	calls := cb.plugins.taken()
	if len(calls) != 1 {
		t.Fatalf("plugin got %d calls, want 1", len(calls))
	}
	req := calls[0].GetCommand()
	tests := []struct {
		name      string
		got, want string
	}{
		{"command", req.GetCommand(), "stop"},
		{"argument", req.GetArgs()["id"], "5"},
		{"user is the clicker", req.GetUser().GetId(), "alice"},
		{"roles are the clicker's", strings.Join(req.GetUser().GetRoles(), ","), "operator"},
		{"message is the clicked one", req.GetMessage().GetMessageId(), msg.Ref.MessageID},
		{"click names the clicked message", req.GetButton().GetMessage().GetMessageId(), msg.Ref.MessageID},
		{"click time", time.Unix(req.GetButton().GetClickedUnix(), 0).UTC().String(), clickTime.UTC().String()},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	reply := waitSent(t, cb.chat, "command stop")
	if reply.Ref.Room != "general" || reply.Ref.ThreadID != "" {
		t.Errorf("reply went to %v, want the clicked message's room", reply.Ref)
	}
	e := waitAudit(t, cb.store, res.RequestID)
	if e.Via != "button "+msg.Ref.String() || e.UserID != "alice" || e.Command != "stop" || e.Plugin != "ops" {
		t.Errorf("audit entry = %+v, want a click by alice on %s running ops/stop", e, msg.Ref)
	}
}

func TestTypedCommandIsNeverMarkedAsAClick(t *testing.T) {
	cb := newClickBot(t, nil, nil)
	for _, text := range []string{"chima stop 5", "!stop 5"} {
		res, handled := cb.bot.Process(context.Background(), chat.Message{
			Ref: chat.MessageRef{Adapter: "mem", Room: "general", MessageID: "m1"}, User: chat.User{ID: "alice"}, Text: text,
		})
		if !handled || res.Outcome != "ok" {
			t.Fatalf("%q: handled %v outcome %q", text, handled, res.Outcome)
		}
		if e := waitAudit(t, cb.store, res.RequestID); e.Via != "" {
			t.Errorf("%q audited with via %q, want none", text, e.Via)
		}
	}
	for _, c := range cb.plugins.taken() {
		if c.GetCommand().GetButton() != nil {
			t.Errorf("typed command reached the plugin as a click: %v", c.GetCommand())
		}
	}
}

func TestPluginActionReachesThePluginWithActionValueUserAndMessage(t *testing.T) {
	cb := newClickBot(t, nil, nil)
	msg := cb.post(&pluginv1.Output{Text: "job 7 runs", Buttons: []*pluginv1.Button{{Label: "Cancel", Action: "cancel", Value: "job-7"}}})
	if got := msg.Out.Buttons[0]; got.ActionID != "chima.act:ops:cancel" || got.Value != "job-7" {
		t.Fatalf("adapter got button %+v", got)
	}
	res := cb.click(msg, "Cancel", "alice")
	if res.Outcome != "ok" {
		t.Fatalf("outcome = %q, want ok", res.Outcome)
	}
	calls := cb.plugins.taken()
	if len(calls) != 1 || calls[0].GetInteraction() == nil {
		t.Fatalf("plugin got %v, want one interaction", calls)
	}
	in := calls[0].GetInteraction()
	tests := []struct {
		name      string
		got, want string
	}{
		{"action", in.GetAction(), "cancel"},
		{"value", in.GetValue(), "job-7"},
		{"user", in.GetUser().GetId(), "alice"},
		{"roles", strings.Join(in.GetUser().GetRoles(), ","), "operator"},
		{"message", in.GetMessage().GetMessageId(), msg.Ref.MessageID},
		{"room", in.GetMessage().GetRoom(), "general"},
		{"request id", in.GetRequestId(), res.RequestID},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	waitSent(t, cb.chat, "action cancel job-7")
	e := waitAudit(t, cb.store, res.RequestID)
	if e.Via != "action "+msg.Ref.String() || e.Plugin != "ops" || e.Command != "cancel" || e.Text != "job-7" || e.Outcome != "ok" {
		t.Errorf("audit entry = %+v", e)
	}
}

func TestForgedOrUnknownButtonRunsNothingAndSaysSo(t *testing.T) {
	tests := []struct {
		name            string
		actionID, value string
	}{
		{"an action id the core never makes", "approve", "yes"},
		{"no action id", "", ""},
		{"a plugin action without its action", "chima.act:ops", "x"},
		{"an action its plugin does not declare", "chima.act:ops:drop-tables", "x"},
		{"a plugin that does not exist", "chima.act:nosuch:cancel", "x"},
		{"an empty command", bot.ActionIDCommand, "  "},
	}
	for _, hideEphemeral := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.name
			if hideEphemeral {
				name += " without ephemeral messages"
			}
			t.Run(name, func(t *testing.T) {
				var wrap func(*chattest.Memory) chat.Adapter
				if hideEphemeral {
					wrap = func(m *chattest.Memory) chat.Adapter { return plainAdapter{m} }
				}
				cb := newClickBot(t, nil, wrap)
				res := cb.bot.ProcessInteraction(context.Background(), chat.Interaction{
					Ref: chat.MessageRef{Adapter: "mem", Room: "general", MessageID: "b9"}, User: chat.User{ID: "bob"},
					ActionID: tt.actionID, Value: tt.value,
				})
				if res.Outcome != "rejected" {
					t.Errorf("outcome = %q, want rejected", res.Outcome)
				}
				if calls := cb.plugins.taken(); len(calls) != 0 {
					t.Errorf("plugin got %v, want nothing", calls)
				}
				s := waitSent(t, cb.chat, "That button no longer works")
				if !hideEphemeral && s.EphemeralTo != "bob" {
					t.Errorf("answer %+v, want it shown to bob alone", s)
				}
				if hideEphemeral && s.EphemeralTo != "" {
					t.Errorf("answer %+v, want a plain reply", s)
				}
				if e := waitAudit(t, cb.store, res.RequestID); e.Outcome != "rejected" || !strings.HasSuffix(e.Via, " mem:general#b9") {
					t.Errorf("audit entry = %+v, want a rejected click", e)
				}
			})
		}
	}
}

// plainAdapter shows only chat.Adapter of what it wraps: no ephemeral
// messages, threads or buttons.
type plainAdapter struct{ chat.Adapter }

func TestClickThePolicyRefusesRunsNothing(t *testing.T) {
	onlyOpsRoom := []config.Policy{{Command: "stop", AllowedRooms: []string{"ops-room"}}}
	tests := []struct {
		name     string
		policies []config.Policy
		button   *pluginv1.Button
		user     string
		reason   string
	}{
		{"a command button without the permission", nil, &pluginv1.Button{Label: "B", Command: "stop 5"}, "bob", "you need the ops permission"},
		{"an action standing for a command, without its permission", nil, &pluginv1.Button{Label: "B", Action: "cancel", Value: "5"}, "bob", "you need the ops permission"},
		{"a command button outside the command's rooms", onlyOpsRoom, &pluginv1.Button{Label: "B", Command: "stop 5"}, "alice", "stop is only allowed in #ops-room"},
		{"an action outside its command's rooms", onlyOpsRoom, &pluginv1.Button{Label: "B", Action: "cancel", Value: "5"}, "alice", "stop is only allowed in #ops-room"},
		{"an action of its own outside the rooms of every command", []config.Policy{{Command: "*", AllowedRooms: []string{"ops-room"}}},
			&pluginv1.Button{Label: "B", Action: "poke"}, "alice", "poke is only allowed in #ops-room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb := newClickBot(t, tt.policies, nil)
			msg := cb.post(&pluginv1.Output{Text: "x", Buttons: []*pluginv1.Button{tt.button}})
			res := cb.click(msg, "B", tt.user)
			if res.Outcome != "denied" {
				t.Errorf("outcome = %q, want denied", res.Outcome)
			}
			if calls := cb.plugins.taken(); len(calls) != 0 {
				t.Errorf("plugin got %v, want nothing", calls)
			}
			s := waitSent(t, cb.chat, tt.reason)
			if s.EphemeralTo != tt.user {
				t.Errorf("refusal %+v, want it shown to %s alone", s, tt.user)
			}
			if e := waitAudit(t, cb.store, res.RequestID); e.Outcome != "denied" || e.Via == "" {
				t.Errorf("audit entry = %+v, want a denied click", e)
			}
		})
	}
}

func TestPostRefusesButtonsThatCannotWork(t *testing.T) {
	tests := []struct {
		name   string
		button *pluginv1.Button
		want   string
	}{
		{"an undeclared action", &pluginv1.Button{Label: "X", Action: "drop"}, `declares no action "drop"`},
		{"an oversized value", &pluginv1.Button{Label: "X", Action: "poke", Value: strings.Repeat("v", 2001)}, "at most 2000"},
		{"neither", &pluginv1.Button{Label: "X"}, "needs a command or an action"},
		{"a value on a command button", &pluginv1.Button{Label: "X", Command: "who", Value: "v"}, "a value is for action buttons"},
		{"an action name with spaces", &pluginv1.Button{Label: "X", Action: "po ke"}, "letters, digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb := newClickBot(t, nil, nil)
			_, err := cb.bot.HostService("ops").Post(context.Background(), &pluginv1.PostRequest{
				Target: &pluginv1.MessageRef{Adapter: "mem", Room: "general"},
				Output: &pluginv1.Output{Text: "x", Buttons: []*pluginv1.Button{tt.button}},
			})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("post error = %v, want InvalidArgument saying %q", err, tt.want)
			}
			if n := len(cb.chat.Sent()); n != 0 {
				t.Errorf("%d messages sent, want none", n)
			}
		})
	}
}

func TestClickThroughTheAdapterTakesItsTurnAndReachesThePlugin(t *testing.T) {
	cb := newClickBot(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cb.bot.Run(ctx) }()
	defer func() { cancel(); <-done }()
	msg := cb.post(&pluginv1.Output{Text: "x", Buttons: []*pluginv1.Button{{Label: "Poke", Action: "poke", Value: "1"}}})
	// A typed command and a click of one person in one room, in order.
	cb.chat.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice"}, Text: "chima who"})
	cb.chat.Click(chat.Interaction{Ref: msg.Ref, User: chat.User{ID: "alice"}, ActionID: msg.Out.Buttons[0].ActionID, Value: "1"})
	waitSent(t, cb.chat, "command who")
	waitSent(t, cb.chat, "action poke 1")
	calls := cb.plugins.taken()
	if len(calls) != 2 || calls[0].GetCommand().GetCommand() != "who" || calls[1].GetInteraction().GetAction() != "poke" {
		t.Errorf("plugin got %v, want the command then the click", calls)
	}
}

func TestStreamedReplyKeepsTheButtonsThatWorkAndLeavesOutTheRest(t *testing.T) {
	cb := newClickBot(t, nil, nil)
	if res, _ := cb.bot.Process(context.Background(), chat.Message{
		Ref: chat.MessageRef{Adapter: "mem", Room: "general", MessageID: "m1"}, User: chat.User{ID: "alice"}, Text: "chima who",
	}); res.Outcome != "ok" {
		t.Fatalf("outcome = %q", res.Outcome)
	}
	s := waitSent(t, cb.chat, "command who")
	if len(s.Out.Buttons) != 1 || s.Out.Buttons[0].ActionID != "chima.act:ops:poke" || s.Out.Buttons[0].Value != "2" {
		t.Errorf("buttons = %+v, want only Poke, encoded", s.Out.Buttons)
	}
}

// waitSent waits for a message containing want among everything sent.
func waitSent(t *testing.T, m *chattest.Memory, want string) chattest.Sent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range m.Sent() {
			if strings.Contains(s.Out.PlainText(), want) {
				return s
			}
		}
		if time.Now().After(deadline) {
			var said []string
			for _, s := range m.Sent() {
				said = append(said, s.Out.PlainText())
			}
			t.Fatalf("nothing sent contains %q; sent %q", want, said)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAudit waits for the audit entry of request id (the writer batches).
func waitAudit(t *testing.T, st *store.Store, id string) store.AuditEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := st.Audit(context.Background(), 200)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			// A decision still running is not how the request ended.
			if e.RequestID == id && e.Outcome != store.OutcomeRunning {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit entry for request %s with its outcome", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAnActionButtonsCommandIsWhatToTypeWhereButtonsCannotShow: beside an
// action, a command is the typed alternative. A service with buttons gets
// the action to click; one without shows the command to type, not a bare
// label nobody can act on.
func TestAnActionButtonsCommandIsWhatToTypeWhereButtonsCannotShow(t *testing.T) {
	for _, buttons := range []bool{true, false} {
		cb := newClickBot(t, nil, func(m *chattest.Memory) chat.Adapter { m.SetButtons(buttons); return m })
		_, err := cb.bot.HostService("ops").Post(context.Background(), &pluginv1.PostRequest{
			Target: &pluginv1.MessageRef{Adapter: "mem", Room: "general"},
			Output: &pluginv1.Output{Text: "Deploying…", Buttons: []*pluginv1.Button{{Label: "Stop", Action: "poke", Value: "7", Command: "who 7"}}},
		})
		if err != nil {
			t.Fatalf("buttons %v: post: %v", buttons, err)
		}
		sent := cb.chat.Sent()
		if len(sent) != 1 {
			t.Fatalf("buttons %v: %d messages sent, want 1", buttons, len(sent))
		}
		out := sent[0].Out
		if buttons {
			if len(out.Buttons) != 1 || out.Buttons[0].ActionID != bot.ActionIDPluginPrefix+"ops:poke" || out.Buttons[0].Value != "7" {
				t.Errorf("with buttons: %+v, want the action poke with value 7", out.Buttons)
			}
			continue
		}
		if len(out.Buttons) != 0 || !strings.Contains(out.Text, "[Stop] type: who 7") {
			t.Errorf("without buttons: text %q, buttons %+v; want the command to type", out.Text, out.Buttons)
		}
	}
}
