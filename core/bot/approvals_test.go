package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/store"
)

// Approvals, against real plugin processes and the real store: alice asks
// on "mem", bob approves from "mem" or from "other" (another adapter, one
// person), carol may run commands but approve none.
var (
	approvalPeople = map[string][]string{
		"alice": {"mem:alice", "other:UALICE"},
		"bob":   {"mem:bob", "other:UBOB"},
		"dave":  {"mem:dave"},
	}
	approvalRoles = map[string]config.Role{
		"release-managers": {People: []string{"bob", "dave"}},
	}
)

// approvalPolicy makes `hello production` wait for one release manager.
func approvalPolicy(ttl time.Duration) []config.Policy {
	return []config.Policy{{Command: "hello", When: map[string][]string{"name": {"production"}},
		Approval: &config.ApprovalRule{Approvers: []string{"release-managers"}, Count: 1, TTL: ttl}}}
}

func approvalBot(t *testing.T, o botOptions) *testBot {
	t.Helper()
	o.people, o.roles, o.adapters = approvalPeople, approvalRoles, []string{"other"}
	if o.policies == nil {
		o.policies = approvalPolicy(30 * time.Minute)
	}
	if o.plugins == nil {
		o.plugins = []string{"examples/hello", "crashy"}
	}
	return startBot(t, o)
}

