package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

const retainedTargets = `files:
  kind: directory
  path: %[1]s/data
  repository: %[1]s/repo
  password_file: %[1]s/password
  init: true
  scratch: %[1]s/scratch
  retention: {keep_last: 1}
  alert_after: 26h
`

func TestRetentionDryRunRemovesNothingAndConfirmApplesIt(t *testing.T) {
	t.Parallel()
	b := newBed(t, retainedTargets)
	data := filepath.Join(b.dir, "data")
	writeFiles(t, data, map[string]string{"a": "a"})
	repo := filepath.Join(b.dir, "repo")
	if out, err := b.restic(repo, "init"); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	for i := 0; i < 3; i++ { // older backups, beyond the policy
		if out, err := b.restic(repo, "backup", "--tag", "chima,target:files", data); err != nil {
			t.Fatalf("backup: %v %s", err, out)
		}
	}
	res := b.h.Command("backup:forget", sdktest.Args{"target": "files"})
	if len(res.Replies) != 1 || !strings.Contains(res.Replies[0].Title, "would remove 2 of 3 backups") || !strings.Contains(res.Text(), "Nothing was removed") {
		t.Fatalf("dry run: %s", allText(res))
	}
	if n := b.snapshotCount(repo); n != 3 {
		t.Fatalf("%d snapshots after the dry run; want all 3", n)
	}
	if len(b.h.Host.Enqueued()) != 0 {
		t.Fatal("the dry run enqueued a job")
	}
	j := b.job("backup:forget", sdktest.Args{"target": "files", "confirm": "confirm"})
	if outcome(j) != "success" || !strings.Contains(j.Text(), "removed 2 backups") {
		t.Fatalf("confirm: %s", allText(j))
	}
	if n := b.snapshotCount(repo); n != 1 {
		t.Fatalf("%d snapshots after confirm; want 1", n)
	}
}

func TestAnomalyGuardMarksAShrunkenBackupSuspiciousAndRetentionNeverCountsIt(t *testing.T) {
	t.Parallel()
	b := newBed(t, retainedTargets)
	data := filepath.Join(b.dir, "data")
	big := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB
	writeFiles(t, data, map[string]string{"small": "s", "big": big})
	repo := filepath.Join(b.dir, "repo")
	if j := b.job("backup", sdktest.Args{"target": "files"}); outcome(j) != "success" || strings.Contains(j.Text(), "suspicious") {
		t.Fatalf("first backup: %s", allText(j))
	}
	if err := os.Remove(filepath.Join(data, "big")); err != nil {
		t.Fatal(err)
	}
	j := b.job("backup", sdktest.Args{"target": "files"})
	if !strings.Contains(j.Text(), "is suspicious: it is 1 B against 128.0 KiB") {
		t.Fatalf("shrunken backup: %s", allText(j))
	}
	// keep_last 1 did not let the suspicious backup push the good one out.
	if n := b.snapshotCount(repo); n != 2 {
		t.Fatalf("%d snapshots after the suspicious backup; want the good one kept beside it", n)
	}
	list := b.h.Command("backups", sdktest.Args{"target": "files"})
	if strings.Count(list.Replies[0].Code, "suspicious") != 1 {
		t.Fatalf("backups:\n%s", list.Replies[0].Code)
	}
	// A good backup again: retention now removes the old good one, never
	// the suspicious one.
	writeFiles(t, data, map[string]string{"big": big})
	if j := b.job("backup", sdktest.Args{"target": "files"}); outcome(j) != "success" || !strings.Contains(j.Text(), "Retention removed 1 old snapshot") {
		t.Fatalf("third backup: %s", allText(j))
	}
	list = b.h.Command("backups", sdktest.Args{"target": "files"})
	if n := b.snapshotCount(repo); n != 2 || strings.Count(list.Replies[0].Code, "suspicious") != 1 {
		t.Fatalf("%d snapshots; backups:\n%s\nwant the new good one and the suspicious one", n, list.Replies[0].Code)
	}
}

