package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/validate"
	"github.com/chimaops/chima/sdk"
)

// runDeploy is the deploy job (Heaven's job): a clean checkout of the exact
// commit, the provider run with exec in its own process group, the output
// kept in the log and shown as progress, and the end reported to the room,
// the thread, the app's notify rooms and GitHub.
func (d *deployer) runDeploy(c *sdk.Context) (err error) {
	id, err := strconv.ParseInt(string(c.Job.Payload), 10, 64)
	if err != nil {
		return fmt.Errorf("deploy job %d: bad payload: %w", c.Job.JobID, err)
	}
	// Whatever stops the job early (a cancel, a host call failing), the
	// deployment must not stay queued or running forever.
	defer func() {
		if err == nil {
			return
		}
		if dep, gerr := d.records.get(c.Detached(), id); gerr == nil && !dep.Ended() {
			state := StateError
			if c.Err() != nil && !c.ShuttingDown() {
				state = StateCancelled
			}
			_ = d.finish(c, dep, state, err.Error(), "")
		}
	}()
	dep, err := d.records.get(c, id)
	if err != nil {
		return err
	}
	if dep.Ended() {
		return nil // cancelled while it waited
	}
	a, err := d.app(dep.App)
	if err != nil {
		return d.finish(c, dep, StateError, err.Error(), "")
	}
	// Every way a deployment gets here (chat, rollback, a GitHub deployment
	// made outside chat, whose environment is anything GitHub was told)
	// meets the same checks: an environment of the app, and approved in
	// chat when protected.
	if err := envRefusal(a, dep.Env); err != nil {
		return d.finish(c, dep, StateError, err.Error(), "")
	}
	if err := unapproved(a, dep); err != nil {
		return d.finish(c, dep, StateError, err.Error(), "")
	}
	// Someone may have locked the environment while the deploy waited.
	l, err := envLock(c, dep.App, dep.Env)
	if err != nil {
		return err
	}
	if who := lockedBy(l, dep.lockOwner(), d.now()); who != "" {
		return d.finish(c, dep, StateFailure, fmt.Sprintf("%s in %s is %s", dep.App, dep.Env, who), "")
	}
	dep, err = d.records.update(c, id, func(x *Deployment) {
		x.State, x.StartedAt, x.JobID = StateRunning, d.now(), c.Job.JobID
	})
	if err != nil {
		return err
	}
	if err := d.githubStatus(c, dep, StateRunning); err != nil {
		c.Logger().Warn("github status", "error", err)
	}
	d.notify(c, dep, &sdk.Output{Text: fmt.Sprintf("%s is deploying %s/%s to %s (#%d).", dep.Person(), dep.App, dep.RefName(), dep.Env, dep.ID)}, true)
	defer d.keepAlive(c, dep.ID)()

	ctx, cancel := context.WithTimeout(c, a.Timeout)
	defer cancel()
	log := newLogStream(c, dep.ID)
	fmt.Fprintf(log, "chima: deployment #%d of %s/%s to %s (task %s) by %s\n", dep.ID, dep.App, dep.RefName(), dep.Env, dep.Task, who(dep))
	// The exact commit when it is known (GitHub approved it, or a rollback
	// names it), else what the ref points to now. dep.Ref stays for display.
	target := dep.Ref
	if validate.IsFullSHA(dep.SHA) {
		target = dep.SHA
	}
	co, err := d.cache.Prepare(ctx, d.repoURL(a), target)
	if err != nil {
		fmt.Fprintf(log, "chima: %v\n", err)
		log.Close()
		return d.finish(c, dep, d.endState(c, ctx, StateError), "preparing the checkout: "+err.Error(), log.Tail(20))
	}
	defer co.Cleanup()
	dep, err = d.records.update(c, id, func(x *Deployment) { x.SHA = co.SHA })
	if err != nil {
		log.Close()
		return err
	}
	// The log keeps the exact commit, once: a rollback's ref is that commit.
	if dep.refIsSHA() {
		fmt.Fprintf(log, "chima: checked out %s; running the %s provider\n", co.SHA, a.Provider)
	} else {
		fmt.Fprintf(log, "chima: checked out %s at %s; running the %s provider\n", dep.Ref, co.SHA, a.Provider)
	}
	runErr := d.runProvider(ctx, a, dep, co.Dir, log)
	if runErr != nil {
		fmt.Fprintf(log, "chima: %v\n", runErr)
	}
	log.Close()
	if runErr != nil {
		return d.finish(c, dep, d.endState(c, ctx, StateFailure), runErr.Error(), log.Tail(20))
	}
	return d.finish(c, dep, StateSuccess, "", "")
}

// endState tells a cancel or a timeout from a plain failure.
func (d *deployer) endState(c *sdk.Context, ctx context.Context, failed string) string {
	switch {
	case c.ShuttingDown():
		return StateError // interrupted by a restart, not cancelled by anyone
	case c.Err() != nil:
		return StateCancelled
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return StateError
	}
	return failed
}