// sentTo waits until m has sent something containing want, in any room,
// and returns it (a failure guard of 10s applies; it asserts no duration).
func sentTo(t *testing.T, m *chattest.Memory, want string) chattest.Sent {
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
				said = append(said, s.Ref.Room+": "+s.Out.PlainText())
			}
			t.Fatalf("%s sent nothing containing %q; it sent:\n%s", m.Name(), want, strings.Join(said, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// count is how many messages m sent that contain want.
func count(m *chattest.Memory, want string) int {
	n := 0
	for _, s := range m.Sent() {
		if strings.Contains(s.Out.PlainText(), want) {
			n++
		}
	}
	return n
}

func (tb *testBot) sayOn(adapter, user, room, text string) {
	m := tb.chat
	if adapter != "mem" {
		m = tb.others[adapter]
	}
	m.Inject(chat.Message{Ref: chat.MessageRef{Room: room}, User: chat.User{ID: user, Name: user}, Text: text})
}

// waitAuditWhere waits for an audit entry matching f whose outcome is in.
func waitAuditWhere(t *testing.T, st *store.Store, f store.AuditFilter, ok func(store.AuditEntry) bool) store.AuditEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := st.AuditWhere(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			if ok(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit entry like %+v; entries: %+v", f, list)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAnApprovalFromAnotherAdapterRunsTheCommandOnceAsTheRequester(t *testing.T) {
	tb := approvalBot(t, botOptions{})
	tb.chat.AddRoom(chat.Room{ID: "general", Name: "general"})
	tb.chat.AddUser(chat.User{ID: "bob", Name: "bob"})
	tb.say("chima hello staging")
	sentTo(t, tb.chat, "Hello, staging!") // no rule applies: it runs at once
	tb.say("chima hello production")
	// The room's ask and the approvers' direct messages go out through
	// queues of their own: which comes first is not promised.
	ask := waitRoom(t, tb.chat, "general", "Approval needed (request 1)")
	if ask.Ref.Room != "general" || !strings.Contains(ask.Out.PlainText(), "[Approve] type: chima approve 1") || !strings.Contains(ask.Out.PlainText(), "[Deny] type: chima deny 1 <reason>") {
		t.Errorf("the ask in %s = %q; want it in general, with Approve/Deny as the text to type", ask.Ref.Room, ask.Out.PlainText())
	}
	// bob is asked in a direct message on the adapter that has him.
	waitRoom(t, tb.chat, chattest.DirectRoom("bob"), "Approval needed (request 1)")
	if n := count(tb.chat, "Hello, production!"); n != 0 {
		t.Fatalf("the command ran before approval (%d times)", n)
	}

	tb.sayOn("other", "UBOB", "ops", "chima approve 1")
	sentTo(t, tb.others["other"], "Noted: you approved request 1")
	sentTo(t, tb.chat, "bob approved request 1; running `hello production` for alice")
	ran := sentTo(t, tb.chat, "Hello, production!")
	if ran.Ref.Room != "general" {
		t.Errorf("the approved command answered in %s, want the request's room general", ran.Ref.Room)
	}
	run := waitAuditWhere(t, tb.store, store.AuditFilter{Command: "hello"}, func(e store.AuditEntry) bool {
		return strings.HasPrefix(e.Via, "approval 1:") && e.Outcome == "ok"
	})
	if run.UserID != "alice" || run.Adapter != "mem" || !strings.Contains(run.Via, "asked by alice at ") || !strings.Contains(run.Via, "approved by bob at ") {
		t.Errorf("the run's audit entry = %+v; want it as alice, with requester and approver and their times", run)
	}
	waitAuditWhere(t, tb.store, store.AuditFilter{Command: "hello"}, func(e store.AuditEntry) bool {
		return e.Outcome == "approval" && strings.HasPrefix(e.Detail, "approval 1 requested")
	})
	waitAuditWhere(t, tb.store, store.AuditFilter{Command: "approve"}, func(e store.AuditEntry) bool {
		return e.Adapter == "other" && e.Detail == "approval 1: approved by bob"
	})
	// A second approval finds it closed, and nothing runs again.
	tb.sayOn("mem", "dave", "general", "chima approve 1")
	sentTo(t, tb.chat, "It is no longer open: it was approved and has run.")
	if n := count(tb.chat, "Hello, production!"); n != 1 {
		t.Errorf("the command ran %d times, want once", n)
	}
}

// waitRoom waits for a message to room containing want.
func waitRoom(t *testing.T, m *chattest.Memory, room, want string) chattest.Sent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range m.Sent() {
			if s.Ref.Room == room && strings.Contains(s.Out.PlainText(), want) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing sent to %s contains %q", room, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSelfApprovalAndApprovalsByOthersThanApproversAreRefused(t *testing.T) {
	roles := map[string]config.Role{"release-managers": {People: []string{"alice", "bob"}}}
	tb := startBot(t, botOptions{plugins: []string{"examples/hello"}, people: approvalPeople, roles: roles,
		policies: approvalPolicy(30 * time.Minute), adapters: []string{"other"}})
	tb.say("chima hello production")
	sentTo(t, tb.chat, "Approval needed (request 1)")
	// alice is a release manager, and it is her own request: not from the
	// account she asked from, nor from her account on the other adapter.
	tb.sayOn("mem", "alice", "general", "chima approve 1")
	tb.sayOn("other", "UALICE", "ops", "chima approve 1")
	sentTo(t, tb.chat, "Sorry, I cannot let you approve request 1: You cannot approve your own request.")
	sentTo(t, tb.others["other"], "Sorry, I cannot let you approve request 1: You cannot approve your own request.")
	tb.sayOn("mem", "dave", "general", "chima approve 1")
	sentTo(t, tb.chat, "You are not one of its approvers.")
	tb.sayOn("mem", "mallory", "general", "chima deny 1 nope")
	sentTo(t, tb.chat, "Sorry, I cannot let you deny request 1: You are not one of its approvers.")
	waitAuditWhere(t, tb.store, store.AuditFilter{Command: "approve"}, func(e store.AuditEntry) bool {
		return e.Adapter == "other" && e.Outcome == "refused"
	})
	if n := count(tb.chat, "Hello, production!"); n != 0 {
		t.Fatalf("the command ran %d times without a valid approval", n)
	}
	// bob denies, with a reason; then nothing can approve it.
	tb.sayOn("mem", "bob", "general", "chima deny 1 not on a Friday")
	sentTo(t, tb.chat, "bob denied request 1 (`hello production`): not on a Friday")
	tb.sayOn("other", "UBOB", "ops", "chima approve 1")
	sentTo(t, tb.others["other"], "It is no longer open: it was denied.")
	if n := count(tb.chat, "Hello, production!"); n != 0 {
		t.Fatalf("a denied command ran")
	}
}

func TestAnExpiredRequestIsToldAndTakesNoApproval(t *testing.T) {
	tb := approvalBot(t, botOptions{policies: approvalPolicy(time.Second), approvalSweep: 20 * time.Millisecond})
	tb.say("chima hello production")
	sentTo(t, tb.chat, "Approval needed (request 1)")
	expired := sentTo(t, tb.chat, "Request 1 (`hello production`, asked by alice) expired without approval; nothing ran.")
	if expired.Ref.Room != "general" {
		t.Errorf("the expiry was told in %s, want general", expired.Ref.Room)
	}
	tb.sayOn("mem", "bob", "general", "chima approve 1")
	sentTo(t, tb.chat, "It is no longer open: it expired.")
	waitAuditWhere(t, tb.store, store.AuditFilter{Command: "approval"}, func(e store.AuditEntry) bool {
		return e.Outcome == "expired" && e.Via == "approval 1"
	})
	if n := count(tb.chat, "Hello, production!"); n != 0 {
		t.Fatalf("an expired request ran")
	}
}

func TestARequestStaysValidAcrossARestart(t *testing.T) {
	first := approvalBot(t, botOptions{})
	first.say("chima hello production")
	sentTo(t, first.chat, "Approval needed (request 1)")
	first.stop()

	second := approvalBot(t, botOptions{dbPath: first.db})
	second.sayOn("other", "UBOB", "ops", "chima approve 1")
	sentTo(t, second.chat, "Hello, production!")
}

func TestAnApprovedRequestTheLastProcessDidNotRunRunsAtStart(t *testing.T) {
	first := approvalBot(t, botOptions{})
	first.say("chima hello production")
	sentTo(t, first.chat, "Approval needed (request 1)")
	first.stop()
	// Approved in the store, never claimed: the bot died between the two.
	second := approvalBot(t, botOptions{dbPath: first.db, before: func(st *store.Store) {
		if _, err := st.VoteApproval(context.Background(), 1, store.ApprovalVote{Voter: "bob", Approve: true}); err != nil {
			t.Fatal(err)
		}
	}})
	sentTo(t, second.chat, "Hello, production!")
	time.Sleep(100 * time.Millisecond)
	if n := count(second.chat, "Hello, production!"); n != 1 {
		t.Errorf("ran %d times at start, want once", n)
	}
}

func TestTwoApprovalsAtOnceRunTheCommandOnce(t *testing.T) {
	tb := approvalBot(t, botOptions{buttons: true})
	tb.say("chima hello production")
	ask := sentTo(t, tb.chat, "Approval needed (request 1)")
	var approve chat.Button
	for _, b := range ask.Out.Buttons {
		if b.Label == "Approve" {
			approve = b
		}
	}
	if approve.ActionID != "chima.approval:approve" || approve.Value != "1" {
		t.Fatalf("Approve button = %+v; want the core's approval action for request 1", approve)
	}
	var wg sync.WaitGroup
	for _, voter := range []string{"bob", "dave"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb.bot.ProcessInteraction(context.Background(), chat.Interaction{
				Ref: ask.Ref, User: chat.User{ID: voter, Name: voter}, ActionID: approve.ActionID, Value: approve.Value,
			})
		}()
	}
	wg.Wait()
	sentTo(t, tb.chat, "Hello, production!")
	time.Sleep(100 * time.Millisecond)
	if n := count(tb.chat, "Hello, production!"); n != 1 {
		t.Errorf("two approvals at once ran the command %d times, want once", n)
	}
}

func TestAPluginAsksForApprovalFromItsOwnCode(t *testing.T) {
	tb := approvalBot(t, botOptions{policies: []config.Policy{}})
	tb.say("chima guarded thing")
	ask := sentTo(t, tb.chat, "Approval needed (request 1)")
	if !strings.Contains(ask.Out.PlainText(), "guarded things need approval") || !strings.Contains(ask.Out.PlainText(), "release-managers") {
		t.Errorf("ask = %q; want the plugin's reason and approvers", ask.Out.PlainText())
	}
	tb.sayOn("other", "UBOB", "ops", "chima approve 1")
	sentTo(t, tb.chat, "guarded thing ran for alice (person alice), request 1 approved by bob, confirmation false")

	// A confirmation is the requester's alone.
	tb.say("chima guarded confirm")
	sentTo(t, tb.chat, "Please confirm (request 2)")
	tb.sayOn("mem", "bob", "general", "chima approve 2")
	sentTo(t, tb.chat, "Only the person who asked can confirm it.")
	tb.sayOn("other", "UALICE", "ops", "chima approve 2")
	sentTo(t, tb.chat, "guarded confirm ran for alice (person alice), request 2 approved by alice, confirmation true")

	// A plugin asking again once approved runs nothing more.
	tb.say("chima guarded again")
	sentTo(t, tb.chat, "Approval needed (request 3)")
	tb.sayOn("mem", "bob", "general", "chima approve 3")
	sentTo(t, tb.chat, "asked for approval of `guarded again` again, though request 3 approved it")
	if _, err := tb.store.ApprovalRequestByID(context.Background(), 4); err == nil {
		t.Error("an approved command's second ask made a new request")
	}
}

func TestApprovalsListsThePendingRequests(t *testing.T) {
	tb := approvalBot(t, botOptions{})
	tb.say("chima approvals")
	sentTo(t, tb.chat, "No command is waiting for approval.")
	tb.say("chima hello production")
	sentTo(t, tb.chat, "Approval needed (request 1)")
	tb.sayOn("other", "UBOB", "ops", "chima approvals")
	sentTo(t, tb.others["other"], "#1 `hello production` asked by alice in mem:general, 0 of 1 approvals from release-managers")
}
