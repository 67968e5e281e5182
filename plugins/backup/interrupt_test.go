package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

// locks lists the locks of repo: its lock files, not the temporary files
// the local backend writes them through (a restic killed mid-write leaves
// one, which no restic reads as a lock).
func (b *bed) locks(repo string) []string {
	b.t.Helper()
	entries, err := os.ReadDir(filepath.Join(repo, "locks"))
	if err != nil {
		b.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.Contains(e.Name(), "-tmp-") {
			continue
		}
		out = append(out, e.Name())
	}
	return out
}

// waitLock waits, bounded, until repo has a lock.
func (b *bed) waitLock(repo string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(b.locks(repo)) == 0 {
		if time.Now().After(deadline) {
			b.t.Fatal("restic took no lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAJobInterruptedByAKilledResticEndsClearlyAndLeavesNoStaleLock(t *testing.T) {
	t.Parallel()
	b := newBed(t, dirTargets)
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a": "a"})
	if j := b.job("backup", sdktest.Args{"target": "files"}); outcome(j) != "success" {
		t.Fatalf("backup: %s", allText(j))
	}
	repo := filepath.Join(b.dir, "repo")
	// A backup whose restic dies by SIGKILL, as it does when the whole
	// plugin and bot are killed: its lock stays in the repository.
	cmd := exec.Command(b.env["CHIMA_RESTIC"], "--no-cache", "backup", "--stdin-from-command", "--stdin-filename", "x", "--", "sleep", "60")
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+filepath.Join(b.dir, "password"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.waitLock(repo)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if len(b.locks(repo)) == 0 {
		t.Fatal("the killed restic left no lock: the test proves nothing")
	}

	res := b.h.JobInterrupted(&sdk.Job{
		JobID: 41, Kind: jobBackup, Payload: []byte(`{"target":"files","by":"Tester"}`),
		Notify: &sdk.MessageRef{Adapter: "test", Room: "ops"},
	})
	if res.Done.Outcome == "error" {
		t.Fatalf("interrupted: %s", allText(res))
	}
	posts := b.h.Host.Posts()
	if len(posts) != 1 || posts[0].Target.Room != "ops" || !strings.Contains(posts[0].Output.Text, "The backup job of files (job #41) was interrupted") {
		t.Fatalf("posts %v; want the room told the job of files was interrupted", posts)
	}
	if l := b.locks(repo); len(l) != 0 {
		t.Fatalf("locks %v left in the repository", l)
	}
	// And the next backup runs.
	if j := b.job("backup", sdktest.Args{"target": "files"}); outcome(j) != "success" {
		t.Fatalf("backup after the interruption: %s", allText(j))
	}
}

func TestCancellingABackupStopsResticAndItsDumpAndStoresNothing(t *testing.T) {
	t.Parallel()
	b := newBed(t, dirTargets)
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a": "a"})
	if j := b.job("backup", sdktest.Args{"target": "files"}); outcome(j) != "success" {
		t.Fatalf("backup: %s", allText(j))
	}
	repo := filepath.Join(b.dir, "repo")
	tg := &Target{Name: "files", Repository: repo, PasswordFile: filepath.Join(b.dir, "password")}
	r := &restic{bin: b.env["CHIMA_RESTIC"], cacheDir: filepath.Join(b.dir, "cache")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.run(ctx, tg, runOpts{onStdout: func([]byte) {}}, "backup", "--tag", targetTag(tg), "--stdin-from-command", "--stdin-filename", "slow", "--", "sleep", "120")
		done <- err
	}()
	b.waitLock(repo)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled backup succeeded")
		}
	case <-time.After(40 * time.Second):
		t.Fatal("restic did not stop after the cancel")
	}
	if n := b.snapshotCount(repo); n != 1 {
		t.Fatalf("%d snapshots; want only the first backup's", n)
	}
	if l := b.locks(repo); len(l) != 0 {
		t.Fatalf("a cancelled restic left locks %v", l)
	}
}

// TestCancellingTheBackupJobTellsTheRoomAndStopsResticAndTheDump cancels a
// running backup job as the host does (its call cancelled, through the
// harness's CancelJob) while its dump streams: the room is told it was
// cancelled, no snapshot is stored, no lock is left and the dump's process
// has ended.
func TestCancellingTheBackupJobTellsTheRoomAndStopsResticAndTheDump(t *testing.T) {
	b, _ := pgBed(t)
	// A pg_dump that starts a dump and then streams nothing: first on
	// PATH, its pid in dump.pid.
	bin := filepath.Join(b.dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(b.dir, "dump.pid")
	script := "#!/bin/sh\necho $$ > " + pidFile + "\nprintf 'PGDMP streaming'\nexec sleep 120\n"
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	repo := filepath.Join(b.dir, "repo")

	if res := b.h.Command("backup", sdktest.Args{"target": "pg"}); len(res.Errors) > 0 {
		t.Fatalf("backup: %v", res.Errors)
	}
	jobs := b.h.Host.Enqueued()
	if len(jobs) != 1 {
		t.Fatalf("enqueued %v; want the backup job", jobs)
	}
	dumpPID := make(chan int, 1)
	go func() {
		defer close(dumpPID)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			pb, _ := os.ReadFile(pidFile)
			locks, _ := os.ReadDir(filepath.Join(repo, "locks"))
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(pb))); pid > 0 && len(locks) > 0 {
				dumpPID <- pid
				_, _ = b.h.Host.CancelJob(context.Background(), &pluginv1.CancelJobRequest{JobId: jobs[0].ID})
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	res := b.h.RunEnqueued()
	pid, ok := <-dumpPID
	if !ok {
		t.Fatalf("the backup never got to its dump: %s", allText(res...))
	}
	if len(res) != 1 || outcome(res[0]) != sdk.OutcomeCancelled {
		t.Fatalf("results %s; want the job cancelled", allText(res...))
	}
	// The plugin ends the job after its call was cancelled: wait for what
	// it tells the room.
	deadline := time.Now().Add(40 * time.Second)
	var told string
	for told == "" && time.Now().Before(deadline) {
		for _, p := range b.h.Host.Posts() {
			if strings.Contains(p.Output.Text, "Backup of pg failed") {
				told = p.Output.Text
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(told, "Backup of pg failed: cancelled") {
		t.Fatalf("the room was told %q (posts %v); want the backup of pg cancelled", told, b.h.Host.Posts())
	}
	if n := b.snapshotCount(repo); n != 0 {
		t.Fatalf("%d snapshots after a cancelled backup; want none", n)
	}
	if l := b.locks(repo); len(l) != 0 {
		t.Fatalf("a cancelled backup left locks %v", l)
	}
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the dump's process %d still runs after the cancel", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
