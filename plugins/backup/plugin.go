package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chimaops/chima/plugins/internal/configpath"
	"github.com/chimaops/chima/sdk"
)

// Job kinds, permissions and the grammar of restore.
const (
	jobBackup  = "backup"
	jobVerify  = "verify"
	jobRestore = "restore"

	permissionBackup  = "backup"
	permissionRestore = "backup:restore"

	nameRE         = `[a-z0-9][-_.a-z0-9]*`
	restorePattern = `(?:backup:)?restore\s+(?P<target>` + nameRE + `)(?:\s+(?P<snapshot>[0-9a-f]{4,64}|latest))?` +
		`(?:\s+(?:to\s+(?P<to>` + nameRE + `)|(?P<inplace>in\s+place)(?:\s+confirm\s+(?P<confirm>` + nameRE + `))?))?`
)

// backuper holds the plugin's configuration.
type backuper struct {
	mu     sync.RWMutex
	plugin *sdk.Plugin
	// settings are filled by the SDK before configure and validate.
	settings *settings
	targets  map[string]*Target
	restic   *restic
	version  string
	// defaultAdapter is the adapter a bare room means.
	defaultAdapter string
	// now is the clock backup:status and the freshness check read;
	// time.Now when nil (tests move it a day on).
	now func() time.Time
}

// clock is the time now by b's clock.
func (b *backuper) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// payload is what the plugin's jobs carry.
type payload struct {
	Target   string `json:"target"`
	Snapshot string `json:"snapshot,omitempty"`
	By       string `json:"by,omitempty"`
	Schedule string `json:"schedule,omitempty"`
	// Into is a restore's destination: "" for the target's scratch place,
	// else a target whose data the restore replaces (approved).
	Into       string `json:"into,omitempty"`
	ApprovedBy string `json:"approved_by,omitempty"`
}

func (b *backuper) spec() *sdk.Plugin {
	b.settings = &settings{}
	p := &sdk.Plugin{
		Name:        "backup",
		Version:     "0.1.0",
		Description: "Backs up databases and directories with restic, lists, verifies by restoring, and restores safely.",
		Settings:    b.settings,
		Configure:   b.configure,
		Validate:    b.validate,
		Commands: []sdk.Command{
			{
				Name: "backup", Usage: "backup <target>",
				Help:       "Takes a backup of a target now; two backups of one target queue, never run at once.",
				Args:       []sdk.Arg{{Name: "target", Required: true, Pattern: nameRE, Help: "a target of the backup plugin's settings"}},
				Permission: permissionBackup, Examples: []string{"backup demo-db"},
				Run: b.cmdBackup,
			},
			{
				Name: "backups", Usage: "backups <target>",
				Help:     "Lists a target's recent backups: id, time, size, who or which schedule took it, verification.",
				Args:     []sdk.Arg{{Name: "target", Required: true, Pattern: nameRE}},
				Examples: []string{"backups demo-db"},
				Run:      b.cmdBackups,
			},
			{
				Name: "backup:verify", Usage: "backup:verify <target> [<snapshot>]",
				Help: "Restores a backup (the latest by default) into the target's scratch place and checks it: row counts per table, integrity, files and bytes.",
				Args: []sdk.Arg{
					{Name: "target", Required: true, Pattern: nameRE},
					{Name: "snapshot", Pattern: `[0-9a-f]{4,64}|latest`, Help: "a snapshot id or its start; latest by default"},
				},
				Permission: permissionBackup, Examples: []string{"backup:verify demo-db", "backup:verify demo-db 4f1c2a9e"},
				Run: b.cmdVerify,
			},
			{
				Name: "backup:restore", Aliases: []string{"restore"}, Usage: "backup:restore <target> [<snapshot>] [to <target> | in place confirm <target>]",
				Help:    "Restores a backup into the target's scratch place. Over a target's own data (`in place`, or `to` a target) only once another person approves, and after a safety backup of what is there; `in place` also wants the target's name typed back after `confirm`.",
				Pattern: restorePattern,
				Args: []sdk.Arg{
					{Name: "target", Required: true}, {Name: "snapshot"}, {Name: "to"}, {Name: "inplace"},
					{Name: "confirm", Help: "the target's name again, to restore it in place"},
				},
				Permission: permissionRestore,
				Examples:   []string{"backup:restore demo-db", "backup:restore demo-db 4f1c2a9e", "backup:restore demo-db latest in place confirm demo-db"},
				Run:        b.cmdRestore,
			},
			{
				Name: "backup:forget", Usage: "backup:forget <target> [confirm]",
				Help: "Shows what the target's retention policy would remove (a dry run); with `confirm`, removes it and prunes the repository.",
				Args: []sdk.Arg{
					{Name: "target", Required: true, Pattern: nameRE},
					{Name: "confirm", Type: sdk.Enum, Enum: []string{"confirm"}, Help: "apply the policy instead of showing it"},
				},
				Permission: permissionBackup, Examples: []string{"backup:forget demo-db", "backup:forget demo-db confirm"},
				Run: b.cmdForget,
			},
			{
				Name: "backup:status", Usage: "backup:status",
				Help: "Shows the health of every target: the last good backup, the last verification, the next scheduled runs, and what is overdue.",
				Run:  b.cmdStatus,
			},
		},
		Jobs: []sdk.JobHandler{
			{Kind: jobForget, Run: b.runForget},
			{Kind: jobFreshness, Run: b.runFreshness},
			{Kind: jobBackup, Run: b.runBackup},
			{Kind: jobVerify, Run: b.runVerify},
			{Kind: jobRestore, Run: b.runRestore},
		},
		OnJobInterrupted: b.onInterrupted,
	}
	b.plugin = p
	return p
}

