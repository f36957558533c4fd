package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// PostgresEnv overrides the admin DSN of the PostgreSQL server the tests
// use, e.g. postgres://postgres:secret@db.example:5432/postgres.
const PostgresEnv = "HAZARDWATCH_TEST_POSTGRES"

// postgresInstall is how to get the server the tests expect.
const postgresInstall = "apt-get install -y postgresql && pg_ctlcluster --skip-systemctl-redirect 15 main start"

// postgresAdmins are tried in turn when PostgresEnv is not set: the
// machine's server on 127.0.0.1 with trust authentication, as the postgres
// or the root role.
var postgresAdmins = []string{
	"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
	"postgres://root@127.0.0.1:5432/postgres?sslmode=disable",
}

// Postgres creates a fresh database hw_test_<random> on the machine's
// PostgreSQL server (or the one PostgresEnv names), drops it when the test
// ends, and returns its postgres:// DSN. Tests that each take their own
// database run in parallel and again without cleaning up. No server
// answering fails the test with how to start one.
func Postgres(t testing.TB) string {
	t.Helper()
	admins := postgresAdmins
	if env := os.Getenv(PostgresEnv); env != "" {
		admins = []string{env}
	}
	var errs []error
	for _, admin := range admins {
		dsn, err := createDatabase(t, admin)
		if err == nil {
			return dsn
		}
		errs = append(errs, err)
	}
	t.Fatalf("no PostgreSQL server to create a test database on: %v\nstart one with: %s (or run scripts/test.sh, which does), or set %s to an admin DSN",
		errors.Join(errs...), postgresInstall, PostgresEnv)
	return ""
}

// createDatabase creates the test's database through the admin DSN and
// registers its removal.
func createDatabase(t testing.TB, admin string) (string, error) {
	t.Helper()
	u, err := url.Parse(admin)
	if err != nil {
		return "", fmt.Errorf("%s is not a postgres:// URL", PostgresEnv) // the error would quote the password
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", u.Redacted(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "hw_test_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		return "", fmt.Errorf("create database %s at %s: %w", name, u.Redacted(), err)
	}
	t.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a connection the test leaked must not keep the database.
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s at %s: %v", name, u.Redacted(), err)
		}
	})
	u.Path = "/" + name
	return u.String(), nil
}
