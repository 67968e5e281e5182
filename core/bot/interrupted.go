package bot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// pendingNS is the store namespace (KV) of interrupted jobs whose plugin has
// not heard of them yet, keyed "<plugin>/<job id>"; the key says it all, the
// value is empty. No plugin can have this namespace: plugin names are
// [a-z0-9_-]+.
const pendingNS = "chima:interrupted-jobs"

func pendingKey(j store.Job) string { return fmt.Sprintf("%s/%012d", j.Plugin, j.ID) }

// crashDetail is the detail of a job whose plugin died under it.
func crashDetail(plugin string) string {
	return "interrupted because the " + plugin + " plugin crashed"
}

// pluginBack follows a plugin's state changes (through PluginChanged): a
// plugin that is running again hears of the jobs that were interrupted while
// it was down. It does not block.
func (b *Bot) pluginBack(plugin string, s pluginhost.State) {
	if s != pluginhost.StateRunning || !b.running.Load() || b.o.Store == nil {
		return
	}
	// The webhook deliveries it missed, at once.
	b.events.Wake(plugin)
	go b.tellPending(context.Background(), plugin)
}

// jobInterrupted handles a job that ended interrupted (its plugin crashed,
// Chima stopped or restarted): its locks are released already; its plugin
// hears of it so that it can record and report the end (a deploy's record,
// GitHub's status, the thread and the notify rooms), and the job's room is
// told by the core when the plugin cannot do that. Until the plugin heard of
// it, the job is kept in pendingNS, so that a plugin that is down now, or a
// bot that dies now, still tells it later.
func (b *Bot) jobInterrupted(ctx context.Context, j store.Job, detail string) {
	if b.o.Store != nil {
		if err := b.o.Store.KVSet(ctx, pendingNS, pendingKey(j), nil); err != nil {
			b.log.Error("remember interrupted job", "job", j.ID, "plugin", j.Plugin, "error", err)
		}
	}
	switch b.tellInterrupted(ctx, j, true) {
	case toldPlugin:
		return // the plugin reported it, to the thread and beyond
	case pluginDown:
		st := string(b.o.Plugins.State(j.Plugin))
		if st == string(pluginhost.StateFailed) {
			st = "down" // "is failed" is no English
		}
		detail += fmt.Sprintf(". The %s plugin is %s; it will record the end when it is back", j.Plugin, st)
	}
	b.notifyJobEnd(ctx, j, store.JobInterrupted, detail)
}

// tellResult says how telling a plugin of an interrupted job went.
type tellResult int

const (
	// toldPlugin: the plugin handled the event.
	toldPlugin tellResult = iota
	// pluginDown: the plugin is not running, or failed to take the event;
	// the job stays pending.
	pluginDown
	// notListening: the plugin does not hear of interrupted jobs (neither
	// the call nor the event), or refused to; it will not be asked again.
	notListening
)

// tellPending tells plugin (every plugin when "") of the interrupted jobs it
// has not heard of yet, oldest first.
func (b *Bot) tellPending(ctx context.Context, plugin string) {
	prefix := ""
	if plugin != "" {
		prefix = plugin + "/"
	}
	keys, err := b.o.Store.KVList(ctx, pendingNS, prefix)
	if err != nil {
		b.log.Error("list interrupted jobs", "error", err)
		return
	}
	for _, k := range keys {
		_, idText, _ := strings.Cut(k, "/")
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			b.forgetPending(ctx, k, "its key names no job")
			continue
		}
		j, err := b.o.Store.GetJob(ctx, id)
		if err != nil {
			b.log.Error("load interrupted job", "job", id, "error", err)
			b.forgetPending(ctx, k, "the job cannot be loaded")
			continue
		}
		b.tellInterrupted(ctx, j, false)
	}
}

// tellInterrupted lets the job's plugin clean up after a job that was
// running when it or Chima died (report the deployment as errored, say), if
// it asked to hear of such jobs: through the JobInterrupted call (protocol
// minor 7 and the job_interrupted capability), or the chima:job_interrupted
// event an older plugin subscribed to (see interruptedCall). With wait, a plugin that is restarting is
// waited for (a crash restart takes well under a second), up to the command
// timeout. The job leaves pendingNS once the plugin answered.
func (b *Bot) tellInterrupted(ctx context.Context, j store.Job, wait bool) tellResult {
	t := &telling{done: make(chan struct{})}
	if cur, busy := b.telling.LoadOrStore(j.ID, t); busy {
		// Another goroutine is telling it right now (the plugin came back
		// while the job was being ended): its outcome is this call's too,
		// so that a job its plugin does not hear of still has its room
		// told.
		other := cur.(*telling)
		select {
		case <-other.done:
			return other.res
		case <-ctx.Done():
			return pluginDown
		}
	}
	defer func() {
		b.telling.Delete(j.ID)
		close(t.done)
	}()
	t.res = b.tell(ctx, j, wait)
	return t.res
}

// telling is a telling of an interrupted job to its plugin that is under
// way; res is its outcome once done is closed.
type telling struct {
	done chan struct{}
	res  tellResult
}