// settings are the plugin's settings (chima.yaml plugins[].settings), which
// the SDK decodes.
type settings struct {
	// Targets are the things to back up, by name.
	Targets map[string]*Target `settings:"targets"`
	// Restic is the restic binary; restic on $PATH when empty.
	Restic string `settings:"restic"`
	// CacheDir is restic's cache; a folder in the temporary directory when
	// empty.
	CacheDir string `settings:"cache_dir"`
	// ConfigDir is chima.yaml's folder, which relative paths are against.
	ConfigDir string `settings:"chima_config_dir"`
	// DefaultAdapter is the adapter a bare room means.
	DefaultAdapter string `settings:"chima_default_adapter"`
}

// check checks the decoded settings' targets.
func check(s *settings, strict bool) (map[string]*Target, []sdk.Problem) {
	return checkTargets(s.Targets, s.ConfigDir, os.Getenv, strict)
}

// validate is the plugin's Validate: it checks the settings, the files they
// name and restic's version, and keeps nothing.
func (b *backuper) validate(map[string]string) error {
	targets, problems := check(b.settings, true)
	if bin, _, err := resticBin(b.settings.Restic, b.settings.ConfigDir); err != nil {
		problems = append(problems, sdk.Problem{Key: "restic", Message: err.Error()})
	} else {
		problems = append(problems, checkOptionsKnown(targets, bin)...)
	}
	if len(problems) > 0 {
		return &sdk.SettingsError{Problems: problems}
	}
	return nil
}

// configure checks the settings and restic, and declares each target's
// schedules.
func (b *backuper) configure(map[string]string) error {
	s := b.settings
	targets, problems := check(s, false)
	bin, version, err := resticBin(s.Restic, s.ConfigDir)
	if err != nil {
		problems = append(problems, sdk.Problem{Key: "restic", Message: err.Error()})
	} else {
		problems = append(problems, checkOptionsKnown(targets, bin)...)
	}
	if len(problems) > 0 {
		return &sdk.SettingsError{Problems: problems}
	}
	cache := s.CacheDir
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "chima-restic-cache-"+strconv.Itoa(os.Getuid()))
	} else {
		cache = configpath.Resolve(s.ConfigDir, cache)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.targets, b.version, b.defaultAdapter = targets, version, s.DefaultAdapter
	b.restic = &restic{bin: bin, cacheDir: cache}
	if b.plugin != nil {
		b.plugin.Schedules = b.schedules()
	}
	return nil
}

