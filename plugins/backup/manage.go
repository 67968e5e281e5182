package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/chimaops/chima/sdk"
)

// jobForget applies a target's retention policy.
const jobForget = "forget"

// forgetGroup is one group of restic forget --json's answer.
type forgetGroup struct {
	Keep   []snapshot `json:"keep"`
	Remove []snapshot `json:"remove"`
}

// cmdForget shows what the retention policy would remove (a dry run), or
// with `confirm` queues the job that applies it.
func (b *backuper) cmdForget(c *sdk.Context) error {
	t, r, err := b.target(c.Arg("target"))
	if err != nil {
		return err
	}
	if t.Retention.empty() {
		return c.Reply("%s has no retention policy: every backup is kept. Set retention: {keep_last, keep_daily, keep_weekly, keep_monthly} on the target.", t.Name)
	}
	if c.Arg("confirm") != "" {
		return b.enqueue(c, jobForget, "retention of "+t.Name, payload{Target: t.Name, By: who(c)})
	}
	args := append([]string{"forget", "--dry-run", "--tag", targetTag(t), "--group-by", "paths"}, t.Retention.args()...)
	out, err := r.run(c, t, runOpts{}, args...)
	if errors.Is(err, ErrNoRepository) && t.Init {
		return c.Reply("%s has no backup yet: the retention policy has nothing to remove.", t.Name)
	}
	if err != nil {
		return sdk.Errorf("cannot apply the retention policy of %s: %s", t.Name, describe(t, err))
	}
	var groups []forgetGroup
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "[") {
			_ = json.Unmarshal([]byte(line), &groups)
		}
	}
	var keep, remove []snapshot
	for _, g := range groups {
		keep = append(keep, g.Keep...)
		remove = append(remove, g.Remove...)
	}
	policy := strings.Join(t.Retention.args(), " ")
	if len(remove) == 0 {
		return c.Reply("The retention policy of %s (%s) removes nothing now: it keeps all %d backups.", t.Name, policy, len(keep))
	}
	sort.Slice(remove, func(i, j int) bool { return remove[i].Time.After(remove[j].Time) })
	var rows [][]string
	for _, s := range remove {
		size := "?"
		if s.Summary != nil {
			size = human(s.Summary.TotalBytesProcessed)
		}
		rows = append(rows, []string{s.ShortID, s.Time.UTC().Format("2006-01-02 15:04:05"), size})
	}
	return c.ReplyOutput(&sdk.Output{
		Title: fmt.Sprintf("Dry run: the retention policy of %s (%s) would remove %d of %d backups", t.Name, policy, len(remove), len(remove)+len(keep)),
		Code:  renderTable([]string{"ID", "TAKEN (UTC)", "SIZE"}, rows),
		Text:  fmt.Sprintf("Nothing was removed. `backup:forget %s confirm` applies it. Backups the anomaly guard marked suspicious are neither counted nor removed.", t.Name),
	})
}

// runForget is the job that applies a target's retention policy.
func (b *backuper) runForget(c *sdk.Context) error {
	p, err := decode(c)
	if err != nil {
		return err
	}
	t, r, err := b.target(p.Target)
	if err != nil {
		return err
	}
	removed, err := b.forget(c, r, t)
	if err != nil {
		return b.failed(c, "Retention of "+t.Name, t, err)
	}
	return c.ReplyOutput(&sdk.Output{Status: sdk.StatusGood, Text: fmt.Sprintf("The retention policy of %s removed %s and pruned the repository.", t.Name, plural(removed, "backup"))})
}

