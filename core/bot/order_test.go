package bot_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/core/store"
)

func TestOnePersonsCommandsInARoomAreHandledInTheOrderTheyArrived(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	// The first command is the slowest: run concurrently, it would answer last.
	tb.say("chima sleep 300ms")
	tb.say("chima echo two")
	tb.say("chima echo three")
	for _, want := range []string{"slept", "two", "three"} {
		tb.expect(want)
	}
}

func TestJobsOnePersonQueuesGetIDsAndRunInTheOrderTheyWereAsked(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	words := []string{"first", "second", "third", "fourth", "fifth"}
	for _, w := range words {
		tb.say("chima job " + w)
	}
	// The commands answer in order (jobs' progress comes in between).
	for i := 0; i < len(words); {
		if text := tb.next().Out.PlainText(); strings.HasPrefix(text, "queued job") {
			if want := fmt.Sprintf("queued job %d", i+1); text != want {
				t.Fatalf("bot said %q, want %q", text, want)
			}
			i++
		}
	}
	var started []int64
	for i, w := range words {
		j := waitJob(t, tb.store, int64(i+1))
		if string(j.Payload) != w || j.State != store.JobSucceeded {
			t.Errorf("job %d = %q %s, want %q succeeded", j.ID, j.Payload, j.State, w)
		}
		started = append(started, j.StartedAt.UnixMilli())
	}
	for i := 1; i < len(started); i++ {
		if started[i] < started[i-1] {
			t.Errorf("job %d started before job %d: %v", i+1, i, started)
		}
	}
}

func TestOtherPeopleAndRoomsDoNotWaitForSomeonesSlowCommand(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	tb.sayAs("alice", "general", "chima sleep 3s")
	tb.sayAs("bob", "general", "chima echo from bob")
	tb.sayAs("alice", "ops", "chima echo from alice in ops")
	got := []string{tb.next().Out.PlainText(), tb.next().Out.PlainText()}
	joined := strings.Join(got, "|")
	if !strings.Contains(joined, "from bob") || !strings.Contains(joined, "from alice in ops") {
		t.Fatalf("while alice's sleep ran the bot said %q, want bob's and alice's ops answers", got)
	}
	tb.expect("slept")
}

func TestACommandRunningPastTheTurnLimitLetsThePersonsNextOneStart(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}, turn: 100 * time.Millisecond})
	tb.say("chima sleep 3s")
	tb.say("chima echo not stuck")
	tb.expect("not stuck")
	tb.expect("slept")
}

func TestCommandsWaitingForTheirTurnAreHandledWhenTheBotStops(t *testing.T) {
	tb := startBot(t, botOptions{plugins: []string{"crashy"}})
	tb.say("chima sleep 300ms")
	tb.say("chima echo after the sleep")
	time.Sleep(50 * time.Millisecond) // both reached the bot
	tb.stop()
	var said []string
	for _, s := range tb.chat.Sent() {
		said = append(said, s.Out.PlainText())
	}
	if strings.Join(said, "|") != "slept|after the sleep" {
		t.Fatalf("by the time the bot stopped it had said %q", said)
	}
}
