package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// parser accepts the standard five fields, an optional leading seconds
// field (six fields), and descriptors (@daily, @hourly, @every 90s).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// maxMissedSteps bounds the walk over the slots missed while the bot was
// down (a seconds schedule down for a year has millions); past it the
// latest missed slot is taken as the step reached, which is only ever
// early, never a slot run twice.
const maxMissedSteps = 1 << 20

// Spec is one configured schedule.
type Spec struct {
	// Name identifies the schedule in the store, the audit and listings.
	Name string
	// Cron is the spec: five fields, six with seconds first, or a
	// descriptor such as @daily or @every 10m.
	Cron string
	// Timezone is an IANA zone name the spec is read in; "" means the
	// process's local zone, as for cron.
	Timezone string
	// Command is the chat command, as typed after the bot's name.
	Command string
	// Room is "adapter:room", or a bare room of the default adapter.
	Room string
	// As is the user id the command runs as, on the room's adapter.
	As string
	// CatchUp runs a slot missed while the bot was down once at start.
	CatchUp bool
	// Plugin, when set, makes this a plugin's schedule (from its
	// manifest): Name is "<plugin>:<name>", and each slot enqueues Job for
	// the plugin instead of running Command.
	Plugin string
	// Job is the job a plugin's schedule enqueues at each slot.
	Job Job
}

// Job is the durable job a plugin's schedule enqueues.
type Job struct {
	// Kind is one of the plugin's job kinds.
	Kind    string
	Payload []byte
	// QueueKey serialises the jobs (the plugin's, unprefixed).
	QueueKey string
	// Notify is where the job reports, "adapter:room" or "" for nowhere;
	// NotifyThread is a thread in it.
	Notify, NotifyThread string
	// Title says what each job is, for people.
	Title string
	// Help says what the schedule does, for listings.
	Help string
}

// equal reports whether a and b describe the same schedule.
func (a Spec) equal(b Spec) bool {
	return a.Name == b.Name && a.Cron == b.Cron && a.Timezone == b.Timezone && a.Command == b.Command &&
		a.Room == b.Room && a.As == b.As && a.CatchUp == b.CatchUp && a.Plugin == b.Plugin &&
		a.Job.Kind == b.Job.Kind && string(a.Job.Payload) == string(b.Job.Payload) && a.Job.QueueKey == b.Job.QueueKey &&
		a.Job.Notify == b.Job.Notify && a.Job.NotifyThread == b.Job.NotifyThread && a.Job.Title == b.Job.Title && a.Job.Help == b.Job.Help
}

// Clock is when a schedule is due: the next slot strictly after t.
type Clock interface {
	Next(t time.Time) time.Time
}

// Parse reads a cron spec in timezone ("" for local time). Errors are
// written for a person fixing the config.
func Parse(spec, timezone string) (Clock, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("empty cron spec")
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, errors.New("put the time zone in timezone, not in the cron spec")
	}
	loc := time.Local
	if timezone != "" {
		l, err := time.LoadLocation(timezone)
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q (use an IANA name like Europe/Berlin or UTC)", timezone)
		}
		loc = l
	}
	full := spec
	if loc != time.Local {
		full = "CRON_TZ=" + loc.String() + " " + spec
	}
	s, err := parser.Parse(full)
	if err != nil {
		return nil, fmt.Errorf("bad cron spec %q: %w", spec, err)
	}
	if every, ok := s.(cron.ConstantDelaySchedule); ok {
		// robfig's @every counts from whenever it is asked; slots must be
		// the same instants for every scheduler and across restarts.
		return aligned{every.Delay}, nil
	}
	return s, nil
}

// aligned fires every d on multiples of d since the Unix epoch.
type aligned struct{ d time.Duration }

func (a aligned) Next(t time.Time) time.Time {
	return t.Truncate(a.d).Add(a.d)
}

