package bot

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/chimaops/chima/core/store"
)

// The audit log records, beside commands and clicks, what the core did on
// their behalf, each as an entry of its own written off the dispatch path
// (auditWriter.record, which nobody waits for):
//
//   - jobs: command "job", text "<kind> job #<id>[: title]", via "job
//     #<id>", outcome enqueued, started, then how it ended (succeeded,
//     failed, error, cancelled, interrupted); the request id is the one
//     the job was enqueued for, so one filter finds a command and its jobs;
//   - locks: command "lock", text the lock's name, the owner as user (and
//     as person when the owner is one), outcome taken, renewed, busy (held
//     by someone else), released, forced (released by someone else than
//     its owner) or expired (lapsed, and taken over by someone else).

// auditJob records that job j reached outcome ("enqueued", "started", or
// its end state). trig says what other than a command enqueued it (a
// schedule), nil otherwise.
func (b *Bot) auditJob(j store.Job, outcome, detail string, trig *trigger) {
	e := store.AuditEntry{
		Time: time.Now(), RequestID: j.OriginRequestID, Adapter: j.Notify.Adapter, Room: j.Notify.Room,
		Plugin: j.Plugin, Command: "job", Text: jobText(j), Outcome: outcome, Detail: detail,
		Via: "job #" + strconv.FormatInt(j.ID, 10),
	}
	if trig != nil {
		e.Via, e.TriggeredBy = trig.via, trig.by
	}
	if !j.StartedAt.IsZero() && outcome != "started" {
		e.Duration = e.Time.Sub(j.StartedAt)
	}
	b.audit.record(e)
}

// jobText names a job in the audit: "deploy job #12: Deployment #8 of x".
func jobText(j store.Job) string {
	s := j.Kind + " job #" + strconv.FormatInt(j.ID, 10)
	if j.Title != "" {
		s += ": " + j.Title
	}
	return s
}

// auditLock records what happened to plugin's lock l (its name without the
// plugin's prefix): outcome taken, renewed, busy, released, forced or
// expired; detail says more (who held it).
func (b *Bot) auditLock(plugin string, l store.Lock, outcome, detail string) {
	e := store.AuditEntry{
		Time: time.Now(), Plugin: plugin, Command: "lock", Text: l.Name, UserID: l.Owner,
		Outcome: outcome, Detail: detail, Via: "lock",
	}
	if l.JobID != 0 {
		e.Via = "lock of job #" + strconv.FormatInt(l.JobID, 10)
	}
	if b.o.Policy.IsPerson(l.Owner) {
		e.Person = l.Owner
	}
	b.audit.record(e)
}

// jobStore is the store as the job runner uses it, auditing the locks a
// job held as released when the job's end releases them.
type jobStore struct {
	*store.Store
	b *Bot
}

// FinishJob records the job's end; the locks tied to it, which that
// releases, are audited "released" with the job.
func (s jobStore) FinishJob(ctx context.Context, id int64, state store.JobState, detail string) error {
	var held []store.Lock
	if all, err := s.Locks(ctx, ""); err == nil { // a small table: one read per job end
		for _, l := range all {
			if l.JobID == id {
				held = append(held, l)
			}
		}
	}
	if err := s.Store.FinishJob(ctx, id, state, detail); err != nil {
		return err
	}
	for _, l := range held {
		plugin, name, _ := strings.Cut(l.Name, "/")
		l.Name = name
		s.b.auditLock(plugin, l, "released", "with job #"+strconv.FormatInt(id, 10)+", "+string(state))
	}
	return nil
}
