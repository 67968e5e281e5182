package pluginhost

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// hclogFor returns an hclog logger (what go-plugin speaks) whose records go
// to logger, with every secret value redacted. go-plugin parses a plugin's
// JSON stderr lines into such records, so plugin logs land in the host's
// structured log with their own level.
func hclogFor(logger *slog.Logger, plugin string, secrets []string) hclog.Logger {
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:   "plugin",
		Output: io.Discard,
		Level:  hclog.Debug,
	})
	il.RegisterSink(&slogSink{logger: logger.With("plugin", plugin), secrets: nonEmpty(secrets)})
	return il
}

type slogSink struct {
	logger  *slog.Logger
	secrets []string
}

// Accept forwards one hclog record.
func (s *slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	lvl := slog.LevelDebug
	switch {
	case level >= hclog.Error:
		lvl = slog.LevelError
	case level >= hclog.Warn:
		lvl = slog.LevelWarn
	case level >= hclog.Info:
		lvl = slog.LevelInfo
	}
	// go-plugin's own chatter is debug; the plugin's records are logged as
	// the plugin leveled them.
	if !s.logger.Enabled(context.Background(), lvl) {
		return
	}
	attrs := make([]any, 0, len(args)+2)
	attrs = append(attrs, "logger", name)
	for i := 0; i+1 < len(args); i += 2 {
		attrs = append(attrs, fmt.Sprint(args[i]), s.redact(args[i+1]))
	}
	s.logger.Log(context.Background(), lvl, s.redactString(msg), attrs...)
}

func (s *slogSink) redact(v any) any {
	if len(s.secrets) == 0 {
		return v
	}
	switch x := v.(type) {
	case string:
		return s.redactString(x)
	case error:
		return s.redactString(x.Error())
	case fmt.Stringer:
		return s.redactString(x.String())
	}
	return v
}

func (s *slogSink) redactString(v string) string {
	return Redact(v, s.secrets)
}

// Redact replaces every occurrence of each secret in s with "[redacted]".
func Redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

func nonEmpty(ss []string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if len(s) >= 4 { // shorter "secrets" would redact ordinary words
			out = append(out, s)
		}
	}
	return out
}
