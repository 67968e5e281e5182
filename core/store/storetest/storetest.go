// Package storetest gives tests a PostgreSQL database of their own: a fresh
// schema on the server that .ci/services.sh starts on loopback, dropped when
// the test ends. The server's URL is read from the env file that
// $CHIMA_SERVICES_ENV names; without it a test is skipped, or fails under
// CI=true, where the server must be there.
package storetest

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// ServicesEnv returns key from the env file of .ci/services.sh, or "" when
// there is no such file or key.
func ServicesEnv(key string) string {
	f, err := os.Open(os.Getenv("CHIMA_SERVICES_ENV"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			return v
		}
	}
	return ""
}

// NeedServicesEnv is ServicesEnv that skips t when key is missing, or fails
// it under CI=true.
func NeedServicesEnv(t testing.TB, key string) string {
	t.Helper()
	if v := ServicesEnv(key); v != "" {
		return v
	}
	msg := key + " not in $CHIMA_SERVICES_ENV (" + os.Getenv("CHIMA_SERVICES_ENV") + "): run .ci/services.sh up and export CHIMA_SERVICES_ENV=/tmp/chima-services/env"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// PostgresAdminURL is the test server's URL, or "" when there is none.
func PostgresAdminURL() string { return ServicesEnv("CHIMA_TEST_POSTGRES_URL") }

// PostgresSchema creates a schema of its own (named prefix_<random>) on the
// test server and returns a DSN whose search_path is that schema; the
// schema is dropped, with everything in it, when t ends.
func PostgresSchema(t testing.TB, prefix string) string {
	t.Helper()
	admin := NeedServicesEnv(t, "CHIMA_TEST_POSTGRES_URL")
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	exec := func(stmt string) error {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(context.Background(), stmt)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
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
	return u.String()
}
