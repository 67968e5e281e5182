package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// replica is one `chima run --replica` process of a two-replica test.
type replica struct {
	id   string
	addr string
	cmd  *exec.Cmd
	in   io.WriteCloser
}

// freeAddr returns a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startReplica runs bin/chima on cfg as replica id, its console on a pipe
// kept open, and waits for its /healthz.
func startReplica(t *testing.T, cfg, id, addr string) *replica {
	t.Helper()
	return startReplicaShowing(t, cfg, id, addr, io.Discard)
}

// startReplicaShowing is startReplica with what the console shows written to
// stdout.
func startReplicaShowing(t *testing.T, cfg, id, addr string, stdout io.Writer) *replica {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "chima"), "run", "--config", cfg, "--replica", id)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := &replica{id: id, addr: addr, cmd: cmd, in: in}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if !strings.Contains(string(body), "replica "+id) {
					t.Errorf("/healthz of %s says %q, want it to name the replica", id, body)
				}
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s never became healthy", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hook posts a command to the replica's inbound hook ci and returns the
// texts of the replies it answered with.
func (r *replica) hook(t *testing.T, secret, text string) ([]string, error) {
	return r.hookDelivery(t, secret, text, "")
}

// hookDelivery is hook with the sender's delivery id (Idempotency-Key),
// when not "".
func (r *replica) hookDelivery(t *testing.T, secret, text, delivery string) ([]string, error) {
	body, _ := json.Marshal(map[string]string{"user": "alice", "room": "ops", "text": text})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, "http://"+r.addr+"/hooks/ci", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Chima-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	if delivery != "" {
		req.Header.Set("Idempotency-Key", delivery)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct {
		Replies []struct{ Text string } `json:"replies"`
		Error   string                  `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, v.Error)
	}
	var texts []string
	for _, r := range v.Replies {
		texts = append(texts, r.Text)
	}
	return texts, nil
}

// collector is the webhook adapter's outbound receiver: every later reply
// (a job's end, an interruption) of both replicas.
type collector struct {
	mu    sync.Mutex
	texts []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.texts = append(c.texts, string(b))
	c.mu.Unlock()
}

func (c *collector) all() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.texts, "\n")
}

func TestTwoReplicasOnPostgresLoseAndRepeatNoDeployWhenOneIsKilled(t *testing.T) {
	dsn := postgresSchema(t)
	t.Setenv("CHIMA_E2E_DSN", dsn)
	const secret = "replica-hook-secret"
	t.Setenv("CHIMA_E2E_HOOK_SECRET", secret)
	out := &collector{}
	outSrv := httptest.NewServer(out)
	t.Cleanup(outSrv.Close)
	t.Setenv("CHIMA_E2E_OUT", outSrv.URL)

	// The deploy script appends "start <id> <app> <env>" and "end …" to one
	// log: a deploy that ran twice, or two of one app and environment at
	// once, shows there.
	repo, _, _ := gitRepo(t)
	runlog := filepath.Join(t.TempDir(), "runs.log")
	script := fmt.Sprintf("#!/bin/sh\necho \"start $DEPLOYMENT_ID $DEPLOY_APP $DEPLOY_ENV\" >> %s\nsleep 0.3\necho \"end $DEPLOYMENT_ID $DEPLOY_APP $DEPLOY_ENV\" >> %s\n", runlog, runlog)
	if err := os.WriteFile(filepath.Join(repo, "script/deploy"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	git := gitIn(t, repo, filepath.Dir(repo))
	git("commit", "-q", "-am", "log runs")
	const apps, envs, perEnv = 5, 2, 4
	var appsJSON []string
	for i := range apps {
		appsJSON = append(appsJSON, fmt.Sprintf(`"app%d": {"provider": "shell", "repository": %q, "environments": ["e1", "e2"]}`, i, repo))
	}
	rs := make([]*replica, 2)
	cfgs := make([]string, 2)
	for i := range rs {
		addr := freeAddr(t)
		extra := fmt.Sprintf(`people:
  alice: [shell:alice, hooks:alice]
http: {addr: %q}
`, addr)
		cfg, _, _ := deployConfig(t, extra, "{"+strings.Join(appsJSON, ",")+"}", nil)
		onPostgres(t, cfg, "CHIMA_E2E_DSN")
		b, _ := os.ReadFile(cfg)
		text := strings.Replace(string(b), "store: {driver: postgres, dsn_env: CHIMA_E2E_DSN}", "store: {driver: postgres, dsn_env: CHIMA_E2E_DSN, lease: 3s}", 1)
		text = strings.Replace(text, "adapters:\n", `adapters:
  - name: hooks
    type: webhook
    inbound: [{name: ci, secret_env: CHIMA_E2E_HOOK_SECRET, wait: 5s, quiet: 200ms, outbound_url_env: CHIMA_E2E_OUT}]
`, 1)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cfgs[i] = cfg
		rs[i] = startReplica(t, cfg, fmt.Sprintf("r%d", i+1), addr)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRow(query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}

	// Deploys alternate between the replicas, four at a time. An answer
	// names the deployment it took ("#12"); requests to r1 may fail once
	// it is killed, and their deployments are not counted as accepted.
	var mu sync.Mutex
	var killed bool
	accepted := map[int64]string{} // deployment number → command
	idRE := regexp.MustCompile(`#(\d+)`)
	send := func(targets []*replica, n, from int) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for i := range n {
			k := from + i
			r := targets[k%len(targets)]
			text := fmt.Sprintf("deploy app%d/main to e%d", k%apps, 1+(k/apps)%envs)
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				replies, err := r.hook(t, secret, text)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if !(killed && r == rs[0]) {
						t.Errorf("%s on %s: %v", text, r.id, err)
					}
					return
				}
				// One answer to the command ("Deployment #8: … queued"),
				// whatever the job itself says after it.
				answers := 0
				for _, rep := range replies {
					if strings.HasPrefix(rep, "Deployment #") {
						answers++
					}
				}
				if answers != 1 {
					t.Errorf("%s on %s was answered %d times, want once: %q", text, r.id, answers, replies)
				}
				m := idRE.FindStringSubmatch(strings.Join(replies, " | "))
				if m == nil {
					t.Errorf("%s on %s answered %q, want the deployment's number", text, r.id, replies)
					return
				}
				var id int64
				fmt.Sscan(m[1], &id)
				accepted[id] = text
			}()
		}
		wg.Wait()
	}
	total := apps * envs * perEnv
	first := total / 2
	sent := make(chan struct{})
	go func() { send(rs, first, 0); close(sent) }()

	// Kill -9 r1 while it runs deploys of its own.
	deadline := time.Now().Add(60 * time.Second)
	for count(`SELECT COUNT(*) FROM jobs WHERE state = 'running' AND replica = 'r1'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("r1 never ran a job")
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	killed = true
	mu.Unlock()
	var killedAt time.Time
	_ = db.QueryRow(`SELECT clock_timestamp()`).Scan(&killedAt) // the database's clock, which leases use
	_ = rs[0].cmd.Process.Kill()
	_ = rs[0].cmd.Wait()
	<-sent
	send(rs[1:], total-first, first)

	// Every job ends, within a lease of the kill for r1's: none is lost.
	deadline = time.Now().Add(120 * time.Second)
	for count(`SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("jobs still open: %d", count(`SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every accepted deployment has its job, ended.
	for id, text := range accepted {
		var rec []byte
		if err := db.QueryRow(`SELECT value FROM kv WHERE ns = 'deploy' AND key = $1`, fmt.Sprintf("dep/%012d", id)).Scan(&rec); err != nil {
			t.Errorf("deployment #%d (%s) was accepted but has no record: %v", id, text, err)
			continue
		}
		var d struct {
			JobID int64  `json:"job_id"`
			State string `json:"state"`
		}
		_ = json.Unmarshal(rec, &d)
		if n := count(`SELECT COUNT(*) FROM jobs WHERE id = $1 AND state IN ('succeeded', 'interrupted')`, d.JobID); n != 1 {
			t.Errorf("deployment #%d (%s, %s): its job %d did not end succeeded or interrupted", id, text, d.State, d.JobID)
		}
	}
	if len(accepted) < total/2 {
		t.Errorf("only %d of %d deploys accepted", len(accepted), total)
	}
	interrupted := count(`SELECT COUNT(*) FROM jobs WHERE state = 'interrupted'`)
	if interrupted == 0 {
		t.Error("no job was interrupted by the kill, though r1 ran some")
	}
	// Reported within the lease (3s) and one sweep (a third of it) of the
	// kill, by the database's clock; the bound is doubled for a loaded
	// machine, and still far below what a lost lease protocol would take.
	var lastInterrupt int64
	_ = db.QueryRow(`SELECT COALESCE(MAX(finished_at), 0) FROM jobs WHERE state = 'interrupted'`).Scan(&lastInterrupt)
	if took := time.UnixMilli(lastInterrupt).Sub(killedAt); took > 2*(3*time.Second+time.Second) {
		t.Errorf("the killed replica's jobs were interrupted %s after the kill; the lease is 3s", took)
	} else {
		t.Logf("kill -9 to interrupted: %s (lease 3s)", took.Round(time.Millisecond))
	}
	if n := count(`SELECT COUNT(*) FROM jobs WHERE state = 'interrupted' AND replica <> 'r1'`); n != 0 {
		t.Errorf("%d jobs of r2 were interrupted", n)
	}
	if n := count(`SELECT COUNT(*) FROM jobs WHERE state NOT IN ('succeeded', 'interrupted')`); n != 0 {
		t.Errorf("%d jobs neither succeeded nor were interrupted", n)
	}
	if n := count(`SELECT COUNT(*) FROM locks`); n != 0 {
		t.Errorf("%d locks left after every job ended", n)
	}

	// None ran twice, and none of one app and environment overlapped.
	raw, err := os.ReadFile(runlog)
	if err != nil {
		t.Fatal(err)
	}
	starts := map[string]int{}
	open := map[string]string{} // "app env" → id running
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("bad run log line %q", line)
		}
		key := f[2] + " " + f[3]
		switch f[0] {
		case "start":
			starts[f[1]]++
			if other := open[key]; other != "" {
				t.Errorf("deploy %s of %s started while %s ran", f[1], key, other)
			}
			open[key] = f[1]
		case "end":
			if open[key] == f[1] {
				open[key] = ""
			}
		}
	}
	for id, n := range starts {
		if n > 1 {
			t.Errorf("deploy %s ran %d times", id, n)
		}
	}
	if succeeded := count(`SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'`); len(starts) < succeeded {
		t.Errorf("%d deploys ran for %d succeeded jobs", len(starts), succeeded)
	}

	// Each interrupted deploy's room was told, by the surviving replica.
	for id := range accepted {
		var rec []byte
		_ = db.QueryRow(`SELECT value FROM kv WHERE ns = 'deploy' AND key = $1`, fmt.Sprintf("dep/%012d", id)).Scan(&rec)
		var d struct {
			JobID int64 `json:"job_id"`
		}
		_ = json.Unmarshal(rec, &d)
		if count(`SELECT COUNT(*) FROM jobs WHERE id = $1 AND state = 'interrupted'`, d.JobID) == 0 {
			continue
		}
		told := regexp.MustCompile(fmt.Sprintf(`(?i)#%d\b[^\n]*interrupted|interrupted[^\n]*#%d\b`, id, id))
		deadline := time.Now().Add(30 * time.Second)
		for !told.MatchString(out.all()) {
			if time.Now().After(deadline) {
				t.Fatalf("the room was never told that deployment #%d was interrupted; it got:\n%s", id, out.all())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// r1 is back. A message both replicas receive (a sender retrying one
	// delivery at each) is answered once.
	rs[0] = startReplica(t, cfgs[0], "r1", rs[0].addr)
	answers := make([][]string, 2)
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies, err := r.hookDelivery(t, secret, "hello twice", "delivery-1")
			if err != nil {
				t.Errorf("hello on %s: %v", r.id, err)
			}
			answers[i] = replies
		}()
	}
	wg.Wait()
	if n := strings.Count(strings.Join(append(answers[0], answers[1]...), "\n"), "Hello, twice!"); n != 1 {
		t.Errorf("one delivery sent to both replicas was answered %d times: r1 %q, r2 %q", n, answers[0], answers[1])
	}

	// A long deploy runs on one replica; the other restarts (kill -9)
	// and leaves it alone, then cancels it.
	replies, err := rs[1].hook(t, secret, "deploy app0/slow to e1")
	m := regexp.MustCompile(`#(\d+)`).FindStringSubmatch(strings.Join(replies, " "))
	if err != nil || m == nil {
		t.Fatalf("slow deploy: %q %v", replies, err)
	}
	var slowJob int64
	var owner string
	deadline = time.Now().Add(30 * time.Second)
	for {
		err := db.QueryRow(`SELECT id, replica FROM jobs WHERE state = 'running'`).Scan(&slowJob, &owner)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow deploy never ran: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	other := 0
	if owner == "r1" {
		other = 1
	}
	_ = rs[other].cmd.Process.Kill()
	_ = rs[other].cmd.Wait()
	rs[other] = startReplica(t, cfgs[other], rs[other].id, rs[other].addr)
	if n := count(`SELECT COUNT(*) FROM jobs WHERE id = $1 AND state = 'running'`, slowJob); n != 1 {
		t.Fatalf("%s's restart ended %s's running deploy", rs[other].id, owner)
	}
	replies, err = rs[other].hook(t, secret, "deploy:cancel "+m[1])
	if err != nil {
		t.Fatalf("cancel on %s: %v", rs[other].id, err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for count(`SELECT COUNT(*) FROM jobs WHERE id = $1 AND state = 'cancelled'`, slowJob) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("deploy #%s on %s was not cancelled from %s (it answered %q)", m[1], owner, rs[other].id, replies)
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Logf("%d deploys sent, %d accepted, %d interrupted by the kill, %d ran", total, len(accepted), interrupted, len(starts))
}
