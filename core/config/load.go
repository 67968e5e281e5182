package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ParseOptions tunes ParseWithOptions.
type ParseOptions struct {
	// SkipFileChecks skips the checks that look at the file system (plugin
	// executables exist, are executable and match their sha256 pin). For
	// unit tests and fuzzing, which have no plugin binaries; a bot must not
	// start from a Config parsed this way.
	SkipFileChecks bool
}

// Load reads, parses and validates the config file at path. Relative paths
// in it are resolved against the file's directory, and plugin executables are
// checked. On any problem it returns a nil Config and a *ValidationError
// listing every problem (or the error reading the file).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, dir)
}

// Parse parses and validates a config held in memory, with every check Load
// makes. file names it in problems ("chima.yaml"); relative paths in it are
// resolved against baseDir (left relative to the working directory when
// baseDir is empty).
func Parse(data []byte, file string, baseDir string) (*Config, error) {
	return ParseWithOptions(data, file, baseDir, ParseOptions{})
}

// ParseWithOptions is Parse with options; see ParseOptions.
func ParseWithOptions(data []byte, file string, baseDir string, opts ParseOptions) (*Config, error) {
	m := newMeta(file)
	c := &Config{meta: m}
	problems, fatal := parseDocument(data, c, m)
	if fatal {
		return nil, newValidationError(problems)
	}
	c.applyDefaults()
	if !opts.SkipFileChecks {
		problems = append(problems, c.checkFiles(baseDir)...)
	}
	c.resolvePaths(baseDir)
	c.dir = baseDir
	if err := c.Validate(); err != nil {
		problems = append(problems, err.(*ValidationError).Problems...)
	}
	if err := newValidationError(problems); err != nil {
		return nil, err
	}
	return c, nil
}

// Dir is the directory relative paths in the config are resolved against:
// the config file's, for a Config from Load. Plugins get it to resolve their
// own settings' paths the same way.
func (c *Config) Dir() string { return c.dir }

// applyDefaults fills in keys the file left out (or null). Keys set
// explicitly keep their value, even zero, and are validated as given.
func (c *Config) applyDefaults() {
	m := c.meta
	b := &c.Bot
	if !m.isSet("bot.command_timeout") {
		b.CommandTimeout = DefaultCommandTimeout
	}
	if !m.isSet("bot.max_concurrency") {
		b.MaxConcurrency = DefaultMaxConcurrency
	}
	if !m.isSet("bot.max_message_bytes") {
		b.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.Store.Driver == "" {
		c.Store.Driver = DefaultStoreDriver
	}
	if c.Store.Driver == DriverSQLite && c.Store.Path == "" {
		c.Store.Path = DefaultStorePath
	}
	if c.HTTP.BaseURL == "" && c.HTTP.Addr != "" {
		if host, port, err := net.SplitHostPort(c.HTTP.Addr); err == nil {
			switch host {
			case "", "0.0.0.0", "::":
				host = "localhost"
			}
			c.HTTP.BaseURL = "http://" + net.JoinHostPort(host, port)
		}
	}
	c.HTTP.BaseURL = strings.TrimRight(c.HTTP.BaseURL, "/")
	for i := range c.Policies {
		if a := c.Policies[i].Approval; a != nil {
			key := indexKey("policies", i) + ".approval"
			if !m.isSet(key + ".count") {
				a.Count = DefaultApprovalCount
			}
			if !m.isSet(key + ".ttl") {
				a.TTL = DefaultApprovalTTL
			}
		}
	}
	for i := range c.Plugins {
		p := &c.Plugins[i]
		key := indexKey("plugins", i)
		if !m.isSet(key + ".max_restarts") {
			p.MaxRestarts = DefaultMaxRestarts
		}
		if !m.isSet(key + ".restart_window") {
			p.RestartWindow = DefaultRestartWindow
		}
		p.SHA256 = strings.ToLower(p.SHA256)
	}
}

// resolve returns path resolved against baseDir.
func resolve(baseDir, path string) string {
	if path == "" || filepath.IsAbs(path) || baseDir == "" {
		return path
	}
	return filepath.Join(baseDir, path)
}

// resolvePaths makes relative paths relative to the config file's directory.
func (c *Config) resolvePaths(baseDir string) {
	for i := range c.Plugins {
		c.Plugins[i].Path = resolve(baseDir, c.Plugins[i].Path)
	}
	if c.Store.Driver == DriverSQLite && c.Store.Path != ":memory:" && !strings.HasPrefix(c.Store.Path, "file:") {
		c.Store.Path = resolve(baseDir, c.Store.Path)
	}
}

// checkFiles checks every enabled plugin's executable. Messages name the
// path as written in the file.
func (c *Config) checkFiles(baseDir string) []Problem {
	var problems []Problem
	add := func(key, format string, args ...any) {
		c.meta.bad[key] = true
		problems = append(problems, Problem{File: c.meta.file, Line: c.meta.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for i, p := range c.Plugins {
		key := indexKey("plugins", i) + ".path"
		if p.Disabled || p.Path == "" || c.meta.isBad(key) {
			continue
		}
		path := resolve(baseDir, p.Path)
		fi, err := os.Stat(path)
		switch {
		case os.IsNotExist(err):
			add(key, "file not found: %s", p.Path)
			continue
		case err != nil:
			add(key, "cannot use %s: %v", p.Path, unwrapPathError(err))
			continue
		case fi.IsDir():
			add(key, "%s is a directory, not an executable", p.Path)
			continue
		case !fi.Mode().IsRegular():
			add(key, "%s is not a regular file", p.Path)
			continue
		case runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0:
			add(key, "%s is not executable (chmod +x it)", p.Path)
			continue
		}
		if p.SHA256 == "" || !isHex64(p.SHA256) {
			continue // a malformed pin is reported by Validate
		}
		sum, err := fileSHA256(path)
		if err != nil {
			add(key, "cannot read %s: %v", p.Path, unwrapPathError(err))
			continue
		}
		if sum != p.SHA256 {
			add(indexKey("plugins", i)+".sha256", "%s does not match the pin: its sha256 is %s", p.Path, sum)
		}
	}
	return problems
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