// Store is where slots are claimed and their outcomes kept
// (*store.Store).
type Store interface {
	// ClaimScheduleSlot reports whether this call claimed the slot; false
	// means it fired already and must not run.
	ClaimScheduleSlot(ctx context.Context, schedule string, slot time.Time) (bool, error)
	FinishScheduleSlot(ctx context.Context, schedule string, slot time.Time, outcome, requestID string) error
	// LastSlot returns the latest claimed slot and its outcome ("" while
	// it runs), and false when the schedule never fired.
	LastSlot(ctx context.Context, schedule string) (slot time.Time, outcome string, ok bool, err error)
}

// Runner runs the command of a due slot and returns its request id and
// audit outcome.
type Runner func(ctx context.Context, s Spec, slot time.Time) (requestID, outcome string)

// Options configure a Scheduler.
type Options struct {
	Schedules []Spec
	Store     Store
	Run       Runner
	// Now is the clock; default time.Now.
	Now func() time.Time
	// After waits; default time.After. Tests inject both.
	After  func(time.Duration) <-chan time.Time
	Logger *slog.Logger
}

// Scheduler fires the slots of its schedules. Create it with New; plugins'
// schedules come and go with SetPlugin.
type Scheduler struct {
	o Options

	mu      sync.Mutex
	specs   []Spec // config's first, then each plugin's, in the order set
	clock   map[string]Clock
	next    map[string]time.Time // the next slot to fire, once started
	started bool
	changed chan struct{} // wakes Run when the schedules change

	wg sync.WaitGroup
}

// New parses every schedule; an error names the schedule at fault.
func New(o Options) (*Scheduler, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{o: o, specs: slices.Clone(o.Schedules), clock: map[string]Clock{}, next: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	for _, sp := range s.specs {
		c, err := Parse(sp.Cron, sp.Timezone)
		if err != nil {
			return nil, fmt.Errorf("schedule %s: %w", sp.Name, err)
		}
		if _, dup := s.clock[sp.Name]; dup {
			return nil, fmt.Errorf("schedule %s: declared twice", sp.Name)
		}
		s.clock[sp.Name] = c
	}
	return s, nil
}

// Start sets each schedule's next slot after now, and deals with the slots
// missed since its last fired slot: with CatchUp the latest of them fires
// (once, however many were missed), otherwise they are skipped. A schedule
// that never fired has missed nothing.
func (s *Scheduler) Start(ctx context.Context, now time.Time) {
	s.mu.Lock()
	s.started = true
	specs := slices.Clone(s.specs)
	s.mu.Unlock()
	for _, sp := range specs {
		s.begin(ctx, sp, now)
	}
}

// begin sets sp's next slot after now and catches up on the slots it
// missed, as Start says.
func (s *Scheduler) begin(ctx context.Context, sp Spec, now time.Time) {
	s.mu.Lock()
	c := s.clock[sp.Name]
	if c == nil { // removed meanwhile
		s.mu.Unlock()
		return
	}
	s.next[sp.Name] = c.Next(now)
	s.mu.Unlock()
	last, _, ok, err := s.o.Store.LastSlot(ctx, sp.Name)
	if err != nil {
		s.o.Logger.Error("schedule: read last run", "schedule", sp.Name, "error", err)
		return
	}
	if !ok {
		return
	}
	missed, n := latestDue(c, last, now)
	if n == 0 {
		return
	}
	if !sp.CatchUp {
		s.o.Logger.Info("schedule: skipping slots missed while down (catch_up is off)", "schedule", sp.Name, "missed", n, "latest", missed)
		return
	}
	s.o.Logger.Info("schedule: catching up once on slots missed while down", "schedule", sp.Name, "missed", n, "slot", missed)
	s.fire(ctx, sp, missed)
}

// SetPlugin replaces the schedules of plugin (those whose Plugin is it)
// with specs, each named "<plugin>:<name>": a plugin that restarts with a
// new manifest gets its new schedules, and loses those it dropped. A
// schedule that did not change keeps its next slot. A schedule new to a
// running scheduler starts as at Start: a slot it missed since it last
// fired runs once with CatchUp. It returns one error per spec that was
// left out (a bad cron, a name taken), naming it; the others are set.
func (s *Scheduler) SetPlugin(ctx context.Context, plugin string, specs []Spec) []error {
	var errs []error
	clocks := map[string]Clock{}
	var keep []Spec
	for _, sp := range specs {
		sp.Plugin = plugin
		c, err := Parse(sp.Cron, sp.Timezone)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %s: %w", sp.Name, err))
			continue
		}
		if _, dup := clocks[sp.Name]; dup {
			errs = append(errs, fmt.Errorf("schedule %s: declared twice", sp.Name))
			continue
		}
		clocks[sp.Name] = c
		keep = append(keep, sp)
	}
	s.mu.Lock()
	old := map[string]Spec{}
	rest := s.specs[:0:0]
	for _, sp := range s.specs {
		if sp.Plugin == plugin {
			old[sp.Name] = sp
			delete(s.clock, sp.Name)
			continue
		}
		rest = append(rest, sp)
	}
	var added []Spec
	for _, sp := range keep {
		if slices.ContainsFunc(rest, func(o Spec) bool { return o.Name == sp.Name }) {
			errs = append(errs, fmt.Errorf("schedule %s: the name is taken by another schedule", sp.Name))
			continue
		}
		rest = append(rest, sp)
		s.clock[sp.Name] = clocks[sp.Name]
		if prev, ok := old[sp.Name]; ok && prev.equal(sp) {
			delete(old, sp.Name) // unchanged: keeps its next slot
			continue
		}
		delete(old, sp.Name)
		delete(s.next, sp.Name)
		added = append(added, sp)
	}
	for name := range old {
		delete(s.next, name)
	}
	s.specs = rest
	started := s.started
	s.mu.Unlock()
	if started {
		now := s.o.Now()
		for _, sp := range added {
			s.begin(ctx, sp, now)
		}
	}
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return errs
}

