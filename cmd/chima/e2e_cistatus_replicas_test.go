package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// consoleLines keeps what a replica's console shows, line by line, for
// reading while the replica runs.
type consoleLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *consoleLines) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// shown returns the whole lines shown so far.
func (c *consoleLines) shown() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	text := c.buf.String()
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		return strings.Split(text[:i], "\n")
	}
	return nil
}

// Two replicas of the bot on one PostgreSQL each run the ci-status plugin;
// every check run of one commit reaches both (GitHub's webhook behind a
// load balancer, a redelivery), all at once. The room gets one message
// about the commit, edited as the checks end, not one per replica.
func TestTwoReplicasOnPostgresPostOneCIMessagePerCommit(t *testing.T) {
	dsn := postgresSchema(t)
	ciStatusPlugin(t)
	t.Setenv("CHIMA_E2E_DSN", dsn)
	const secret = "ci replicas secret"
	t.Setenv("CHIMA_TEST_HOOK_SECRET", secret)
	t.Setenv("CHIMA_TEST_CI_TOKEN", "") // no GitHub API: the webhooks say it all

	consoles := make([]*consoleLines, 2)
	hooks := make([]func(event, id string, body []byte), 2)
	for i := range consoles {
		addr := freeAddr(t)
		cfg := writeConfig(t, fmt.Sprintf("http:\n  addr: %s\nwebhooks:\n  github: {secret_env: CHIMA_TEST_HOOK_SECRET}\n", addr))
		onPostgres(t, cfg, "CHIMA_E2E_DSN")
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(b), "store: {driver: postgres, dsn_env: CHIMA_E2E_DSN}", "store: {driver: postgres, dsn_env: CHIMA_E2E_DSN, lease: 3s}", 1)
		text = strings.Replace(text, "roles:", fmt.Sprintf(`  - name: cistatus
    path: %s
    settings:
      subscriptions: |
        - {repo: Codertocat/Hello-World, room: ci}
roles:`, filepath.Join(binDir, "plugins/cistatus")), 1)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		consoles[i] = &consoleLines{}
		startReplicaShowing(t, cfg, fmt.Sprintf("r%d", i+1), addr, consoles[i])
		hooks[i] = githubDeliverer(t, "http://"+addr+"/webhooks/github", secret)
	}

	const checks = 6
	sha := strings.Repeat("c", 40)
	var wg sync.WaitGroup
	var ids []string
	for n := 1; n <= checks; n++ {
		body := checkRunDelivery(t, "Codertocat/Hello-World", "main", sha, fmt.Sprintf("check-%d", n), "success")
		for r := range hooks {
			id := fmt.Sprintf("ci-replicas-%d-r%d", n, r+1)
			ids = append(ids, id)
			wg.Add(1)
			go func() { defer wg.Done(); hooks[r]("check_run", id, body) }()
		}
	}
	wg.Wait()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	handledBy := time.Now().Add(60 * time.Second)
	for {
		var handled, failed int
		if err := db.QueryRow(`SELECT COUNT(*) FILTER (WHERE state = 'handled'), COUNT(*) FILTER (WHERE state = 'failed')
			FROM event_deliveries WHERE plugin = 'cistatus'`).Scan(&handled, &failed); err != nil {
			t.Fatal(err)
		}
		if failed > 0 {
			t.Fatalf("%d deliveries to cistatus failed", failed)
		}
		if handled == len(ids) {
			break
		}
		if time.Now().After(handledBy) {
			t.Fatalf("%d of %d deliveries handled", handled, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every delivery is handled, so every post is made (a post returns
	// once the console printed it). Each replica's console is its own
	// process's, so an edit by the other replica is not seen there: the
	// edits are the plugin's unit test's (TestTwoReplicasHandlingOneCommit…).
	var all []string
	for _, c := range consoles {
		all = append(all, c.shown()...)
	}
	posts := 0
	for _, c := range consoles {
		for _, l := range c.shown() {
			if strings.HasPrefix(l, "[ci] chima: Codertocat/Hello-World") {
				posts++
			}
		}
	}
	if posts != 1 {
		t.Fatalf("%d messages about commit ccccccc in room ci across the replicas, want 1:\n%s", posts, strings.Join(all, "\n"))
	}
}