// schedules are the targets' scheduled backups and verifications.
func (b *backuper) schedules() []sdk.Schedule {
	names := make([]string, 0, len(b.targets))
	for n := range b.targets {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []sdk.Schedule
	alerts := false
	for _, n := range names {
		t := b.targets[n]
		var notify *sdk.MessageRef
		if t.Room != "" {
			notify = roomRef(t.Room, b.defaultAdapter)
			if t.AlertAfter > 0 {
				alerts = true
			}
		}
		if t.Schedule != "" {
			name := "backup-" + n
			pl, _ := json.Marshal(payload{Target: n, Schedule: name})
			out = append(out, sdk.Schedule{
				Name: name, Cron: t.Schedule, JobKind: jobBackup, Payload: pl, QueueKey: queueKey(n), Notify: notify,
				Title: "scheduled backup of " + n, Help: "backs up " + n + " (" + t.Kind + ")",
			})
		}
		if t.VerifySchedule != "" {
			name := "verify-" + n
			pl, _ := json.Marshal(payload{Target: n, Schedule: name})
			out = append(out, sdk.Schedule{
				Name: name, Cron: t.VerifySchedule, JobKind: jobVerify, Payload: pl, QueueKey: queueKey(n), Notify: notify,
				Title: "scheduled verification of " + n, Help: "restores the latest backup of " + n + " into scratch and checks it",
			})
		}
	}
	if alerts {
		out = append(out, sdk.Schedule{
			Name: "freshness", Cron: freshnessEvery, JobKind: jobFreshness, QueueKey: "backup-freshness",
			Title: "freshness check of the backups", Help: "warns a target's room when its last verified backup is older than its alert_after",
		})
	}
	return out
}

// queueKey serialises every job of one target: backups, verifications and
// restores of it run one at a time, in order.
func queueKey(target string) string { return "backup:" + target }

// target looks a target up, or says which there are.
func (b *backuper) target(name string) (*Target, *restic, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.targets[name]
	if !ok {
		names := make([]string, 0, len(b.targets))
		for n := range b.targets {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, nil, &sdk.UserError{Summary: fmt.Sprintf("no backup target %q", name), Detail: "targets: " + strings.Join(names, ", "), Argument: "target"}
	}
	return t, b.restic, nil
}

// who names the person who asked.
func who(c *sdk.Context) string {
	u := c.User()
	if u == nil {
		return ""
	}
	for _, s := range []string{u.Name, u.ID} {
		if s != "" {
			return s
		}
	}
	return ""
}

// enqueue queues a job for a target and says so, and behind what.
func (b *backuper) enqueue(c *sdk.Context, kind, what string, p payload) error {
	ahead, _ := c.Jobs(sdk.JobFilter{QueueKey: queueKey(p.Target), States: []sdk.JobState{sdk.JobQueued, sdk.JobRunning}})
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	id, err := c.Enqueue(kind, data, sdk.EnqueueOptions{QueueKey: queueKey(p.Target), Title: what})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Queued the %s (job #%d).", what, id)
	if len(ahead) > 0 {
		msg = fmt.Sprintf("Queued the %s (job #%d), behind job #%d: one job of %s runs at a time.", what, id, ahead[0].ID, p.Target)
	}
	return c.Reply("%s", msg)
}

func (b *backuper) cmdBackup(c *sdk.Context) error {
	t, _, err := b.target(c.Arg("target"))
	if err != nil {
		return err
	}
	return b.enqueue(c, jobBackup, "backup of "+t.Name, payload{Target: t.Name, By: who(c)})
}

func (b *backuper) cmdVerify(c *sdk.Context) error {
	t, _, err := b.target(c.Arg("target"))
	if err != nil {
		return err
	}
	return b.enqueue(c, jobVerify, "verification of "+t.Name, payload{Target: t.Name, Snapshot: c.Arg("snapshot"), By: who(c)})
}

func (b *backuper) cmdRestore(c *sdk.Context) error {
	t, _, err := b.target(c.Arg("target"))
	if err != nil {
		return err
	}
	into := c.Arg("to")
	if c.Arg("inplace") != "" {
		into = t.Name
		// The target's name typed back, before anything else is asked.
		if c.Arg("confirm") != t.Name {
			return c.ReplyOutput(typeBack(t.Name, c.Arg("snapshot"), c.Arg("confirm")))
		}
	}
	p := payload{Target: t.Name, Snapshot: c.Arg("snapshot"), By: who(c), Into: into}
	if into == "" {
		return b.enqueue(c, jobRestore, "restore of "+t.Name+" into scratch", p)
	}
	dest, _, err := b.target(into)
	if err != nil {
		return err
	}
	if dest.Kind != t.Kind {
		return sdk.Errorf("cannot restore %s (%s) into %s (%s): not the same kind", t.Name, t.Kind, dest.Name, dest.Kind)
	}
	// Over live data: never without another person's approval.
	a := c.Approval()
	if a == nil {
		reason := fmt.Sprintf("restoring %s over %s replaces the data of %s (a safety backup is taken first)", t.Name, dest.Name, dest.Name)
		if dest.Name == t.Name {
			reason = fmt.Sprintf("restoring %s in place replaces its live data (a safety backup is taken first)", t.Name)
		}
		return sdk.NeedApproval(sdk.ApprovalOptions{Reason: reason})
	}
	p.ApprovedBy = approvers(a)
	return b.enqueue(c, jobRestore, "restore of "+t.Name+" over "+dest.Name, p)
}

// typeBack is the answer to an in-place restore whose target was not typed
// back after `confirm` (typed is what was, if anything): nothing is
// restored, and it gives the exact command to type.
func typeBack(target, snapshot, typed string) *sdk.Output {
	command := "backup:restore " + target
	if snapshot != "" {
		command += " " + snapshot
	}
	command += " in place confirm " + target
	text := fmt.Sprintf("Nothing was restored. Restoring %s in place replaces its live data: type its name back to go ahead: `%s`", target, command)
	if typed != "" {
		text = fmt.Sprintf("Nothing was restored: %q is not %s. Restoring %s in place replaces its live data: type its name back to go ahead: `%s`", typed, target, target, command)
	}
	return &sdk.Output{Status: sdk.StatusWarning, Text: text}
}

// approvers names who approved.
func approvers(a *sdk.Approval) string {
	names := a.Approvers
	if len(names) == 0 {
		return "an approver"
	}
	return strings.Join(names, ", ")
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// decode reads a job's payload.
func decode(c *sdk.Context) (payload, error) {
	var p payload
	if err := json.Unmarshal(c.Job.Payload, &p); err != nil {
		return p, fmt.Errorf("%s job %d: bad payload: %w", c.Job.Kind, c.Job.JobID, err)
	}
	if p.Target == "" {
		return p, errors.New("job payload names no target")
	}
	return p, nil
}
