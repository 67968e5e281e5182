package store

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// The store's whole test suite runs on both engines: TestMain runs it on
// SQLite, then runs the test binary again with CHIMA_STORE_ENGINE=postgres
// against the PostgreSQL that .ci/services.sh starts (its URL is in the file
// $CHIMA_SERVICES_ENV names). Without that file the PostgreSQL pass is
// skipped, unless CI=true, where it fails.
const engineEnv = "CHIMA_STORE_ENGINE"

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if os.Getenv(engineEnv) == "" && flag.Lookup("test.bench").Value.String() == "" {
		if postgresAdminURL() == "" && os.Getenv("CI") != "true" {
			fmt.Println("store: PostgreSQL pass skipped: no CHIMA_SERVICES_ENV (run .ci/services.sh up)")
		} else {
			fmt.Println("store: the same tests against PostgreSQL")
			cmd := exec.Command(os.Args[0], os.Args[1:]...)
			cmd.Env = append(os.Environ(), engineEnv+"=postgres")
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Println("store: PostgreSQL pass failed:", err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// onPostgres reports whether this pass of the suite runs on PostgreSQL.
func onPostgres() bool { return os.Getenv(engineEnv) == "postgres" }

// postgresAdminURL is the test server's URL from the services env file, or
// "".
func postgresAdminURL() string {
	f, err := os.Open(os.Getenv("CHIMA_SERVICES_ENV"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CHIMA_TEST_POSTGRES_URL="); ok {
			return v
		}
	}
	return ""
}

var (
	schemasMu sync.Mutex
	schemas   = map[string]string{} // test path → DSN of its schema
)

// postgresDSN returns the DSN of a PostgreSQL schema standing for the SQLite
// file path, creating the schema the first time a path is seen (so that
// reopening a path reopens the same data) and dropping it when the test
// ends.
func postgresDSN(t testing.TB, path string) string {
	t.Helper()
	schemasMu.Lock()
	defer schemasMu.Unlock()
	if dsn, ok := schemas[path]; ok {
		return dsn
	}
	admin := postgresAdminURL()
	if admin == "" {
		t.Fatal("CHIMA_STORE_ENGINE=postgres but no CHIMA_TEST_POSTGRES_URL in $CHIMA_SERVICES_ENV (run .ci/services.sh up)")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	db, err := openAdmin(admin)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := openAdmin(admin)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", admin, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	schemas[path] = u.String()
	return schemas[path]
}
