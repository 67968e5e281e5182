package store

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/chimaops/chima/core/store/storetest"
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

// postgresAdminURL is the test server's URL, or "".
func postgresAdminURL() string { return storetest.PostgresAdminURL() }

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
	schemas[path] = storetest.PostgresSchema(t, "t")
	return schemas[path]
}