func TestStatusShowsLastBackupLastVerificationAndWhatIsOverdue(t *testing.T) {
	t.Parallel()
	b := newBed(t, retainedTargets+`docs:
  kind: directory
  path: %[1]s/data
  repository: %[1]s/repo
  password_file: %[1]s/password
  init: true
  scratch: %[1]s/scratch2
  schedule: "0 3 * * *"
`)
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a": "a"})
	st := b.h.Command("backup:status", nil)
	if !strings.Contains(st.Text(), "no verified backup of files ever (alert_after 26h0m0s)") {
		t.Fatalf("status before any backup: %s", allText(st))
	}
	if j := b.job("backup", sdktest.Args{"target": "files"}); outcome(j) != "success" {
		t.Fatalf("backup: %s", allText(j))
	}
	if j := b.job("backup:verify", sdktest.Args{"target": "files"}); outcome(j) != "success" {
		t.Fatalf("verify: %s", allText(j))
	}
	st = b.h.Command("backup:status", nil)
	table := st.Replies[0].Code
	var files, docs string
	for _, line := range strings.Split(table, "\n") {
		switch {
		case strings.HasPrefix(line, "files "):
			files = line
		case strings.HasPrefix(line, "docs "):
			docs = line
		}
	}
	if !strings.Contains(files, "s ago (") || !strings.Contains(files, "ok ") || !strings.Contains(files, "not scheduled") {
		t.Errorf("files row %q; want its last backup, an ok verification, no schedule", files)
	}
	if !strings.Contains(docs, "never") || !strings.Contains(docs, "backup ") || !strings.Contains(docs, " 03:00 UTC") {
		t.Errorf("docs row %q; want never backed up, next backup at 03:00", docs)
	}
	if strings.Contains(st.Text(), "no verified backup of files") {
		t.Errorf("status still warns of files after its verification: %s", st.Text())
	}
}

func TestFreshnessAlertWarnsTheTargetsRoomOnceUntilAVerification(t *testing.T) {
	t.Parallel()
	b := newBed(t, retainedTargets+"  room: ops\n")
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a": "a"})
	var fresh bool
	for _, s := range b.h.Manifest.GetSchedules() {
		fresh = fresh || (s.GetName() == "freshness" && s.GetJobKind() == jobFreshness)
	}
	if !fresh {
		t.Fatalf("schedules %v; want the freshness check", b.h.Manifest.GetSchedules())
	}
	for i := 0; i < 2; i++ {
		if res := b.h.Job(jobFreshness, nil); outcome(res) != "success" {
			t.Fatalf("freshness: %s", allText(res))
		}
	}
	posts := b.h.Host.Posts()
	if len(posts) != 1 || posts[0].Target.Room != "ops" || !strings.Contains(posts[0].Output.Text, "No verified backup of files ever (alert_after 26h0m0s)") {
		t.Fatalf("posts %v; want one warning in ops", posts)
	}
	b.job("backup", sdktest.Args{"target": "files"})
	b.job("backup:verify", sdktest.Args{"target": "files"})
	b.h.Job(jobFreshness, nil)
	if n := len(b.h.Host.Posts()); n != 1 {
		t.Fatalf("%d posts after a verification; want no new warning", n)
	}
}