// Specs returns the schedules as they are now: the config's, then the
// plugins'.
func (s *Scheduler) Specs() []Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.specs)
}

// latestDue returns the latest slot after after and at or before now, and
// how many there were (0: none).
func latestDue(c Clock, after, now time.Time) (time.Time, int) {
	var latest time.Time
	n := 0
	for t := c.Next(after); !t.After(now) && !t.IsZero(); t = c.Next(t) {
		latest, n = t, n+1
		if n >= maxMissedSteps {
			break
		}
	}
	return latest, n
}

// Tick fires every schedule whose next slot is at or before now: once, for
// the latest slot due, if the scheduler fell behind by several.
func (s *Scheduler) Tick(ctx context.Context, now time.Time) {
	for _, sp := range s.Specs() {
		s.mu.Lock()
		c := s.clock[sp.Name]
		next, started := s.next[sp.Name]
		if !started || next.After(now) {
			s.mu.Unlock()
			continue
		}
		slot := next
		for t := c.Next(slot); !t.After(now) && !t.IsZero(); t = c.Next(t) {
			slot = t
		}
		s.next[sp.Name] = c.Next(now)
		s.mu.Unlock()
		s.fire(ctx, sp, slot)
	}
}

// fire claims slot and, when this scheduler got it, runs the command in
// its own goroutine and records how it ended.
func (s *Scheduler) fire(ctx context.Context, sp Spec, slot time.Time) {
	if ctx.Err() != nil {
		return // stopping: the slot stays free for the next start
	}
	ok, err := s.o.Store.ClaimScheduleSlot(ctx, sp.Name, slot)
	if err != nil {
		s.o.Logger.Error("schedule: claim slot", "schedule", sp.Name, "slot", slot, "error", err)
		return
	}
	if !ok {
		s.o.Logger.Debug("schedule: slot fired elsewhere", "schedule", sp.Name, "slot", slot)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx := context.WithoutCancel(ctx) // the outcome is recorded even when stopping
		id, outcome := s.o.Run(ctx, sp, slot)
		if err := s.o.Store.FinishScheduleSlot(ctx, sp.Name, slot, outcome, id); err != nil {
			s.o.Logger.Error("schedule: record outcome", "schedule", sp.Name, "slot", slot, "error", err)
		}
	}()
}

