package main

import (
	"context"
	"fmt"
	"os"

	"github.com/chimaops/chima/core/config"
	"github.com/chimaops/chima/core/store"
)

// openStore opens the store chima.yaml configures: the SQLite file at
// store.path, or the PostgreSQL database whose DSN is in the environment
// variable store.dsn_env names (the DSN itself never goes in the file).
func openStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	switch cfg.Store.Driver {
	case config.DriverPostgres:
		dsn := os.Getenv(cfg.Store.DSNEnv)
		if dsn == "" {
			return nil, fmt.Errorf("open store: store.dsn_env names %s, which is empty or unset: export the PostgreSQL DSN in it", cfg.Store.DSNEnv)
		}
		return store.Open(ctx, "postgres", dsn)
	default:
		return store.Open(ctx, "sqlite", cfg.Store.Path)
	}
}

// replicaID is this process's replica id on a shared store: the --replica
// flag, else store.replica, else the host name.
func replicaID(cfg *config.Config, flag string) string {
	if flag != "" {
		return flag
	}
	if cfg.Store.Replica != "" {
		return cfg.Store.Replica
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "chima"
}