// finish records the end of a deployment, reports it, and returns what the
// job ends with: nil for a success, an error otherwise. It works on a
// detached context: a cancelled deployment is still recorded and reported.
func (d *deployer) finish(c *sdk.Context, dep *Deployment, state, detail, tail string) error {
	if state == StateError && c.ShuttingDown() {
		detail = "interrupted: Chima stopped while it ran"
	}
	if err := d.report(c, dep, state, detail, tail); err != nil {
		return err
	}
	switch state {
	case StateSuccess:
		return nil
	case StateCancelled:
		return c.Err()
	}
	return errors.New(firstNonEmpty(firstLine(detail), state))
}

// report records the end of a deployment in state with detail, and reports
// it to GitHub, the thread and the app's notify rooms, with tail (the end of
// the log) for a failure. It fails only when the record cannot be written.
func (d *deployer) report(c *sdk.Context, dep *Deployment, state, detail, tail string) error {
	return d.reportEnded(c, dep, state, detail, tail, time.Time{})
}

// reportEnded is report for a deployment that ended at end, known only
// afterwards (its plugin or bot died under it); zero means now.
func (d *deployer) reportEnded(c *sdk.Context, dep *Deployment, state, detail, tail string, end time.Time) error {
	bc := c.Detached()
	atLeast := !end.IsZero()
	if end.IsZero() {
		end = d.now()
	}
	dep, err := d.records.update(bc, dep.ID, func(x *Deployment) {
		x.State, x.Detail, x.FinishedAt = state, detail, end
	})
	if err != nil {
		return err
	}
	if err := d.githubStatus(bc, dep, state); err != nil {
		bc.Logger().Warn("github status", "error", err)
	}
	a, _ := d.app(dep.App)
	var out *sdk.Output
	what := dep.Summary()
	switch state {
	case StateSuccess:
		out = &sdk.Output{Status: sdk.StatusGood, Text: fmt.Sprintf("Deployed %s in %s (#%d).", what, dep.Duration(d.now()), dep.ID)}
		if a != nil && a.EnvURL(dep.Env) != "" {
			out.Text += " " + a.EnvURL(dep.Env)
		}
		if d.canRollBack(bc, dep) {
			rollback := sdk.ActionButton("Rollback", actionRollback, strconv.FormatInt(dep.ID, 10), sdk.ButtonDanger)
			rollback.Command = fmt.Sprintf("rollback %s in %s", dep.App, dep.Env) // to type where buttons cannot show
			out.Buttons = []*sdk.Button{rollback}
		}
	case StateCancelled:
		out = &sdk.Output{Status: sdk.StatusWarning, Text: fmt.Sprintf("Deployment #%d of %s was cancelled after %s.", dep.ID, what, dep.Duration(d.now()))}
	default:
		text := fmt.Sprintf("Deployment #%d of %s failed after %s: %s", dep.ID, what, dep.Duration(d.now()), firstLine(detail))
		// An interrupted deployment did not fail: it was stopped from
		// outside, and its detail says by what.
		if strings.HasPrefix(detail, "interrupted") {
			ran := dep.Duration(d.now()).String()
			switch {
			case atLeast && dep.AliveAt.IsZero():
				ran = "less than " + aliveEvery.String() // never seen alive since it started
			case atLeast:
				ran = "at least " + ran // until it was last seen alive
			}
			text = fmt.Sprintf("Deployment #%d of %s ran for %s and was %s", dep.ID, what, ran, firstLine(detail))
			if dep.StartedAt.IsZero() {
				text = fmt.Sprintf("Deployment #%d of %s was interrupted before it started (%s)", dep.ID, what, firstLine(detail))
			}
		}
		out = &sdk.Output{Status: sdk.StatusDanger, Text: text, Code: tail}
		if u := d.logURL(bc, dep.ID); u != "" {
			out.Fields = []*sdk.Field{{Title: "Full log", Value: u}}
		}
	}
	d.notify(bc, dep, out, true)
	return nil
}

// canRollBack says whether a Rollback button belongs on the success of dep:
// an earlier success of another commit exists to go back to, and dep is not
// itself a rollback (rolling that back would redeploy what was just undone).
func (d *deployer) canRollBack(c *sdk.Context, dep *Deployment) bool {
	if dep.RollbackOf != 0 {
		return false
	}
	current, previous, err := d.rollbackTarget(c, dep.App, dep.Env)
	return err == nil && previous != nil && current.ID == dep.ID
}

// notify posts to the deployment's thread and, when loud, the app's notify
// rooms too.
func (d *deployer) notify(c *sdk.Context, dep *Deployment, out *sdk.Output, loud bool) {
	if dep.Notify.Room != "" {
		if _, err := c.Post(dep.Notify.ref(), out); err != nil {
			c.Logger().Warn("notify thread", "deployment", dep.ID, "error", err)
		}
	}
	if !loud {
		return
	}
	a, err := d.app(dep.App)
	if err != nil {
		return
	}
	for _, r := range a.NotifyTargets() {
		// A bare room means the bot's default adapter; a host that does
		// not say which that is gets the thread's.
		adapter := firstNonEmpty(r.Adapter, d.defaultAdapter, dep.Notify.Adapter)
		if adapter == dep.Notify.Adapter && strings.EqualFold(r.Name, dep.Notify.Room) {
			continue // that room hears it already
		}
		if _, err := c.Post(&sdk.MessageRef{Adapter: adapter, Room: r.Name}, out); err != nil {
			c.Logger().Warn("notify room", "room", r.String(), "deployment", dep.ID, "error", err)
		}
	}
}

