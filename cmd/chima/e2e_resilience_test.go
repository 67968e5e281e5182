package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/adapters/mattermost/mmtest"
)

// The resilience end-to-end tests run the bot with every adapter (see
// e2e_adapters_test.go) the way time treats a bot that runs for weeks: it
// is killed with -9 in the middle of deploys and started again on the same
// store, it sits idle for longer than every timeout that matters, and its
// Mattermost websocket is cut by the network while people keep typing.

// mention posts a signed Events API app_mention of the bot by alice in the
// Slack channel and returns its ts, the thread its replies go to.
func (b *adaptersBot) mention(t *testing.T, eventID string, n int, text string) string {
	t.Helper()
	ts := slackTS(n)
	body := appMention(t, eventID, ts, text)
	if resp := slackSigned(t, b.url("/slack/events"), e2eSlackSecret, "application/json", body, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed event %q answered %d", text, resp.StatusCode)
	}
	return ts
}

// slackInThread waits for a chat.postMessage in thread ts that shows every
// want.
func (b *adaptersBot) slackInThread(t *testing.T, ts string, want ...string) slackCall {
	t.Helper()
	deadline := time.Now().Add(e2eGuard)
	for {
		for _, c := range b.slack.recorded("chat.postMessage") {
			if c.Form.Get("thread_ts") != ts {
				continue
			}
			all := true
			for _, w := range want {
				all = all && strings.Contains(c.shown(), w)
			}
			if all {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message in Slack thread %s with %q; the bot called:\n%s", ts, want, b.slack.dump())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slackCountInThread is how many messages in Slack thread ts show want.
func (b *adaptersBot) slackCountInThread(ts, want string) int {
	n := 0
	for _, c := range b.slack.recorded("chat.postMessage") {
		if c.Form.Get("thread_ts") == ts && strings.Contains(c.shown(), want) {
			n++
		}
	}
	return n
}

// mmCountInThread is how many posts of the bot in the thread of root show
// want.
func (m *realMattermost) countInThread(t *testing.T, root, want string) int {
	t.Helper()
	n := 0
	for _, p := range m.botPosts(t, root) {
		if strings.Contains(mmShown(p), want) {
			n++
		}
	}
	return n
}

// starts is how many times the deploy script of deployment id started.
func (b *adaptersBot) starts(t *testing.T, id int) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.marks, fmt.Sprint(id)))
	if os.IsNotExist(err) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(raw), "started\n")
}

