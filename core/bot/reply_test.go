package bot

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/core/outbox"
	"github.com/chimaops/chima/core/redact"
	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestRepliesHaveSecretsMaskedInFieldsAndButtonsWithoutTouchingTheCallers(t *testing.T) {
	b := New(Options{Redactor: redact.New("hunter22")})
	fields := []chat.Field{{Title: "token", Value: "hunter22"}, {Title: "app", Value: "demo"}}
	buttons := []chat.Button{{Label: "retry", Command: "deploy --token hunter22"}}
	out := b.redactOutput(chat.Output{Text: "hi", Fields: fields, Buttons: buttons})
	if out.Fields[0].Value != redact.Mask || out.Fields[1].Value != "demo" || out.Buttons[0].Command != "deploy --token "+redact.Mask {
		t.Fatalf("redacted output = %+v", out)
	}
	if fields[0].Value != "hunter22" || buttons[0].Command != "deploy --token hunter22" {
		t.Fatalf("the caller's fields or buttons were changed: %+v %+v", fields, buttons)
	}
	clean := []chat.Field{{Title: "app", Value: "demo"}}
	if out := b.redactOutput(chat.Output{Fields: clean}); &out.Fields[0] != &clean[0] {
		t.Fatal("fields without a secret were copied")
	}
}

// rateLimitedOnce is a Memory adapter whose first post is rate limited,
// once the test lets it answer (release), having said it is asked (asked).
type rateLimitedOnce struct {
	*chattest.Memory
	tried          atomic.Bool
	asked, release chan struct{}
}

func (a *rateLimitedOnce) Send(ctx context.Context, to chat.MessageRef, out chat.Output) (chat.MessageRef, error) {
	if !a.tried.Swap(true) {
		close(a.asked)
		<-a.release
		return chat.MessageRef{}, &chat.RetryAfterError{After: time.Millisecond, Err: errors.New("ratelimited")}
	}
	return a.Memory.Send(ctx, to, out)
}

// Replies and progress go through the outbox: a rate limit is waited out,
// a burst of progress edits reaches the service as one edit with the last
// content, delivered at the latest when the bot stops, and the outbox's
// metrics are on the bot's registry.
func TestRepliesAndProgressGoThroughTheOutbox(t *testing.T) {
	mem := &rateLimitedOnce{Memory: chattest.NewMemory("chat"), asked: make(chan struct{}), release: make(chan struct{})}
	b := New(Options{Adapters: []chat.Adapter{mem}, Outbox: outbox.Options{DefaultMinEditInterval: time.Hour}})
	r := b.replierTo(chat.MessageRef{Adapter: "chat", Room: "ops", MessageID: "m1"}, chat.MessageRef{Adapter: "chat", Room: "ops"})
	ctx := context.Background()
	// The progress message is with the service when the rest comes.
	r.progressUpdate(ctx, "log", chat.Output{Text: "step 0"})
	<-mem.asked
	for i := 1; i < 50; i++ {
		r.progressUpdate(ctx, "log", chat.Output{Text: fmt.Sprint("step ", i)})
	}
	close(mem.release)
	b.closeOutbox()
	sent := mem.Sent()
	if len(sent) != 2 || sent[0].Out.Text != "step 0" || !sent[1].Edited || sent[1].Out.Text != "step 49" {
		t.Fatalf("the service got %+v, want the post and one edit with the last step", sent)
	}
	reg := b.o.Metrics.Registry
	for name, want := range map[string]float64{
		"chima_outbox_retries_total":   1,
		"chima_outbox_coalesced_total": 49, // every edit asked while the post was out
		"chima_outbox_sent_total":      2,
	} {
		if got, err := testutil.GatherAndCount(reg, name); err != nil || got == 0 {
			t.Fatalf("%s not on the bot's registry: %v", name, err)
		}
		if got := sumMetric(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func sumMetric(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// noEdits hides Memory's Update (and its threads): an adapter that can
// only post, like a webhook notifier.
type noEdits struct{ chat.Adapter }

// Where the adapter cannot edit, progress is posted anew at most every
// progressPostEvery, and the latest held back is posted when the plugin is
// done: a plugin that reports progress eagerly does not flood the room.
func TestProgressWithoutEditsIsSpacedOutAndEndsWithTheLastState(t *testing.T) {
	mem := chattest.NewMemory("hooks")
	b := New(Options{Adapters: []chat.Adapter{noEdits{mem}}})
	r := b.replierTo(chat.MessageRef{Adapter: "hooks", Room: "ops", MessageID: "m1"}, chat.MessageRef{Adapter: "hooks", Room: "ops"})
	ctx := context.Background()
	for i := range 50 {
		r.event(ctx, &pluginv1.Event{Kind: &pluginv1.Event_Progress{Progress: &pluginv1.Progress{
			Key: "log", Output: &pluginv1.Output{Text: fmt.Sprint("step ", i)},
		}}})
	}
	r.event(ctx, &pluginv1.Event{Kind: &pluginv1.Event_Done{Done: &pluginv1.Done{Outcome: "success"}}})
	r.wait(ctx) // replies are queued, not waited for
	var got []string
	for _, s := range mem.Sent() {
		got = append(got, s.Out.Text)
	}
	if len(got) != 2 || got[0] != "step 0" || got[1] != "step 49" {
		t.Fatalf("posted %q, want the first and the last progress", got)
	}
}