// logStream keeps a deployment's output: it appends to the host-kept log in
// batches, remembers the last lines, and shows them as progress in the
// thread on every flush that saw new output. Keeping a chatty provider from
// flooding the chat service is not its job: the bot's outbox coalesces the
// edits of one message within the service's rate limit, for every plugin.
// It works on a detached context: the end of a cancelled or timed-out
// deployment's output (and Chima's own last words about it) must still
// reach the log.
type logStream struct {
	c    *sdk.Context
	name string
	id   int64 // the deployment's

	mu      sync.Mutex
	pending []byte
	partial string
	tail    []string
	changed bool

	stop chan struct{}
	done chan struct{}
}

const (
	logFlushEvery = 500 * time.Millisecond
	logFlushBytes = 32 << 10
	tailKeep      = 40
	progressLines = 8
)

func newLogStream(c *sdk.Context, id int64) *logStream {
	l := &logStream{c: c.Detached(), name: logName(id), id: id, stop: make(chan struct{}), done: make(chan struct{})}
	go l.loop()
	return l
}

// Write takes provider output.
func (l *logStream) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.pending = append(l.pending, p...)
	text := l.partial + string(p)
	lines := strings.Split(text, "\n")
	l.partial = lines[len(lines)-1]
	for _, line := range lines[:len(lines)-1] {
		l.tail = append(l.tail, strings.TrimRight(line, "\r"))
	}
	if len(l.tail) > tailKeep {
		l.tail = append(l.tail[:0:0], l.tail[len(l.tail)-tailKeep:]...)
	}
	l.changed = true
	flush := len(l.pending) >= logFlushBytes
	l.mu.Unlock()
	if flush {
		l.flush()
	}
	return len(p), nil
}

func (l *logStream) flush() {
	l.mu.Lock()
	data := l.pending
	l.pending = nil
	l.mu.Unlock()
	if len(data) == 0 {
		return
	}
	if _, err := l.c.AppendLog(l.name, data); err != nil {
		l.c.Logger().Error("append deploy log", "log", l.name, "error", err)
	}
}

func (l *logStream) loop() {
	defer close(l.done)
	flushT := time.NewTicker(logFlushEvery)
	defer flushT.Stop()
	shown := false
	for {
		select {
		case <-l.stop:
			l.flush()
			// The thread's progress message ends with the last lines, not
			// with what the last tick happened to see, and no longer says
			// "Deploying…"; a deployment too short to have shown progress
			// gets none.
			if shown {
				l.progress("Output", true)
			}
			return
		case <-flushT.C:
			l.flush()
			if l.progress("Deploying…", false) {
				shown = true
			}
		}
	}
}

// progress shows the last lines under title in the thread when they
// changed since last shown, or always, and reports whether it did.
func (l *logStream) progress(title string, always bool) bool {
	l.mu.Lock()
	changed := l.changed
	l.changed = false
	lines := l.tailLocked(progressLines)
	l.mu.Unlock()
	if !changed && !always || lines == "" {
		return false
	}
	out := &sdk.Output{Title: title, Code: lines}
	if !always {
		// While it runs, the progress message offers to stop it; the
		// final one, which replaces it where the chat service edits
		// messages, no longer does.
		cancel := sdk.ActionButton("Cancel", actionCancel, strconv.FormatInt(l.id, 10), sdk.ButtonDanger)
		cancel.Command = fmt.Sprintf("deploy:cancel %d", l.id) // to type where buttons cannot show
		out.Buttons = []*sdk.Button{cancel}
	}
	_ = l.c.Progress("log", out)
	return true
}

// Tail returns the last n lines of output.
func (l *logStream) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tailLocked(n)
}

func (l *logStream) tailLocked(n int) string {
	lines := l.tail
	if l.partial != "" {
		lines = append(lines[:len(lines):len(lines)], l.partial)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close flushes what is left and stops the ticker; it waits for both.
func (l *logStream) Close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// aliveEvery is how often a running deployment notes that it is alive.
const aliveEvery = 5 * time.Second

// keepAlive notes in deployment id's record, every aliveEvery until stop
// is called, that it still runs: if the plugin or the bot dies under it,
// the next plugin ends it at that moment, not at the moment it was found
// (which would count the downtime as deploy time).
func (d *deployer) keepAlive(c *sdk.Context, id int64) (stop func()) {
	bc := c.Detached()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(aliveEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if _, err := d.records.update(bc, id, func(x *Deployment) {
					if x.State == StateRunning {
						x.AliveAt = d.now()
					}
				}); err != nil {
					bc.Logger().Warn("note a running deployment alive", "deployment", id, "error", err)
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}
