package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chimaops/chima/sdk"
)

// runRestore is the restore job: into the target's scratch place, or, once
// approved, over a target's data after a safety backup of it.
func (b *backuper) runRestore(c *sdk.Context) error {
	p, err := decode(c)
	if err != nil {
		return err
	}
	t, r, err := b.target(p.Target)
	if err != nil {
		return err
	}
	what := "Restore of " + t.Name
	snap, err := r.find(c, t, p.Snapshot)
	if err != nil {
		return b.failed(c, what, t, err)
	}
	rec, err := getRecord(c, t.Name, snap.ID)
	if err != nil {
		return err
	}
	file := ""
	if rec != nil {
		file = rec.File
	} else if len(snap.Paths) == 1 {
		file = filepath.Base(snap.Paths[0])
	}
	start := time.Now()
	var where string
	if p.Into == "" {
		where, err = b.restoreScratch(c, r, t, snap, file)
	} else {
		where, err = b.restoreOver(c, r, t, snap, file, p)
	}
	if err != nil {
		return b.failed(c, what, t, err)
	}
	text := fmt.Sprintf("Restored %s %s (taken %s) into %s in %s.", t.Name, short(snap.ID), snap.Time.UTC().Format("2006-01-02 15:04 UTC"), where, since(start))
	return c.ReplyOutput(&sdk.Output{Status: sdk.StatusGood, Text: text})
}

// restoreScratch restores into t's scratch place and says where that is.
func (b *backuper) restoreScratch(c *sdk.Context, r *restic, t *Target, snap snapshot, file string) (string, error) {
	switch t.Kind {
	case kindSQLite:
		if err := os.MkdirAll(t.Scratch, 0o700); err != nil {
			return "", fmt.Errorf("scratch: %w", err)
		}
		path := filepath.Join(t.Scratch, fmt.Sprintf("%s-%s.sqlite", t.Name, short(snap.ID)))
		if err := dumpToFile(c, r, t, snap, file, path); err != nil {
			return "", err
		}
		return path, nil
	case kindDirectory:
		dir := filepath.Join(t.Scratch, fmt.Sprintf("%s-%s", t.Name, short(snap.ID)))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("scratch: %w", err)
		}
		if _, err := r.run(c, t, runOpts{}, "restore", snap.ID+":"+snapPath(snap), "--target", dir, "--verify", "--delete"); err != nil {
			return "", err
		}
		return dir, nil
	case kindPostgres, kindMySQL:
		server, err := scratchConn(t)
		if err != nil {
			return "", err
		}
		db := server.on(t.Scratch)
		if err := recreateDB(c, server, db.Database); err != nil {
			return "", err
		}
		if err := restoreDB(c, r, t, snap, file, db, false); err != nil {
			return "", err
		}
		return fmt.Sprintf("the scratch database %s on %s", db.Database, firstNonEmpty(server.host, server.socket, "localhost")), nil
	}
	return "", fmt.Errorf("unknown kind %q", t.Kind)
}

// restoreOver replaces the data of the target p.Into with snap, after a
// safety backup of it. The command handler enqueues such a job only once
// it was approved.
func (b *backuper) restoreOver(c *sdk.Context, r *restic, t *Target, snap snapshot, file string, p payload) (string, error) {
	if p.ApprovedBy == "" {
		return "", errors.New("a restore over a target's data needs an approval, and this one has none")
	}
	dest, dr, err := b.target(p.Into)
	if err != nil {
		return "", err
	}
	_ = c.Progress("restore", &sdk.Output{Title: "Restoring " + t.Name + " over " + dest.Name, Text: "safety backup of " + dest.Name + " first"})
	safety, err := b.takeBackup(c, dr, dest, payload{Target: dest.Name, By: "safety before restore of " + short(snap.ID)})
	if err != nil {
		return "", fmt.Errorf("the safety backup of %s failed, so nothing was restored: %s", dest.Name, describe(dest, err))
	}
	_ = c.ReplyOutput(&sdk.Output{Text: fmt.Sprintf("Safety backup of %s: snapshot %s. Restoring %s over it (approved by %s)…", dest.Name, short(safety.ID), short(snap.ID), p.ApprovedBy)})
	switch dest.Kind {
	case kindSQLite:
		tmp := dest.Path + ".chima-restore"
		defer os.Remove(tmp)
		if err := dumpToFile(c, r, t, snap, file, tmp); err != nil {
			return "", err
		}
		if _, err := sqliteCheck(c, tmp, true); err != nil {
			return "", fmt.Errorf("the backup does not pass its check, so %s was left as it was: %w", dest.Name, err)
		}
		if err := sqliteRestoreOnline(c, tmp, dest.Path); err != nil {
			return "", err
		}
		return dest.Path + " (safety backup " + short(safety.ID) + ")", nil
	case kindDirectory:
		if _, err := r.run(c, t, runOpts{}, "restore", snap.ID+":"+snapPath(snap), "--target", dest.Path, "--verify", "--delete"); err != nil {
			return "", err
		}
		return dest.Path + " (safety backup " + short(safety.ID) + ")", nil
	case kindPostgres, kindMySQL:
		db, err := targetConn(dest)
		if err != nil {
			return "", err
		}
		if dest.Kind == kindMySQL {
			if err := recreateDB(c, db, db.Database); err != nil {
				return "", err
			}
		}
		if err := restoreDB(c, r, t, snap, file, db, dest.Kind == kindPostgres); err != nil {
			return "", err
		}
		return "the database " + db.Database + " of " + dest.Name + " (safety backup " + short(safety.ID) + ")", nil
	}
	return "", fmt.Errorf("unknown kind %q", dest.Kind)
}