func TestAnomalyGuardMarksABackupWithNoTablesSuspicious(t *testing.T) {
	t.Parallel()
	b := newBed(t, sqliteTargets)
	path := filepath.Join(b.dir, "app.db")
	sqliteExec(t, path, "CREATE TABLE users (id INTEGER PRIMARY KEY)", "INSERT INTO users VALUES (1), (2)")
	if j := b.job("backup", sdktest.Args{"target": "app-db"}); outcome(j) != "success" || strings.Contains(j.Text(), "suspicious") {
		t.Fatalf("backup with a table: %s", allText(j))
	}
	// The table is gone; the file is as big as before (SQLite keeps its
	// pages), so only the count of tables tells.
	sqliteExec(t, path, "DROP TABLE users")
	j := b.job("backup", sdktest.Args{"target": "app-db"})
	if !strings.Contains(j.Text(), "is suspicious: it has no tables") {
		t.Fatalf("backup with no tables: %s", allText(j))
	}
	list := b.h.Command("backups", sdktest.Args{"target": "app-db"})
	if code := list.Replies[0].Code; strings.Count(code, "suspicious") != 1 {
		t.Fatalf("backups:\n%s\nwant the table-less backup, and only it, marked suspicious", code)
	}
}

func TestVerifyRunsTheRollingCheckOnTheNextTenthEachTime(t *testing.T) {
	t.Parallel()
	b := newBed(t, dirTargets)
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a": "alpha"})
	if j := b.job("backup", sdktest.Args{"target": "files"}); outcome(j) != "success" {
		t.Fatalf("backup: %s", allText(j))
	}
	// The cursor starts at the last tenth: it goes 10, then back to 1.
	if _, err := b.h.Host.KVSet(context.Background(), &pluginv1.KVSetRequest{Key: "check/files", Value: []byte("9")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10", "1", "2"} {
		v := b.job("backup:verify", sdktest.Args{"target": "files"})
		if outcome(v) != "success" || !strings.Contains(v.Text(), "repository check ok") {
			t.Fatalf("verify: %s", allText(v))
		}
		if got, _ := b.h.Host.KVValue("check/files"); string(got) != want {
			t.Fatalf("check cursor %q after a verification; want %s", got, want)
		}
	}
	// A repository whose data does not read back fails the verification
	// and leaves the cursor where it was.
	packs, err := filepath.Glob(filepath.Join(b.dir, "repo", "data", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("packs %v, %v", packs, err)
	}
	for _, p := range packs {
		if err := os.WriteFile(p, []byte("not a pack"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(b.dir, "cache")); err != nil {
		t.Fatal(err)
	}
	v := b.job("backup:verify", sdktest.Args{"target": "files"})
	if outcome(v) == "success" {
		t.Fatalf("verify of a corrupted repository: %s", allText(v))
	}
	if got, _ := b.h.Host.KVValue("check/files"); string(got) != "2" {
		t.Fatalf("check cursor %q after a failed check; want it left at 2", got)
	}
}

func TestFreshnessAlertWarnsOnceAVerificationIsOlderThanAlertAfter(t *testing.T) {
	t.Parallel()
	b := newBed(t, retainedTargets+"  room: ops\n")
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a": "a"})
	if j := b.job("backup", sdktest.Args{"target": "files"}); outcome(j) != "success" {
		t.Fatalf("backup: %s", allText(j))
	}
	if j := b.job("backup:verify", sdktest.Args{"target": "files"}); outcome(j) != "success" {
		t.Fatalf("verify: %s", allText(j))
	}
	tests := []struct {
		name  string
		after time.Duration
		posts int
		want  string
	}{
		{"a fresh verification", 0, 0, ""},
		{"25 h later, within alert_after", 25 * time.Hour, 0, ""},
		{"26 h and a minute later", 26*time.Hour + time.Minute, 1, "No verified backup of files for 26h1m0s (alert_after 26h0m0s)"},
		{"later still: warned once for this verification", 30 * time.Hour, 1, ""},
	}
	verified := time.Now()
	for _, tt := range tests {
		b.bk.now = func() time.Time { return verified.Add(tt.after) }
		if res := b.h.Job(jobFreshness, nil); outcome(res) != "success" {
			t.Fatalf("%s: freshness: %s", tt.name, allText(res))
		}
		posts := b.h.Host.Posts()
		if len(posts) != tt.posts {
			t.Fatalf("%s: posts %v; want %d", tt.name, posts, tt.posts)
		}
		if tt.want != "" && (posts[len(posts)-1].Target.Room != "ops" || !strings.Contains(posts[len(posts)-1].Output.Text, tt.want)) {
			t.Fatalf("%s: posted %v; want %q in ops", tt.name, posts[len(posts)-1], tt.want)
		}
		st := b.h.Command("backup:status", nil)
		if stale := strings.Contains(st.Text(), "no verified backup of files for"); stale != (tt.after > 26*time.Hour) {
			t.Fatalf("%s: status %q; want it to warn only past alert_after", tt.name, st.Text())
		}
	}
}

// TestGrandfatherFatherSonRetentionDryRunShowsWhatConfirmRemoves keeps the
// newest backup of each of 2 days and of each of 3 ISO weeks: the dry run
// lists exactly the others and removes nothing; confirm removes them.
func TestGrandfatherFatherSonRetentionDryRunShowsWhatConfirmRemoves(t *testing.T) {
	t.Parallel()
	b := newBed(t, `files:
  kind: directory
  path: %[1]s/data
  repository: %[1]s/repo
  password_file: %[1]s/password
  scratch: %[1]s/scratch
  retention: {keep_daily: 2, keep_weekly: 3}
`)
	data := filepath.Join(b.dir, "data")
	writeFiles(t, data, map[string]string{"a": "a"})
	repo := filepath.Join(b.dir, "repo")
	if out, err := b.restic(repo, "init"); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	// 2026-11-30 is a Monday (ISO week 49); the 29th, 28th are week 48,
	// the 22nd 47, the 15th 46, the 8th 45.
	kept := []string{"2026-11-30 10:00:00", "2026-11-29 10:00:00", "2026-11-22 10:00:00"}
	removed := []string{
		"2026-11-30 09:00:00", // an older one of a kept day
		"2026-11-28 10:00:00", // a third day: past keep_daily, and not its week's newest
		"2026-11-15 10:00:00", // a fourth week: past keep_weekly
		"2026-11-08 10:00:00",
	}
	for _, when := range append(append([]string{}, removed...), kept...) {
		cmd := exec.Command(b.env["CHIMA_RESTIC"], "--no-cache", "backup", "--tag", "chima,target:files", "--time", when, data)
		cmd.Env = append(os.Environ(), "TZ=UTC", "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+filepath.Join(b.dir, "password"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("backup at %s: %v %s", when, err, out)
		}
	}
	res := b.h.Command("backup:forget", sdktest.Args{"target": "files"})
	if len(res.Replies) != 1 || !strings.Contains(res.Replies[0].Title, "(--keep-daily=2 --keep-weekly=3) would remove 4 of 7 backups") {
		t.Fatalf("dry run: %s", allText(res))
	}
	table := res.Replies[0].Code
	for _, when := range removed {
		if !strings.Contains(table, when) {
			t.Errorf("the dry run does not list %s, which the policy removes:\n%s", when, table)
		}
	}
	for _, when := range kept {
		if strings.Contains(table, when) {
			t.Errorf("the dry run lists %s, which the policy keeps:\n%s", when, table)
		}
	}
	if n := b.snapshotCount(repo); n != 7 {
		t.Fatalf("%d snapshots after the dry run; want all 7", n)
	}
	j := b.job("backup:forget", sdktest.Args{"target": "files", "confirm": "confirm"})
	if outcome(j) != "success" || !strings.Contains(j.Text(), "removed 4 backups") {
		t.Fatalf("confirm: %s", allText(j))
	}
	out, err := b.restic(repo, "snapshots")
	if err != nil {
		t.Fatalf("snapshots: %v %s", err, out)
	}
	var snaps []snapshot
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatalf("snapshots: %v: %s", err, out)
	}
	var left []string
	for _, s := range snaps {
		left = append(left, s.Time.UTC().Format("2006-01-02 15:04:05"))
	}
	slices.Sort(left)
	want := slices.Clone(kept)
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("snapshots left %v; want %v", left, want)
	}
}
