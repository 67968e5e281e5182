package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// debugRequested says whether the binary was run to be debugged: with
// --debug among its arguments, or CHIMA_PLUGIN_DEBUG=1 (or true).
func debugRequested(args []string, getenv func(string) string) bool {
	for _, a := range args {
		if a == "--debug" || a == "-debug" {
			return true
		}
	}
	v := getenv(wire.EnvDebug)
	return v == "1" || strings.EqualFold(v, "true")
}

// ServeDebug serves p in debug mode: not started by a bot but by a person,
// in a terminal or under a debugger (dlv exec ./plugin -- --debug). It
// listens with go-plugin's test mode (no handshake on stdout, no magic
// cookie, no AutoMTLS), writes to w the line to paste to attach a bot to it,
//
//	chima run --attach NAME='{"protocol":"grpc",...}'
//
// and the CHIMA_REATTACH_PLUGINS alternative, then serves until ctx ends or
// the bot that attached goes away (it stopped or died): go-plugin's broker
// carries the Host service of one bot per process, so a debugged plugin
// serves one bot and then exits; start it again to attach again. Its logs
// go to stderr as text.
func ServeDebug(ctx context.Context, p *Plugin, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	reattachCh := make(chan *plugin.ReattachConfig, 1)
	closeCh := make(chan struct{})
	watch := &hostWatch{left: func() {
		logger.Info("the bot went away; stopping", "plugin", p.Name)
		cancel()
	}}
	printed := make(chan error, 1)
	go func() {
		select {
		case rc := <-reattachCh:
			printed <- printAttach(w, p.Name, wire.NewReattach(rc))
		case <-closeCh:
			printed <- errors.New("the debug server stopped before it listened (see the log above)")
		}
	}()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		VersionedPlugins: wire.PluginSets(&wire.GRPCPlugin{
			Impl: func(b *plugin.GRPCBroker) pluginv1.PluginServer { return NewServer(p, b, logger) },
		}),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpcServer(append(opts, grpc.StatsHandler(watch)))
		},
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Info}),
		Test:   &plugin.ServeTestConfig{Context: ctx, ReattachConfigCh: reattachCh, CloseCh: closeCh},
	})
	if err := <-printed; err != nil {
		return fmt.Errorf("debug mode: %w", err)
	}
	return nil
}

// printAttach writes how to attach a bot to the plugin: the --attach line,
// then the environment alternative.
func printAttach(w io.Writer, name string, r wire.Reattach) error {
	one, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode reattach config: %w", err)
	}
	all, err := json.Marshal(map[string]wire.Reattach{name: r})
	if err != nil {
		return fmt.Errorf("encode reattach config: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s: serving in debug mode (pid %d); attach a bot to it with:\n"+
		"chima run --attach %s=%s\n"+
		"or: %s=%s chima run\n"+
		"%s: it serves that bot and exits when the bot stops.\n",
		name, r.Pid, name, shellQuote(string(one)), wire.EnvReattach, shellQuote(string(all)), name)
	if err != nil {
		return fmt.Errorf("print reattach config: %w", err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell, in single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// hostWatch is a gRPC stats handler that notices the bot leaving: when the
// last connection that ran a call closes. Connections that never ran one
// (go-plugin's reattach probe dials and hangs up) do not count.
type hostWatch struct {
	left func()

	mu     sync.Mutex
	active int
}

type connTagKey struct{}

// connTag marks one connection; used is set by its first call.
type connTag struct{ used atomic.Bool }

func (h *hostWatch) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return context.WithValue(ctx, connTagKey{}, &connTag{})
}

func (h *hostWatch) HandleConn(ctx context.Context, s stats.ConnStats) {
	tag, _ := ctx.Value(connTagKey{}).(*connTag)
	if _, end := s.(*stats.ConnEnd); !end || tag == nil || !tag.used.Load() {
		return
	}
	h.mu.Lock()
	h.active--
	last := h.active == 0
	h.mu.Unlock()
	if last {
		h.left()
	}
}

func (h *hostWatch) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	if tag, _ := ctx.Value(connTagKey{}).(*connTag); tag != nil && tag.used.CompareAndSwap(false, true) {
		h.mu.Lock()
		h.active++
		h.mu.Unlock()
	}
	return ctx
}

func (h *hostWatch) HandleRPC(context.Context, stats.RPCStats) {}