// onInterrupted hears of a job that was running when Chima died: it tells
// the room and removes the stale locks a killed restic left in the
// repository.
func (b *backuper) onInterrupted(c *sdk.Context) error {
	var p payload
	_ = jsonUnmarshal(c.Job.Payload, &p)
	t, r, err := b.target(p.Target)
	if err != nil {
		return nil // a target since removed from the settings
	}
	note := ""
	if err := clearStaleLocks(c, r, t); err != nil {
		note = " Removing stale repository locks failed: " + describe(t, err)
	}
	_, err = c.Post(c.Job.Notify, &sdk.Output{Status: sdk.StatusDanger, Text: fmt.Sprintf("⚠ The %s job of %s (job #%d) was interrupted: Chima or its backup plugin stopped while it ran; no snapshot was recorded for it.%s Ask again to retry.",
		c.Job.Kind, t.Name, c.Job.JobID, note)})
	return err
}

// orphanWait bounds how long clearStaleLocks waits for the restic of a
// killed plugin to end.
const orphanWait = 30 * time.Second

// clearStaleLocks removes the locks a killed restic left in t's repository.
// The restic of a plugin that was killed gets SIGINT and then ends (it
// cleans up, or dies writing to the dead plugin's stderr); until it has
// ended its lock is not stale, and restic unlock keeps it. So while a lock
// is held by a restic of this host that is not this plugin's child, it
// waits for that process to end, bounded, and unlocks again (also when the
// holder ended between the unlock and the look).
func clearStaleLocks(ctx context.Context, r *restic, t *Target) error {
	deadline := time.Now().Add(orphanWait)
	for {
		if _, err := r.run(ctx, t, runOpts{}, "unlock"); err != nil {
			return err
		}
		pids := orphanHolders(ctx, r, t)
		if len(pids) == 0 || time.Now().After(deadline) {
			return nil
		}
		for _, pid := range pids {
			for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// orphanHolders lists the pids of the processes of this host, not this
// plugin's children, that hold a lock on t's repository, ended or not.
func orphanHolders(ctx context.Context, r *restic, t *Target) []int {
	host, err := os.Hostname()
	if err != nil {
		return nil
	}
	out, err := r.run(ctx, t, runOpts{}, "list", "locks", "--no-lock")
	if err != nil {
		return nil
	}
	var pids []int
	for _, id := range strings.Fields(string(out)) {
		b, err := r.run(ctx, t, runOpts{}, "cat", "lock", id, "--no-lock")
		if err != nil {
			continue // removed meanwhile
		}
		var l struct {
			Hostname string `json:"hostname"`
			PID      int    `json:"pid"`
		}
		if json.Unmarshal(b, &l) != nil || l.Hostname != host || l.PID <= 0 {
			continue
		}
		// A holder that has ended since the unlock left a stale lock,
		// which the next unlock removes; a live one not of this plugin
		// is the killed plugin's restic, still ending.
		if parentOf(l.PID) == os.Getpid() { // 0 for an ended one
			continue // this plugin's own restic, at work
		}
		pids = append(pids, l.PID)
	}
	return pids
}

// parentOf is the parent pid of pid, from /proc; 0 when unknown.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields
	// after its closing parenthesis are state, then ppid.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