// waitStarted waits until the deploy script of deployment id has started.
func (b *adaptersBot) waitStarted(t *testing.T, id int) {
	t.Helper()
	deadline := time.Now().Add(e2eGuard)
	for b.starts(t, id) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the deploy script of #%d never started", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 kills the bot with SIGKILL, as the OOM killer or a lost host does,
// and waits until it and its plugins are gone.
func (b *adaptersBot) kill9(t *testing.T) {
	t.Helper()
	plugins := childPIDs(t, b.cmd.Process.Pid)
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = b.cmd.Wait()
	waitGone(t, plugins)
}

// A bot killed with -9 while a deploy from Slack and one from Mattermost
// run is started again on the same store: each deployment ends as
// interrupted, each room is told so on its own adapter, once; the locks are
// released, so the same environments take new deploys; and nothing that
// was running is run again.
func TestBotKilledMidDeploysOnSlackAndMattermostEndsThemAndTellsEachRoom(t *testing.T) {
	b := writeAdaptersConfig(t, adaptersSetup{})
	mm := b.needMattermost(t)
	b.start(t)

	slackRoot := b.mention(t, "Ev0RESKILL01", 1, "deploy demo/slow to staging")
	b.waitStarted(t, 1)
	root := mm.post(t, "@"+mm.env["MM_BOT_USERNAME"]+" deploy demo/slow to edge")
	b.waitStarted(t, 2)
	// Both scripts are in their long sleep, their progress shown.
	b.slack.waitCall(t, "chat.update", "waiting")
	mm.waitReply(t, root.Id, "waiting")

	b.kill9(t)
	b.start(t)

	const why = "interrupted by restart"
	b.slackInThread(t, slackRoot, "Deployment #1 of demo/slow", why)
	mm.waitReply(t, root.Id, why)

	// The store says so too, for each.
	for _, id := range []int{1, 2} {
		b.say(t, fmt.Sprintf("chima deploy:status %d", id))
		b.expect(t, why)
	}

	// The locks were released: the same environments deploy again, from
	// the same rooms.
	again := b.mention(t, "Ev0RESKILL02", 2, "deploy demo to staging")
	b.slackInThread(t, again, "Deployed demo/main ("+b.sha[:7]+") to staging")
	root2 := mm.post(t, "@"+mm.env["MM_BOT_USERNAME"]+" deploy demo to edge")
	mm.waitReply(t, root2.Id, "Deployed demo/main ("+b.sha[:7]+") to edge")

	// Told once each, and on its own adapter only.
	if n := b.slackCountInThread(slackRoot, why); n != 1 {
		t.Errorf("the Slack thread was told %d times that #1 was interrupted, want once:\n%s", n, b.slack.dump())
	}
	if n := mm.countInThread(t, root.Id, why); n != 1 {
		t.Errorf("the Mattermost thread was told %d times that #2 was interrupted, want once", n)
	}
	if n := b.slack.count("chat.postMessage", "Deployment #2 of demo/slow"); n != 0 {
		t.Errorf("Slack was told of the Mattermost deploy:\n%s", b.slack.dump())
	}
	// Nothing ran twice: each interrupted script started once, and the two
	// new deploys are #3 and #4.
	for id, want := range map[int]int{1: 1, 2: 1, 3: 1, 4: 1} {
		if got := b.starts(t, id); got != want {
			t.Errorf("the deploy script of #%d started %d times, want %d", id, got, want)
		}
	}
}

// idleFor is longer than every interval that matters while a bot sits
// idle: go-plugin's broker forgets connection info it was not dialled for
// after 5 s, and the Mattermost adapter's ping_timeout here is 3 s.
const idleFor = 12 * time.Second

// A bot that sat idle longer than the plugin broker's timeout and, many
// times over, its Mattermost websocket's ping timeout still answers on
// the console, Slack and Mattermost, and its plugins still reach the Host
// service (a deploy posts, locks, keeps records and runs a job). The
// websocket was kept all along: pinged, not dialled again.
func TestBotThatSatIdleAnswersOnEveryAdapterAndItsPluginsReachTheHost(t *testing.T) {
	if testing.Short() {
		t.Skip("idles 12 s")
	}
	// The server pings every 60 s; the bot pings every second and gives a
	// silent websocket 3 s, so the idle time is many ping timeouts.
	b := writeAdaptersConfig(t, adaptersSetup{mmExtra: []string{"ping_interval: 1s", "ping_timeout: 3s"}})
	b.start(t)
	b.say(t, "chima hello warm")
	b.expect(t, "Hello, warm!")

	t.Logf("idling %s", idleFor)
	time.Sleep(idleFor)

	b.say(t, "chima hello console")
	b.expect(t, "Hello, console!")
	ts := b.mention(t, "Ev0RESIDLE01", 1, "hello slack")
	b.slackInThread(t, ts, "Hello, slack!")
	ts = b.mention(t, "Ev0RESIDLE02", 2, "deploy demo to staging")
	b.slackInThread(t, ts, "Deployed demo/main ("+b.sha[:7]+") to staging")
	b.say(t, "chima deploy:lock demo in edge idle check")
	b.expect(t, "Locked demo in edge")
	b.say(t, "chima deploy:unlock demo in edge")
	b.expect(t, "Unlocked demo in edge")
	if b.mm == nil {
		b.needMattermost(t) // skips, or fails under CI
		return
	}
	mm := b.mm
	root := mm.post(t, "@"+mm.env["MM_BOT_USERNAME"]+" hello mattermost")
	mm.waitReply(t, root.Id, "Hello, mattermost!")
	if n := strings.Count(b.stderr.String(), "mattermost: websocket connected"); n != 1 {
		t.Errorf("the websocket connected %d times while the bot sat idle, want once (kept alive by pings)", n)
	}
	if strings.Contains(b.stderr.String(), "websocket closed, reconnecting") {
		t.Error("the websocket was closed while the bot sat idle")
	}
}

// The network between the bot and the real Mattermost is cut while alice
// keeps typing: once it is back the bot reconnects by itself, answers what
// she said meanwhile, and answers what she says next, each exactly once.
func TestMattermostCutOffByTheNetworkReconnectsAndAnswersWhatWasSaidMeanwhileOnce(t *testing.T) {
	mm, why := loadMattermost()
	if mm == nil {
		(&adaptersBot{mmWhy: why}).needMattermost(t)
	}
	g := mmtest.NewGate(t, mm.env["MM_URL"])
	b := writeAdaptersConfig(t, adaptersSetup{mmURL: g.URL})
	b.start(t)
	at := "@" + mm.env["MM_BOT_USERNAME"] + " "
	before := mm.post(t, at+"hello before")
	mm.waitReply(t, before.Id, "Hello, before!")

	g.Cut()
	b.waitLog(t, "mattermost: websocket closed, reconnecting")
	during := mm.post(t, at+"hello meanwhile")
	time.Sleep(time.Second) // the bot redials, and is refused, meanwhile
	g.Open()

	mm.waitReply(t, during.Id, "Hello, meanwhile!")
	after := mm.post(t, at+"hello after")
	mm.waitReply(t, after.Id, "Hello, after!")
	if n := strings.Count(b.stderr.String(), "mattermost: websocket connected"); n < 2 {
		t.Fatalf("the websocket connected %d times, want it dialled again after the cut", n)
	}
	// A reply posted twice would be there by now: the next command's reply
	// comes after it in the same order.
	last := mm.post(t, at+"hello last")
	mm.waitReply(t, last.Id, "Hello, last!")
	for root, want := range map[string]string{before.Id: "Hello, before!", during.Id: "Hello, meanwhile!", after.Id: "Hello, after!"} {
		if n := mm.countInThread(t, root, want); n != 1 {
			t.Errorf("%q was answered %d times, want once", want, n)
		}
	}
}
