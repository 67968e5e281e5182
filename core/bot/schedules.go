package bot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/schedule"
	"github.com/chimaops/chima/core/store"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// RunScheduled runs command, the command of schedule name, as if the user as
// had typed it in room: through the router, policy and audit of a typed
// command, in that person's turn in that room, audited with Via "schedule
// <name>" and triggered by "chima". It returns once the command has been
// handled; its outcome is "cancelled" when ctx ended before it could start.
func (b *Bot) RunScheduled(ctx context.Context, name string, room chat.MessageRef, as, command string) Result {
	if ctx.Err() != nil {
		return Result{Outcome: "cancelled"}
	}
	ref := b.withAdapter(room)
	if resolved, err := b.resolveRoom(ctx, ref); err != nil {
		b.log.Warn("a schedule's room is unknown; running it in the room as given", "schedule", name, "room", ref.String(), "error", err)
	} else {
		ref = resolved
	}
	m := chat.Message{Ref: ref, User: chat.User{ID: as, Name: as}, Text: command, Time: time.Now()}
	done := make(chan Result, 1)
	trig := &trigger{via: "schedule " + name, by: "chima"}
	if !b.dispatch(ctx, conversationOf(m), func(ctx context.Context, id string) {
		outcome, _ := b.process(ctx, m, command, id, nil, trig, false)
		done <- Result{RequestID: id, Outcome: outcome}
	}) {
		return Result{Outcome: "cancelled"}
	}
	return <-done
}

// PluginScheduler is a Scheduler that also runs plugins' schedules
// (*schedule.Scheduler): the bot sets each running plugin's, from its
// manifest, named "<plugin>:<name>".
type PluginScheduler interface {
	SetPlugin(ctx context.Context, plugin string, specs []schedule.Spec) []error
}

// scheduledPrefix starts the request id of a plugin schedule's slot:
// "schedule:<name>@<slot in Unix ms>", which the job it enqueues carries as
// its origin, so that its end is recorded as the slot's outcome.
const scheduledPrefix = "schedule:"

func scheduledRequestID(name string, slot time.Time) string {
	return scheduledPrefix + name + "@" + strconv.FormatInt(slot.UnixMilli(), 10)
}

// scheduledSlot reads a request id made by scheduledRequestID.
func scheduledSlot(requestID string) (name string, slot time.Time, ok bool) {
	rest, ok := strings.CutPrefix(requestID, scheduledPrefix)
	if !ok {
		return "", time.Time{}, false
	}
	at := strings.LastIndexByte(rest, '@')
	if at <= 0 {
		return "", time.Time{}, false
	}
	ms, err := strconv.ParseInt(rest[at+1:], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return rest[:at], time.UnixMilli(ms), true
}

// setPluginSchedules sets the schedules of plugin's manifest m on the
// scheduler. A schedule that is wrong (a bad cron, an undeclared job kind,
// a bad name) is left out, logged, and kept as a problem of the plugin
// that SchedulesHealth reports until a manifest without it comes.
func (b *Bot) setPluginSchedules(plugin string, m *pluginv1.Manifest) {
	ps, ok := b.o.Scheduler.(PluginScheduler)
	if !ok {
		return
	}
	specs, problems := PluginSchedules(plugin, m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, err := range ps.SetPlugin(ctx, plugin, specs) {
		problems = append(problems, err.Error())
	}
	for _, p := range problems {
		b.log.Error("a schedule of the plugin does not run", "plugin", plugin, "problem", p)
	}
	b.problemsMu.Lock()
	defer b.problemsMu.Unlock()
	if b.scheduleProblems == nil {
		b.scheduleProblems = map[string][]string{}
	}
	if len(problems) == 0 {
		delete(b.scheduleProblems, plugin)
	} else {
		b.scheduleProblems[plugin] = problems
	}
}

// PluginSchedules converts the schedules of plugin's manifest m to the
// scheduler's, named "<plugin>:<name>", in UTC unless they say otherwise.
// problems say, for each schedule left out, what is wrong with it (a bad
// cron, an undeclared job kind, a bad name).
func PluginSchedules(plugin string, m *pluginv1.Manifest) (specs []schedule.Spec, problems []string) {
	for i, s := range m.GetSchedules() {
		where := fmt.Sprintf("schedule %q (manifest schedules[%d])", s.GetName(), i)
		if why := scheduleSpecProblem(s, m); why != "" {
			problems = append(problems, where+": "+why)
			continue
		}
		tz := s.GetTimezone()
		if tz == "" {
			tz = "UTC" // a plugin's schedules are UTC unless they say
		}
		if _, err := schedule.Parse(s.GetCron(), tz); err != nil {
			problems = append(problems, where+": "+err.Error())
			continue
		}
		n := s.GetNotify()
		notify := n.GetRoom()
		if n.GetAdapter() != "" {
			notify = n.GetAdapter() + ":" + n.GetRoom()
		}
		specs = append(specs, schedule.Spec{
			Name: plugin + ":" + s.GetName(), Cron: s.GetCron(), Timezone: tz, CatchUp: s.GetCatchUp(), Plugin: plugin,
			Job: schedule.Job{
				Kind: s.GetJobKind(), Payload: s.GetPayload(), QueueKey: s.GetQueueKey(),
				Notify: notify, NotifyThread: n.GetThreadId(), Title: s.GetTitle(), Help: s.GetHelp(),
			},
		})
	}
	return specs, problems
}

// RememberedSchedules returns the schedules of the manifests the bot
// last remembered in st for plugins, for `chima schedules` beside a
// running bot (or a stopped one).
func RememberedSchedules(ctx context.Context, st *store.Store, plugins []string) ([]schedule.Spec, error) {
	var out []schedule.Spec
	for _, p := range plugins {
		data, ok, err := st.KVGet(ctx, manifestNS, p)
		if err != nil {
			return nil, fmt.Errorf("read the manifest of plugin %s: %w", p, err)
		}
		if !ok {
			continue
		}
		m := &pluginv1.Manifest{}
		if err := proto.Unmarshal(data, m); err != nil {
			return nil, fmt.Errorf("decode the manifest of plugin %s: %w", p, err)
		}
		specs, _ := PluginSchedules(p, m)
		out = append(out, specs...)
	}
	return out, nil
}

// scheduleSpecProblem says what is wrong with s, of manifest m, other than
// its cron; "" when nothing is.
func scheduleSpecProblem(s *pluginv1.ScheduleSpec, m *pluginv1.Manifest) string {
	name := s.GetName()
	switch {
	case name == "":
		return "a schedule needs a name"
	case strings.ContainsFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r))
	}):
		return "a schedule's name has letters, digits and -_.: only"
	case !slices.Contains(m.GetJobKinds(), s.GetJobKind()):
		return fmt.Sprintf("job kind %q is not one of the plugin's job kinds (%s)", s.GetJobKind(), strings.Join(m.GetJobKinds(), ", "))
	}
	return ""
}