// tell is tellInterrupted, for the one goroutine telling j now.
func (b *Bot) tell(ctx context.Context, j store.Job, wait bool) tellResult {
	forget := func() {
		if b.o.Store == nil {
			return
		}
		if err := b.o.Store.KVDelete(context.WithoutCancel(ctx), pendingNS, pendingKey(j)); err != nil {
			b.log.Error("forget interrupted job", "job", j.ID, "error", err)
		}
	}
	if wait && !b.waitRunning(ctx, j.Plugin, b.o.CommandTimeout) {
		return pluginDown
	}
	if b.o.Plugins.State(j.Plugin) != pluginhost.StateRunning {
		return pluginDown
	}
	m := b.o.Plugins.Manifest(j.Plugin)
	if m == nil {
		return pluginDown // it died again an instant ago
	}
	lifecycle := slices.Contains(m.GetCapabilities(), wire.CapabilityJobInterrupted) && m.GetProtocolMinor() >= 7
	if !lifecycle && !slices.Contains(m.GetEvents(), wire.EventJobInterrupted) {
		forget()
		return notListening
	}
	// Only pending jobs are told: one told by another process already, or
	// by an earlier call here, is not told twice.
	if b.o.Store != nil {
		if _, ok, err := b.o.Store.KVGet(ctx, pendingNS, pendingKey(j)); err == nil && !ok {
			return toldPlugin
		}
	}
	job := &pluginv1.JobRequest{
		JobId: j.ID, Kind: j.Kind, Payload: j.Payload, Attempt: uint32(j.Attempt),
		Notify: refToProto(j.Notify), OriginRequestId: j.OriginRequestID,
	}
	call, err := interruptedCall(b.newRequestID(), j, job, lifecycle)
	if err != nil {
		b.log.Error("encode interrupted job", "job", j.ID, "error", err)
		forget()
		return notListening
	}
	cctx, cancel := context.WithTimeout(ctx, b.o.CommandTimeout)
	defer cancel()
	out := b.replierTo(j.Notify, j.Notify)
	out.plugin = j.Plugin
	defer out.wait(ctx) // the room is told before the job counts as ended
	var done *pluginv1.Done
	failed := false
	err = b.o.Plugins.Call(cctx, j.Plugin, call, func(ev *pluginv1.Event) {
		switch k := ev.GetKind().(type) {
		case *pluginv1.Event_Done:
			done = k.Done
		case *pluginv1.Event_Error:
			failed = true
		}
		out.event(ctx, ev)
	})
	if err != nil {
		b.log.Error("tell plugin of interrupted job", "job", j.ID, "plugin", j.Plugin, "error", err)
		return pluginDown
	}
	forget()
	if failed || doneOutcome(done) == "error" {
		b.log.Warn("plugin could not record an interrupted job", "job", j.ID, "plugin", j.Plugin, "detail", done.GetDetail())
		return notListening
	}
	return toldPlugin
}

// interruptedCall is how a plugin hears that job j was interrupted: the
// JobInterrupted call for a plugin that has it (lifecycle: capability
// job_interrupted, protocol minor 7 or later), else the
// chima:job_interrupted event older plugins subscribed to, with the job as
// its payload.
func interruptedCall(requestID string, j store.Job, job *pluginv1.JobRequest, lifecycle bool) (*pluginv1.Call, error) {
	if lifecycle {
		when := j.FinishedAt
		if when.IsZero() {
			when = time.Now()
		}
		return &pluginv1.Call{Kind: &pluginv1.Call_JobInterrupted{JobInterrupted: &pluginv1.JobInterruptedRequest{
			RequestId: requestID, Job: job, InterruptedUnix: when.Unix(), Reason: j.Detail,
		}}}, nil
	}
	payload, err := proto.Marshal(job)
	if err != nil {
		return nil, err
	}
	return &pluginv1.Call{Kind: &pluginv1.Call_Event{Event: &pluginv1.WebhookEvent{
		RequestId: requestID, Type: wire.EventJobInterrupted,
		DeliveryId: "job-" + strconv.FormatInt(j.ID, 10), Payload: payload,
	}}}, nil
}

// waitRunning waits until plugin runs, giving up when it is failed or
// stopped, or after d.
func (b *Bot) waitRunning(ctx context.Context, plugin string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		switch b.o.Plugins.State(plugin) {
		case pluginhost.StateRunning:
			return true
		case pluginhost.StateFailed, pluginhost.StateStopped, "":
			return false
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// forgetPending drops a pending interrupted-job record that can never be
// told (why says so); a failure to drop it is logged, and it is tried again
// when the plugin next comes back.
func (b *Bot) forgetPending(ctx context.Context, key, why string) {
	b.log.Warn("dropping a pending interrupted-job record", "key", key, "why", why)
	if err := b.o.Store.KVDelete(ctx, pendingNS, key); err != nil {
		b.log.Error("drop a pending interrupted-job record", "key", key, "error", err)
	}
}
