package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// TestCIStatusPingsThePusherOnEachChatServiceAcrossIdleAndAKill9 runs the
// built bot with the console, Slack (slacktest), the real Mattermost and the
// ci-status plugin, whose people setting maps the GitHub login Codertocat
// to the person ally of chima.yaml. Ally is UALICE0001 on Slack and the
// user alice on Mattermost. A transition's thread reply pings ally the way
// each service pings: <@UALICE0001> on Slack, @alice on Mattermost (whose
// mention count of the channel goes up), plain @ally on the console. It
// still does after idle past go-plugin's broker timeout and after a kill -9
// of the bot.
func TestCIStatusPingsThePusherOnEachChatServiceAcrossIdleAndAKill9(t *testing.T) {
	mm, why := loadMattermost()
	if mm == nil {
		sdktest.Missing(t, "no real Mattermost: %s (start one with WORK=/tmp/mm-real bash /work/shared/tools/real-mattermost.sh up and set CHIMA_MATTERMOST_ENV=/tmp/mm-real/env)", why)
	}
	gh := ciGitHub(t)
	slack := newSlackAPI(t)
	t.Setenv("CHIMA_TEST_CI_TOKEN", "gh-token")
	cfg, addr := ciBotConfig(t, gh, "{GITHUB_TOKEN: CHIMA_TEST_CI_TOKEN}", "      people: {Codertocat: ally}\n")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	channel := mm.env["MM_CHANNEL_ID"]
	s := strings.Replace(string(text), "        - {repo: Codertocat/Hello-World, room: ci}\n",
		"        - {repo: Codertocat/Hello-World, room: \"shell:ci\"}\n"+
			"        - {repo: Codertocat/Hello-World, room: \"slack:"+e2eSlackChannel+"\"}\n"+
			"        - {repo: Codertocat/Hello-World, room: \"mattermost:"+channel+"\"}\n", 1)
	t.Setenv("CHIMA_E2E_SLACK_TOKEN", e2eSlackToken)
	t.Setenv("CHIMA_E2E_SLACK_SECRET", e2eSlackSecret)
	t.Setenv("CHIMA_E2E_MM_TOKEN", mm.env["MM_BOT_TOKEN"])
	s = strings.Replace(s, "  - {name: shell, type: shell, room: general, user: alice}\n", fmt.Sprintf(`  - {name: shell, type: shell, room: general, user: alice}
  - name: slack
    type: slack
    bot_token_env: CHIMA_E2E_SLACK_TOKEN
    signing_secret_env: CHIMA_E2E_SLACK_SECRET
    api_url: %s
  - name: mattermost
    type: mattermost
    url: %s
    token_env: CHIMA_E2E_MM_TOKEN
    team: %s
`, slack.srv.GetAPIURL(), mm.env["MM_URL"], mm.env["MM_TEAM_NAME"]), 1)
	s += fmt.Sprintf("people:\n  ally: [\"slack:%s\", \"mattermost:%s\"]\n", e2eSlackUser, mm.env["MM_USER_ID"])
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}

	deliver := ciDeliverer(t, cfg, addr)
	start := func() *console {
		c := startConsole(t, cfg)
		waitForHealthz(t, addr)
		return c
	}
	failure, err := os.ReadFile("../../core/webhook/testdata/github/check_run.failure.json")
	if err != nil {
		t.Fatal(err)
	}
	success, err := os.ReadFile("../../core/webhook/testdata/github/check_run.json")
	if err != nil {
		t.Fatal(err)
	}
	mentions := func() int64 {
		t.Helper()
		m, _, err := mm.alice.GetChannelMember(channel, mm.env["MM_USER_ID"], "")
		if err != nil {
			t.Fatalf("alice's membership of the channel: %v", err)
		}
		return m.MentionCount
	}
	// pinged waits for the transition word's reply on every service: a
	// ping of ally on each, and one more mention of alice on Mattermost.
	pinged := func(c *console, word string, before int64) {
		t.Helper()
		c.readLinesUntil(t, word+": Codertocat/Hello-World #2 at ec26c3e, pushed by @ally.")
		slack.waitCall(t, "chat.postMessage", word+": Codertocat/Hello-World #2 at ec26c3e, pushed by <@"+e2eSlackUser+">.")
		deadline := time.Now().Add(e2eGuard)
		for {
			posts, _, err := mm.alice.GetPostsForChannel(channel, 0, 40, "", false)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range posts.Posts {
				if p.UserId == mm.env["MM_BOT_USER_ID"] && strings.Contains(p.Message, word+": Codertocat/Hello-World #2 at ec26c3e, pushed by @"+mm.env["MM_USER_USERNAME"]+".") {
					found = true
				}
			}
			if found && mentions() > before {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Mattermost: reply found %v, alice's mentions %d (before %d), want the reply to ping her", found, mentions(), before)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	c := start()
	deliver("check_run", "ci-mention-1", failure)
	c.readLinesUntil(t, "line too long (120 > 80)")
	before := mentions()
	deliver("check_run", "ci-mention-2", success)
	pinged(c, "Fixed", before)

	// Idle past go-plugin's broker timeout (5 s), then a kill -9.
	time.Sleep(6 * time.Second)
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c = start()
	before = mentions()
	deliver("check_run", "ci-mention-3", failure)
	pinged(c, "Broken", before)
	if n := slack.count("chat.postMessage", "chimamention"); n > 0 {
		t.Errorf("Slack was sent %d messages with a mention's token left in", n)
	}
}
