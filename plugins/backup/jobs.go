package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chimaops/chima/sdk"
)

// progressEvery is the least time between two progress edits of a backup.
const progressEvery = time.Second

// backupStatus is one of restic backup's --json status or summary lines.
type backupStatus struct {
	Type             string  `json:"message_type"`
	PercentDone      float64 `json:"percent_done"`
	TotalFiles       int64   `json:"total_files"`
	FilesDone        int64   `json:"files_done"`
	TotalBytes       int64   `json:"total_bytes"`
	BytesDone        int64   `json:"bytes_done"`
	SecondsRemaining int64   `json:"seconds_remaining"`

	SnapshotID          string  `json:"snapshot_id"`
	DataAdded           int64   `json:"data_added"`
	TotalFilesProcessed int64   `json:"total_files_processed"`
	TotalBytesProcessed int64   `json:"total_bytes_processed"`
	TotalDuration       float64 `json:"total_duration"`
}

// progressText renders a status line for people. A dump restic reads from
// a command has no total: expected, the size of the target's previous
// backup, and elapsed, the time since restic started, then give an
// estimated percent and ETA, marked "≈" (0 for no estimate).
func (s backupStatus) progressText(expected int64, elapsed time.Duration) string {
	var parts []string
	estimated := s.TotalBytes == 0 && s.PercentDone == 0 && expected > 0 && s.BytesDone > 0
	switch {
	case s.TotalBytes > 0:
		parts = append(parts, fmt.Sprintf("%s of %s", human(s.BytesDone), human(s.TotalBytes)))
	case estimated:
		parts = append(parts, fmt.Sprintf("%s of ≈%s (the previous backup's size)", human(s.BytesDone), human(expected)))
	default:
		parts = append(parts, human(s.BytesDone)+" read")
	}
	if s.TotalFiles > 1 {
		parts = append(parts, fmt.Sprintf("%d of %d files", s.FilesDone, s.TotalFiles))
	}
	const maxETA = 30 * 24 * time.Hour
	switch {
	case s.PercentDone > 0:
		parts = append(parts, fmt.Sprintf("%.0f%%", s.PercentDone*100))
		if eta := time.Duration(s.SecondsRemaining) * time.Second; eta > 0 && eta < maxETA {
			parts = append(parts, "ETA "+eta.String())
		}
	case estimated:
		// The dump may outgrow the last one: never 100% before it ends.
		frac := min(float64(s.BytesDone)/float64(expected), 0.99)
		parts = append(parts, fmt.Sprintf("≈%.0f%%", frac*100))
		if left := expected - s.BytesDone; left > 0 && elapsed > 0 {
			eta := time.Duration(float64(elapsed) * float64(left) / float64(s.BytesDone)).Round(time.Second)
			if eta > 0 && eta < maxETA {
				parts = append(parts, "ETA ≈"+eta.String())
			}
		}
	}
	return strings.Join(parts, ", ")
}

// human renders a byte count.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// describe names the error of a restic run for people.
func describe(t *Target, err error) string {
	switch {
	case errors.Is(err, ErrNoRepository):
		hint := ""
		if backendOf(t.Repository) == "s3" {
			hint = " (restic init also creates the bucket when it is missing)"
		}
		return fmt.Sprintf("the repository of %s does not exist (%s): create it with `restic init`, or set `init: true` on the target%s", t.Name, repoName(t), hint)
	case errors.Is(err, ErrWrongPassword):
		return fmt.Sprintf("wrong password for the repository of %s (%s): check %s", t.Name, repoName(t), passwordSource(t))
	case errors.Is(err, ErrAccessDenied):
		return fmt.Sprintf("the storage of the repository of %s (%s) refused access with its credentials: check %s, and that the key may read and write there", t.Name, repoName(t), credentialSource(t))
	case errors.Is(err, ErrLocked):
		return fmt.Sprintf("the repository of %s is locked by another restic; if none runs, `restic unlock` removes a stale lock", t.Name)
	}
	return err.Error()
}

