package sdk

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// Serve runs the plugin until the host stops it. It must be the last call
// of main, and nothing may be printed to stdout before it: stdout carries
// go-plugin's handshake.
//
// Run by a person with --debug (or CHIMA_PLUGIN_DEBUG=1), it serves in
// debug mode instead: it prints how to attach a bot to it (`chima run
// --attach NAME='{...}'`) and runs until that bot goes away; see
// ServeDebug.
func Serve(p *Plugin) {
	if debugRequested(os.Args[1:], os.Getenv) {
		if err := ServeDebug(context.Background(), p, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
			os.Exit(1)
		}
		return
	}
	logger := NewLogger(os.Stderr)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		VersionedPlugins: wire.PluginSets(&wire.GRPCPlugin{
			Impl: func(b *plugin.GRPCBroker) pluginv1.PluginServer { return NewServer(p, b, logger) },
		}),
		GRPCServer: grpcServer,
		// go-plugin's own messages go to stderr in the same JSON shape.
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info}),
	})
}

// NewLogger returns a slog logger that writes JSON records in the shape
// go-plugin forwards into the host's log (@level, @message, @timestamp).
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				a.Key = "@timestamp"
			case slog.LevelKey:
				a.Key = "@level"
				if l, ok := a.Value.Any().(slog.Level); ok {
					a.Value = slog.StringValue(levelName(l))
				}
			case slog.MessageKey:
				a.Key = "@message"
			}
			return a
		},
	}))
}

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	default:
		return "debug"
	}
}