// Wait blocks until the commands fired so far have ended.
func (s *Scheduler) Wait() { s.wg.Wait() }

// Run starts the scheduler at the current time and fires slots as they
// come due until ctx ends; then it waits for the commands it fired.
func (s *Scheduler) Run(ctx context.Context) {
	defer s.wg.Wait()
	s.Start(ctx, s.o.Now())
	for {
		var due <-chan time.Time // none: wait for a change
		if wait, ok := s.untilNext(s.o.Now()); ok {
			due = s.o.After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
			continue
		case <-due:
		}
		s.Tick(ctx, s.o.Now())
	}
}

// untilNext is how long until the earliest next slot; false with no
// schedule.
func (s *Scheduler) untilNext(now time.Time) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first time.Time
	for _, t := range s.next {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return max(first.Sub(now), 0), true
}

// Status is one schedule as listed.
type Status struct {
	Spec
	// Next is the next slot.
	Next time.Time
	// LastSlot and LastOutcome are the latest fired slot and how it ended
	// ("" while it runs); LastSlot is zero when it never fired.
	LastSlot    time.Time
	LastOutcome string
}

// List returns every schedule, in config order, with its next slot after
// now and its last fired slot.
func List(ctx context.Context, specs []Spec, st Store, now time.Time) ([]Status, error) {
	out := make([]Status, 0, len(specs))
	for _, sp := range specs {
		c, err := Parse(sp.Cron, sp.Timezone)
		if err != nil {
			return nil, fmt.Errorf("schedule %s: %w", sp.Name, err)
		}
		status := Status{Spec: sp, Next: c.Next(now)}
		if st != nil {
			slot, outcome, ok, err := st.LastSlot(ctx, sp.Name)
			if err != nil {
				return nil, err
			}
			if ok {
				status.LastSlot, status.LastOutcome = slot, outcome
			}
		}
		out = append(out, status)
	}
	return out, nil
}

// Format renders statuses as lines for chat and the terminal.
func Format(statuses []Status) string {
	if len(statuses) == 0 {
		return "No schedules are configured."
	}
	var b strings.Builder
	for _, s := range statuses {
		loc := s.Next.Location()
		if s.Plugin != "" {
			fmt.Fprintf(&b, "%s: a %s job of the %s plugin, %s", s.Name, s.Job.Kind, s.Plugin, s.Cron)
		} else {
			fmt.Fprintf(&b, "%s: `%s` in %s as %s, %s", s.Name, s.Command, s.Room, s.As, s.Cron)
		}
		if s.Timezone != "" {
			fmt.Fprintf(&b, " (%s)", s.Timezone)
		}
		if s.CatchUp {
			b.WriteString(", catches up")
		}
		if s.Job.Help != "" {
			fmt.Fprintf(&b, " — %s", s.Job.Help)
		}
		fmt.Fprintf(&b, "\n  next: %s", s.Next.Format("2006-01-02 15:04:05 MST"))
		switch {
		case s.LastSlot.IsZero():
			b.WriteString("; last: never ran")
		case s.LastOutcome == "":
			fmt.Fprintf(&b, "; last: %s, running", s.LastSlot.In(loc).Format("2006-01-02 15:04:05 MST"))
		default:
			fmt.Fprintf(&b, "; last: %s, %s", s.LastSlot.In(loc).Format("2006-01-02 15:04:05 MST"), s.LastOutcome)
		}
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}