// PluginProblems returns what is wrong with plugin's schedules, for
// /plugins and `chima plugins`; nil when nothing is.
func (b *Bot) PluginProblems(plugin string) []string {
	b.problemsMu.Lock()
	defer b.problemsMu.Unlock()
	return slices.Clone(b.scheduleProblems[plugin])
}

// SchedulesHealth returns an error naming each plugin schedule that does not
// run because its manifest got it wrong, nil when none; /healthz reports it.
func (b *Bot) SchedulesHealth() error {
	b.problemsMu.Lock()
	defer b.problemsMu.Unlock()
	var errs []error
	for _, p := range slices.Sorted(maps.Keys(b.scheduleProblems)) {
		for _, why := range b.scheduleProblems[p] {
			errs = append(errs, fmt.Errorf("plugin %s: %s", p, why))
		}
	}
	return errors.Join(errs...)
}

// RunPluginSchedule enqueues the job of sp, a plugin's schedule, for slot,
// and audits it (via "schedule <name>", triggered by "chima"). It returns
// the slot's request id, which the job carries as its origin, and
// "enqueued", or "error" when the job could not be stored; the job's end
// replaces the slot's outcome (jobFinished).
func (b *Bot) RunPluginSchedule(ctx context.Context, sp schedule.Spec, slot time.Time) (requestID, outcome string) {
	requestID = scheduledRequestID(sp.Name, slot)
	var notify chat.MessageRef
	if sp.Job.Notify != "" {
		notify = roomOf(sp.Job.Notify)
		notify.ThreadID = sp.Job.NotifyThread
		notify = b.notifyRef(ctx, notify)
	}
	queue := ""
	if sp.Job.QueueKey != "" {
		queue = sp.Plugin + "/" + sp.Job.QueueKey
	}
	now := time.Now()
	j := store.Job{
		Plugin: sp.Plugin, Kind: sp.Job.Kind, Payload: sp.Job.Payload, QueueKey: queue, Notify: notify,
		OriginRequestID: requestID, Title: b.o.Redactor.String(sp.Job.Title), CreatedAt: now, RunAfter: now,
	}
	id, err := b.o.Store.EnqueueJob(ctx, j)
	if err != nil {
		b.log.Error("enqueue a schedule's job", "schedule", sp.Name, "slot", slot, "error", err)
		b.auditJob(j, "error", "enqueue: "+err.Error(), &trigger{via: "schedule " + sp.Name, by: "chima"})
		return requestID, "error"
	}
	j.ID = id
	b.auditJob(j, "enqueued", "slot "+slot.UTC().Format(time.RFC3339), &trigger{via: "schedule " + sp.Name, by: "chima"})
	b.jobs.Wake()
	return requestID, "enqueued"
}

// roomOf reads "adapter:room", or a bare room of the default adapter.
func roomOf(room string) chat.MessageRef {
	if adapter, name, ok := strings.Cut(room, ":"); ok {
		return chat.MessageRef{Adapter: adapter, Room: name}
	}
	return chat.MessageRef{Room: room}
}

// scheduledJobEnded records the end of a job a plugin schedule enqueued as
// its slot's outcome ("job succeeded").
func (b *Bot) scheduledJobEnded(j store.Job, state store.JobState) {
	name, slot, ok := scheduledSlot(j.OriginRequestID)
	if !ok || b.o.Store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.o.Store.ScheduledJobEnded(ctx, name, slot, "job "+string(state), j.OriginRequestID); err != nil {
		b.log.Error("record a scheduled job's end", "schedule", name, "job", j.ID, "error", err)
	}
}

// listSchedules answers the built-in schedules command.
func (b *Bot) listSchedules(ctx context.Context) chat.Output {
	if b.o.Schedules == nil {
		return chat.Output{Text: "No schedules are configured."}
	}
	text, err := b.o.Schedules(ctx)
	if err != nil {
		b.log.Error("list schedules", "error", err)
		return chat.Output{Text: "⚠ I could not list the schedules; the bot's log says why.", Status: "danger"}
	}
	return chat.Output{Title: "Schedules", Text: text}
}
