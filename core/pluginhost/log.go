package pluginhost

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"

	"github.com/chimaops/chima/core/redact"
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
	il.RegisterSink(&slogSink{logger: logger.With("plugin", plugin), red: redact.New(secrets...)})
	return il
}

type slogSink struct {
	logger *slog.Logger
	red    *redact.Redactor // the plugin's own secret values; nil masks nothing
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
	if s.red == nil {
		return v
	}
	switch x := v.(type) {
	case string:
		return s.red.String(x)
	case error:
		return s.red.String(x.Error())
	case fmt.Stringer:
		return s.red.String(x.String())
	}
	return v
}

func (s *slogSink) redactString(v string) string { return s.red.String(v) }