// cmdStatus shows the health of every target: the last good backup, the
// last verification, the next scheduled runs.
func (b *backuper) cmdStatus(c *sdk.Context) error {
	b.mu.RLock()
	names := make([]string, 0, len(b.targets))
	for n := range b.targets {
		names = append(names, n)
	}
	targets := b.targets
	b.mu.RUnlock()
	sort.Strings(names)
	now := b.clock()
	var rows [][]string
	var warnings []string
	for _, n := range names {
		t := targets[n]
		l, err := getLast(c, n)
		if err != nil {
			return err
		}
		lastBackup, verified := "never", "never"
		if l.Backup != nil {
			lastBackup = fmt.Sprintf("%s ago (%s, %s)", ago(now, l.Backup.Time), short(l.Backup.ID), human(l.Backup.Size))
		}
		if l.Failed != "" && (l.Backup == nil || l.FailedAt.After(l.Backup.Time)) {
			lastBackup += ", last attempt FAILED"
			warnings = append(warnings, fmt.Sprintf("the last backup of %s failed %s ago: %s", n, ago(now, l.FailedAt), l.Failed))
		}
		if v := l.Verified; v != nil {
			state := "ok"
			if !v.OK {
				state = "FAILED"
				warnings = append(warnings, fmt.Sprintf("the last verification of %s failed: %s", n, v.Detail))
			}
			verified = fmt.Sprintf("%s %s ago (%s, restore %s)", state, ago(now, v.Time), short(l.VerifiedID), (time.Duration(v.RestoreMS) * time.Millisecond).String())
		}
		if since := stale(now, t, l); since != "" {
			warnings = append(warnings, fmt.Sprintf("no verified backup of %s %s (alert_after %s)", n, since, t.AlertAfter))
		}
		rows = append(rows, []string{n, t.Kind, lastBackup, verified, nextRuns(now, t)})
	}
	out := &sdk.Output{Title: "Backup targets", Code: renderTable([]string{"TARGET", "KIND", "LAST GOOD BACKUP", "LAST VERIFICATION", "NEXT"}, rows)}
	if len(warnings) > 0 {
		out.Status = "warning"
		out.Text = "⚠ " + strings.Join(warnings, "\n⚠ ")
	}
	return c.ReplyOutput(out)
}

// nextRuns says when t's schedules next fire.
func nextRuns(now time.Time, t *Target) string {
	var parts []string
	for what, spec := range map[string]string{"backup": t.Schedule, "verify": t.VerifySchedule} {
		if spec == "" {
			continue
		}
		if s, err := cronParser.Parse(spec); err == nil {
			parts = append(parts, what+" "+s.Next(now).UTC().Format("01-02 15:04 UTC"))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "not scheduled"
	}
	return strings.Join(parts, ", ")
}

// ago renders how long ago t was, for people.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// jobFreshness checks the targets' alert_after and warns their rooms.
const jobFreshness = "freshness"

// freshnessEvery is how often the freshness of the targets is checked.
const freshnessEvery = "@every 15m"

// stale says since when t has had no good verification, when that is
// longer than its alert_after; "" when it is fresh (or has no threshold).
func stale(now time.Time, t *Target, l *lastState) string {
	if t.AlertAfter <= 0 {
		return ""
	}
	if l.Verified != nil && l.Verified.OK && now.Sub(l.Verified.Time) <= t.AlertAfter {
		return ""
	}
	if l.Verified == nil || !l.Verified.OK {
		return "ever"
	}
	return "for " + ago(now, l.Verified.Time)
}

// runFreshness is the scheduled check: a target whose last verified backup
// is older than its alert_after gets one warning in its room, until it is
// verified again.
func (b *backuper) runFreshness(c *sdk.Context) error {
	b.mu.RLock()
	targets := make([]*Target, 0, len(b.targets))
	for _, t := range b.targets {
		targets = append(targets, t)
	}
	adapter := b.defaultAdapter
	b.mu.RUnlock()
	sort.Slice(targets, func(i, j int) bool { return targets[i].Name < targets[j].Name })
	now := b.clock()
	for _, t := range targets {
		if t.Room == "" || t.AlertAfter <= 0 {
			continue
		}
		l, err := getLast(c, t.Name)
		if err != nil {
			return err
		}
		since := stale(now, t, l)
		key := "alerted/" + t.Name
		mark := l.VerifiedID // one alert per last verification
		if since == "" {
			continue
		}
		if v, ok, _ := c.KV().Get(key); ok && string(v) == "v:"+mark {
			continue
		}
		ref := roomRef(t.Room, adapter)
		text := fmt.Sprintf("⚠ No verified backup of %s %s (alert_after %s). `backup:status` shows the targets; `backup:verify %s` checks the latest backup.", t.Name, since, t.AlertAfter, t.Name)
		if _, err := c.Post(ref, &sdk.Output{Status: sdk.StatusWarning, Text: text}); err != nil {
			return err
		}
		if err := c.KV().Set(key, []byte("v:"+mark)); err != nil {
			return err
		}
	}
	return nil
}

// roomRef is the message ref of a room named "room" or "adapter:room".
func roomRef(room, defaultAdapter string) *sdk.MessageRef {
	adapter, name, ok := strings.Cut(room, ":")
	if !ok {
		adapter, name = defaultAdapter, room
	}
	return &sdk.MessageRef{Adapter: adapter, Room: strings.TrimPrefix(name, "#")}
}