// repoName shows a repository without anything that may be a credential:
// the user and password of a URL's authority (rest:https://user:pass@host/)
// become "…".
func repoName(t *Target) string {
	repo := t.Repository
	scheme, rest, ok := strings.Cut(repo, "://")
	if !ok {
		return repo
	}
	authority, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = "…" + authority[i:]
	}
	if path != "" || strings.HasSuffix(rest, "/") {
		return scheme + "://" + authority + "/" + path
	}
	return scheme + "://" + authority
}

// credentialSource names where t's backend credentials come from, for a
// message about their refusal.
func credentialSource(t *Target) string {
	if len(t.RepositoryEnv) == 0 {
		return "the backend's credentials: give them with repository_env (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for S3) naming the plugin's secrets"
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(t.RepositoryEnv)) {
		parts = append(parts, fmt.Sprintf("the secret %s (%s)", t.RepositoryEnv[name], name))
	}
	return strings.Join(parts, " and ")
}

func passwordSource(t *Target) string {
	if t.PasswordEnv != "" {
		return "the secret " + t.PasswordEnv
	}
	return "the password file " + t.PasswordFile
}

// repoInit serialises the creation of each repository: two targets that
// share one must not both create it at once.
var repoInit sync.Map // repository → *sync.Mutex

// ensureRepo creates t's repository when it is missing and t says init.
func ensureRepo(ctx context.Context, r *restic, t *Target) error {
	if !t.Init {
		return nil
	}
	mu, _ := repoInit.LoadOrStore(t.Repository, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	_, err := r.run(ctx, t, runOpts{}, "cat", "config", "--no-lock")
	if errors.Is(err, ErrNoRepository) {
		if _, err := r.run(ctx, t, runOpts{}, "init"); err != nil {
			return err
		}
		return nil
	}
	return err
}

// tagSafe makes a value fit in a restic tag (no commas).
func tagSafe(s string) string { return strings.NewReplacer(",", " ", "\n", " ").Replace(s) }

// takeBackup backs t up and records the snapshot; progress edits one
// message.
func (b *backuper) takeBackup(c *sdk.Context, r *restic, t *Target, p payload) (*record, error) {
	start := time.Now()
	plan, err := planBackup(c, t)
	if err != nil {
		return nil, err
	}
	defer plan.cleanup()
	tags := []string{"chima", targetTag(t)}
	switch {
	case p.Schedule != "":
		tags = append(tags, "schedule:"+tagSafe(p.Schedule))
	case p.By != "":
		tags = append(tags, "by:"+tagSafe(p.By))
	}
	args, err := guardDump(append([]string{"backup", "--tag", strings.Join(tags, ",")}, plan.args...))
	if err != nil {
		return nil, err
	}
	// A dump's size is unknown to restic until it ends: the previous
	// backup's gives the estimate its progress shows.
	var expected int64
	if prev, err := getLast(c, t.Name); err == nil && prev.Backup != nil {
		expected = prev.Backup.Size
	}
	var summary backupStatus
	var last time.Time
	began := time.Now()
	onStdout := func(line []byte) {
		var s backupStatus
		if json.Unmarshal(line, &s) != nil {
			return
		}
		switch s.Type {
		case "summary":
			summary = s
		case "status":
			if time.Since(last) < progressEvery {
				return
			}
			last = time.Now()
			_ = c.Progress("backup", &sdk.Output{Title: "Backing up " + t.Name + "…", Text: s.progressText(expected, time.Since(began))})
		}
	}
	type counted struct {
		rows rowCounts
		err  error
	}
	var counts chan counted
	countErr := ""
	if plan.count != nil {
		counts = make(chan counted, 1)
		go func() {
			rows, err := plan.count()
			counts <- counted{rows, err}
		}()
	}
	_, err = r.run(c, t, runOpts{env: plan.env, onStdout: onStdout}, args...)
	if errors.Is(err, ErrNoRepository) && t.Init {
		// The first backup creates the repository (restic opens it
		// before it starts the dump, so nothing was read yet).
		if err := ensureRepo(c, r, t); err != nil {
			return nil, err
		}
		_, err = r.run(c, t, runOpts{env: plan.env, onStdout: onStdout}, args...)
	}
	if counts != nil {
		got := <-counts
		plan.rows = got.rows
		if got.err != nil {
			countErr = got.err.Error()
		}
	}
	if err != nil {
		return nil, err
	}
	if plan.counted != nil {
		rows, err := plan.counted()
		plan.rows = rows
		if err != nil {
			countErr = err.Error()
		}
	}
	if summary.SnapshotID == "" {
		return nil, errors.New("restic backup ended without a snapshot")
	}
	rec := &record{
		ID: summary.SnapshotID, Target: t.Name, Time: start.UTC(), By: p.By, Schedule: p.Schedule,
		File: plan.file, Rows: plan.rows, Size: summary.TotalBytesProcessed, Added: summary.DataAdded,
		Files: summary.TotalFilesProcessed, DurationMS: time.Since(start).Milliseconds(), CountError: countErr,
	}
	prev, err := getLast(c, t.Name)
	if err != nil {
		return nil, err
	}
	if why := anomaly(t, rec, prev.Backup); why != "" {
		// Kept and listed, but out of the retention policy's sight: it
		// must never count as a backup that lets older ones go.
		newID, err := retag(c, r, t, rec.ID)
		if err != nil {
			return nil, fmt.Errorf("mark the suspicious snapshot %s: %w", short(rec.ID), err)
		}
		rec.ID, rec.Suspicious = newID, why
	}
	if err := putRecord(c.Detached(), rec); err != nil {
		return rec, err
	}
	if rec.Suspicious == "" {
		if err := updateLast(c.Detached(), t.Name, func(l *lastState) { l.Backup, l.Failed = rec, "" }); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// anomaly says why a new backup looks wrong against the last good one: it
// shrank sharply, or holds no tables or no files. "" when it looks fine.
func anomaly(t *Target, rec, prev *record) string {
	switch {
	case t.Kind != kindDirectory && rec.Rows != nil && len(rec.Rows) == 0:
		return "it has no tables"
	case t.Kind == kindDirectory && rec.Files == 0:
		return "it holds no files"
	case prev != nil && prev.Size > 0 && rec.Size*2 < prev.Size:
		return fmt.Sprintf("it is %s against %s for the previous backup %s (%.0f%% smaller)", human(rec.Size), human(prev.Size), short(prev.ID),
			100*(1-float64(rec.Size)/float64(prev.Size)))
	}
	return ""
}

// retag moves a snapshot from the target's tag to its suspects' tag, which
// forget does not select, and returns its new id (a tag change makes one).
func retag(c *sdk.Context, r *restic, t *Target, id string) (string, error) {
	out, err := r.run(c, t, runOpts{}, "tag", "--remove", targetTag(t), "--add", suspectTag(t), id)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(out), "\n") {
		var m struct {
			Type  string `json:"message_type"`
			NewID string `json:"new_snapshot_id"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Type == "changed" && m.NewID != "" {
			return m.NewID, nil
		}
	}
	return "", errors.New("restic tag named no new snapshot id")
}

// runBackup is the backup job: back up, apply the retention policy, report.
func (b *backuper) runBackup(c *sdk.Context) error {
	p, err := decode(c)
	if err != nil {
		return err
	}
	t, r, err := b.target(p.Target)
	if err != nil {
		return err
	}
	rec, err := b.takeBackup(c, r, t, p)
	if err != nil {
		_ = updateLast(c.Detached(), t.Name, func(l *lastState) { l.Failed, l.FailedAt = describe(t, err), time.Now().UTC() })
		return b.failed(c, "Backup of "+t.Name, t, err)
	}
	text := fmt.Sprintf("Backed up %s: snapshot %s, %s (%s added) in %s.", t.Name, short(rec.ID), human(rec.Size), human(rec.Added),
		(time.Duration(rec.DurationMS) * time.Millisecond).String())
	if rec.CountError != "" {
		text += " Counting the rows failed, so a verification cannot compare them: " + rec.CountError
	} else if rec.Rows != nil {
		text += fmt.Sprintf(" %s, %d rows.", plural(len(rec.Rows), "table"), rec.Rows.total())
	} else {
		text += fmt.Sprintf(" %s.", plural(int(rec.Files), "file"))
	}
	_ = c.Progress("backup", &sdk.Output{Title: "Backed up " + t.Name, Text: human(rec.Size)})
	fields := []*sdk.Field{
		{Title: "Snapshot", Value: short(rec.ID), Short: true},
		{Title: "Size", Value: human(rec.Size), Short: true},
		{Title: "Added", Value: human(rec.Added), Short: true},
		{Title: "Duration", Value: (time.Duration(rec.DurationMS) * time.Millisecond).String(), Short: true},
	}
	if rec.Suspicious != "" {
		_ = c.ReplyOutput(&sdk.Output{Status: sdk.StatusWarning, Text: fmt.Sprintf("⚠ The backup %s of %s is suspicious: %s. It is kept, and the retention policy neither counts it nor removes anything because of it; check %s.",
			short(rec.ID), t.Name, rec.Suspicious, t.Name)})
		return c.ReplyOutput(&sdk.Output{Status: sdk.StatusWarning, Text: text, Fields: fields})
	}
	if !t.Retention.empty() {
		removed, ferr := b.forget(c, r, t)
		if ferr != nil {
			text += " Retention failed: " + describe(t, ferr)
		} else if removed > 0 {
			text += fmt.Sprintf(" Retention removed %s.", plural(removed, "old snapshot"))
		}
	}
	return c.ReplyOutput(&sdk.Output{Status: sdk.StatusGood, Text: text, Fields: fields})
}

// forget applies t's retention policy and prunes; it returns how many
// snapshots it removed.
func (b *backuper) forget(c *sdk.Context, r *restic, t *Target) (int, error) {
	args := append([]string{"forget", "--tag", targetTag(t), "--group-by", "paths", "--prune"}, t.Retention.args()...)
	out, err := r.run(c, t, runOpts{}, args...)
	if err != nil {
		return 0, err
	}
	// forget --json prints its groups (keep, remove) as one JSON line,
	// then prune's own output.
	removed := 0
	for _, line := range strings.Split(string(out), "\n") {
		var groups []struct {
			Remove []snapshot `json:"remove"`
		}
		if json.Unmarshal([]byte(line), &groups) == nil {
			for _, g := range groups {
				removed += len(g.Remove)
				for _, s := range g.Remove {
					_ = c.KV().Delete(recordKey(t.Name, s.ID))
				}
			}
		}
	}
	return removed, nil
}

// failed reports a failed job to its room and returns the job's error.
func (b *backuper) failed(c *sdk.Context, what string, t *Target, err error) error {
	msg := describe(t, err)
	if c.Err() != nil {
		if c.ShuttingDown() {
			msg = "interrupted: Chima stopped while it ran"
		} else {
			msg = "cancelled"
		}
	}
	bc := c.Detached()
	out := &sdk.Output{Status: sdk.StatusDanger, Text: fmt.Sprintf("✖ %s failed: %s", what, msg)}
	if c.Err() != nil && c.Job != nil && c.Job.Notify != nil {
		// The host stopped listening to the cancelled call: a reply
		// streamed now is lost, a post reaches the job's room.
		_, _ = bc.Post(c.Job.Notify, out)
	} else {
		_ = bc.ReplyOutput(out)
	}
	return fmt.Errorf("%s: %s", strings.ToLower(what[:1])+what[1:], msg)
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// cmdBackups lists a target's recent snapshots as a table.
func (b *backuper) cmdBackups(c *sdk.Context) error {
	t, r, err := b.target(c.Arg("target"))
	if err != nil {
		return err
	}
	snaps, err := r.snapshots(c, t)
	if err != nil && !(t.Init && errors.Is(err, ErrNoRepository)) {
		return sdk.Errorf("cannot list the backups of %s: %s", t.Name, describe(t, err))
	}
	if len(snaps) == 0 {
		return c.Reply("%s has no backup yet: `backup %s` takes one.", t.Name, t.Name)
	}
	const show = 15
	if len(snaps) > show {
		snaps = snaps[len(snaps)-show:]
	}
	var rows [][]string
	for i := len(snaps) - 1; i >= 0; i-- {
		s := snaps[i]
		rec, _ := getRecord(c, t.Name, s.ID)
		size := "?"
		if s.Summary != nil {
			size = human(s.Summary.TotalBytesProcessed)
		}
		by := firstNonEmpty(s.tag("by"), s.tag("schedule"))
		if v := s.tag("schedule"); v != "" {
			by = "schedule " + v
		}
		tables := "-"
		verified := "not verified"
		if rec != nil {
			if rec.Rows != nil {
				tables = fmt.Sprint(len(rec.Rows))
			}
			if v := rec.Verify; v != nil {
				state := "ok"
				if !v.OK {
					state = "FAILED"
				}
				verified = fmt.Sprintf("%s %s (restore %s)", state, v.Time.UTC().Format("01-02 15:04"), (time.Duration(v.RestoreMS) * time.Millisecond).String())
			}
		}
		if s.hasTag(suspectTag(t)) {
			verified += " ⚠ suspicious"
		}
		rows = append(rows, []string{s.ShortID, s.Time.UTC().Format("2006-01-02 15:04:05"), size, tables, firstNonEmpty(by, "-"), verified})
	}
	table := renderTable([]string{"ID", "TAKEN (UTC)", "SIZE", "TABLES", "BY", "VERIFIED"}, rows)
	return c.ReplyOutput(&sdk.Output{Title: fmt.Sprintf("Backups of %s (%s, newest first)", t.Name, t.Kind), Code: table})
}

// renderTable aligns columns, as GitHub's backup-list does.
func renderTable(head []string, rows [][]string) string {
	widths := make([]int, len(head))
	for i, h := range head {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, v := range r {
			widths[i] = max(widths[i], len([]rune(v)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, v := range cells {
			if i == len(cells)-1 {
				b.WriteString(v)
			} else {
				b.WriteString(v + strings.Repeat(" ", widths[i]-len([]rune(v))+2))
			}
		}
		b.WriteString("\n")
	}
	line(head)
	for _, r := range rows {
		line(r)
	}
	return strings.TrimRight(b.String(), "\n")
}

// runVerify is the verification job: restore into scratch, check, record.
func (b *backuper) runVerify(c *sdk.Context) error {
	p, err := decode(c)
	if err != nil {
		return err
	}
	t, r, err := b.target(p.Target)
	if err != nil {
		return err
	}
	snap, err := r.find(c, t, p.Snapshot)
	if err != nil {
		return b.failed(c, "Verification of "+t.Name, t, err)
	}
	rec, err := getRecord(c, t.Name, snap.ID)
	if err != nil {
		return err
	}
	if rec == nil {
		rec = &record{ID: snap.ID, Target: t.Name, Time: snap.Time, By: snap.tag("by"), Schedule: snap.tag("schedule")}
		if len(snap.Paths) == 1 && t.Kind != kindDirectory {
			rec.File = strings.TrimPrefix(snap.Paths[0], "/")
		}
	}
	_ = c.Progress("verify", &sdk.Output{Title: "Verifying " + t.Name + " " + short(snap.ID) + "…", Text: "restoring into scratch"})
	start := time.Now()
	detail, verr := b.verify(c, r, t, snap, rec)
	restore := time.Since(start)
	if verr == nil {
		// The rolling check: each verification reads another tenth of
		// the repository's data.
		if cerr := b.rollingCheck(c, r, t); cerr != nil {
			verr = fmt.Errorf("restic check: %s", describe(t, cerr))
		} else {
			detail += "; repository check ok"
		}
	}
	if c.Err() != nil {
		return b.failed(c, "Verification of "+t.Name, t, c.Err())
	}
	res := &verifyResult{Time: time.Now().UTC(), OK: verr == nil, Detail: detail, RestoreMS: restore.Milliseconds(), By: firstNonEmpty(p.By, p.Schedule)}
	if verr != nil {
		res.Detail = describe(t, verr)
	}
	rec.Verify = res
	if err := putRecord(c.Detached(), rec); err != nil {
		return err
	}
	if err := updateLast(c.Detached(), t.Name, func(l *lastState) { l.Verified, l.VerifiedID = res, rec.ID }); err != nil {
		return err
	}
	_ = c.Progress("verify", &sdk.Output{Title: "Verified " + t.Name + " " + short(snap.ID), Text: res.Detail})
	if verr != nil {
		_ = c.ReplyOutput(&sdk.Output{Status: sdk.StatusDanger, Text: fmt.Sprintf("✖ Verification of %s %s failed: %s", t.Name, short(snap.ID), res.Detail)})
		return fmt.Errorf("verification of %s %s failed: %s", t.Name, short(snap.ID), res.Detail)
	}
	return c.ReplyOutput(&sdk.Output{Status: sdk.StatusGood, Text: fmt.Sprintf("✔ Verified %s %s: restored in %s; %s.", t.Name, short(snap.ID), restore.Round(time.Millisecond), detail),
		Fields: []*sdk.Field{{Title: "Restore time", Value: restore.Round(time.Millisecond).String(), Short: true}}})
}

// rollingCheck runs restic check on the next tenth of the data.
func (b *backuper) rollingCheck(c *sdk.Context, r *restic, t *Target) error {
	key := "check/" + t.Name
	n := 0
	if v, ok, _ := c.KV().Get(key); ok {
		fmt.Sscan(string(v), &n)
	}
	part := n%10 + 1
	_, err := r.run(c, t, runOpts{}, "check", fmt.Sprintf("--read-data-subset=%d/10", part))
	if err == nil {
		_ = c.KV().Set(key, []byte(fmt.Sprint(part)))
	}
	return err
}

// verify restores snap of t into scratch and checks it; it returns what
// was checked.
func (b *backuper) verify(c *sdk.Context, r *restic, t *Target, snap snapshot, rec *record) (string, error) {
	rowsCheck := func(got rowCounts) (string, error) {
		if rec.Rows == nil {
			return fmt.Sprintf("%s, %d rows (no counts were recorded at backup time)", plural(len(got), "table"), got.total()), nil
		}
		if d := compareRows(rec.Rows, got); len(d) > 0 {
			return "", errors.New(strings.Join(d, "; "))
		}
		return fmt.Sprintf("%s, row counts match (%d rows)", plural(len(got), "table"), got.total()), nil
	}
	switch t.Kind {
	case kindSQLite:
		if err := os.MkdirAll(t.Scratch, 0o700); err != nil {
			return "", fmt.Errorf("scratch: %w", err)
		}
		path := filepath.Join(t.Scratch, fmt.Sprintf(".verify-%s-%s.sqlite", t.Name, short(snap.ID)))
		defer os.Remove(path)
		if err := dumpToFile(c, r, t, snap, rec.File, path); err != nil {
			return "", err
		}
		got, err := sqliteCheck(c, path, true)
		if err != nil {
			return "", err
		}
		s, err := rowsCheck(got)
		return "integrity_check ok, " + s, err
	case kindDirectory:
		if err := os.MkdirAll(t.Scratch, 0o700); err != nil {
			return "", fmt.Errorf("scratch: %w", err)
		}
		dir, err := os.MkdirTemp(t.Scratch, ".verify-"+t.Name+"-")
		if err != nil {
			return "", fmt.Errorf("scratch: %w", err)
		}
		defer os.RemoveAll(dir)
		if _, err := r.run(c, t, runOpts{}, "restore", snap.ID+":"+snapPath(snap), "--target", dir, "--verify"); err != nil {
			return "", err
		}
		files, bytes, err := treeStats(dir)
		if err != nil {
			return "", err
		}
		if s := snap.Summary; s != nil && (s.TotalFilesProcessed != files || s.TotalBytesProcessed != bytes) {
			return "", fmt.Errorf("restored %d files, %s; the backup had %d files, %s", files, human(bytes), s.TotalFilesProcessed, human(s.TotalBytesProcessed))
		}
		return fmt.Sprintf("restore --verify ok, %d files, %s", files, human(bytes)), nil
	case kindPostgres, kindMySQL:
		server, err := scratchConn(t)
		if err != nil {
			return "", err
		}
		db := server.on(fmt.Sprintf("chima_verify_%s_%d", short(snap.ID), os.Getpid()))
		if err := recreateDB(c, server, db.Database); err != nil {
			return "", err
		}
		defer dropDB(c.Detached(), server, db.Database)
		if err := restoreDB(c, r, t, snap, rec.File, db, false); err != nil {
			return "", err
		}
		var got rowCounts
		if t.Kind == kindPostgres {
			got, err = pgCounts(c, db)
		} else {
			got, err = mysqlCounts(c, db)
		}
		if err != nil {
			return "", err
		}
		s, err := rowsCheck(got)
		return "restored into a scratch database, " + s, err
	}
	return "", fmt.Errorf("unknown kind %q", t.Kind)
}

// snapPath is the directory a directory snapshot holds.
func snapPath(s snapshot) string {
	if len(s.Paths) == 1 {
		return s.Paths[0]
	}
	return "/"
}

// dumpToFile writes the file of a dump snapshot to path (through a
// temporary file beside it, renamed at the end).
func dumpToFile(c *sdk.Context, r *restic, t *Target, snap snapshot, file, path string) error {
	if file == "" {
		return errors.New("the snapshot names no file")
	}
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	_, err = r.run(c, t, runOpts{stdout: f}, "dump", snap.ID, "/"+file)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// recreateDB drops and creates database name on server.
func recreateDB(ctx context.Context, server *dbConn, name string) error {
	if err := dropDB(ctx, server, name); err != nil {
		return err
	}
	if server.kind == kindPostgres {
		_, err := tool(ctx, server.env(), server.password, nil, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", server.pgDBName(), "-c", `CREATE DATABASE "`+name+`"`)
		return err
	}
	_, err := tool(ctx, server.env(), server.password, nil, "mariadb", mysqlCmdArgs(server, "-e", "CREATE DATABASE `"+name+"`")...)
	return err
}

// dropDB drops database name on server, if it is there.
func dropDB(ctx context.Context, server *dbConn, name string) error {
	if server.kind == kindPostgres {
		_, err := tool(ctx, server.env(), server.password, nil, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", server.pgDBName(), "-c", `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
		return err
	}
	_, err := tool(ctx, server.env(), server.password, nil, "mariadb", mysqlCmdArgs(server, "-e", "DROP DATABASE IF EXISTS `"+name+"`")...)
	return err
}

// restoreDB streams a dump snapshot into database db: restic dump piped
// into pg_restore or mariadb, nothing staged on disk. clean drops what is
// there first (a restore over a database).
func restoreDB(c *sdk.Context, r *restic, t *Target, snap snapshot, file string, db *dbConn, clean bool) error {
	if file == "" {
		return errors.New("the snapshot names no dump file")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	var client *exec.Cmd
	if t.Kind == kindPostgres {
		args := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--no-password", "--single-transaction", db.pgDBName()}
		if clean {
			args = append([]string{"--clean", "--if-exists"}, args...)
		}
		client = exec.CommandContext(c, "pg_restore", args...)
	} else {
		client = exec.CommandContext(c, "mariadb", mysqlCmdArgs(db, db.Database)...)
	}
	client.Env = append(os.Environ(), db.env()...)
	client.Stdin = pr
	var clientErr strings.Builder
	client.Stderr = &limited{w: &clientErr, n: 16 << 10}
	client.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := client.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("start %s: %w", client.Path, err)
	}
	pr.Close()
	_, rerr := r.run(c, t, runOpts{stdout: pw}, "dump", snap.ID, "/"+file)
	pw.Close()
	cerr := client.Wait()
	if cerr != nil {
		return fmt.Errorf("%s: %v: %s", filepath.Base(client.Path), cerr, scrub(lastLines(clientErr.String(), 3), db.password))
	}
	return rerr
}

// plural says n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
