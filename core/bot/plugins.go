package bot

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/router"
	"github.com/chimaops/chima/sdk/pluginv1"
)

// manifestNS is the store namespace of the last manifest of each plugin. A
// plugin name cannot hold a colon, so it never meets a plugin's own KV.
const manifestNS = "chima:manifests"

// operatorHint ends every message about a plugin that is down.
const operatorHint = "An operator can see why with `chima plugins` and the bot's log."

// PluginChanged follows a plugin's state: a plugin that runs has its
// commands registered with the router, and its manifest remembered in the
// store; a plugin that failed without ever running in this process has the
// commands of its remembered manifest registered, so that those commands are
// answered with why the plugin is down instead of "I don't know". The plugin
// host's OnChange calls it; it must not block for long. A plugin running
// again also hears of the jobs interrupted while it was down.
func (b *Bot) PluginChanged(plugin string, m *pluginv1.Manifest, s pluginhost.State) {
	defer b.pluginBack(plugin, s)
	switch {
	case s == pluginhost.StateRunning && m != nil:
		if err := b.o.Router.SetPlugin(plugin, m); err != nil {
			b.log.Error("plugin commands refused", "plugin", plugin, "error", err)
			return
		}
		b.rememberManifest(plugin, m)
		b.setPluginSchedules(plugin, m)
	case s == pluginhost.StateFailed && !b.routerKnows(plugin):
		if last := b.lastManifest(plugin); last != nil {
			if err := b.o.Router.SetPlugin(plugin, last); err != nil {
				b.log.Warn("commands of the plugin's last manifest refused", "plugin", plugin, "error", err)
			}
		}
	}
}

func (b *Bot) routerKnows(plugin string) bool {
	return slices.ContainsFunc(b.o.Router.Commands(), func(e router.Entry) bool { return e.Plugin == plugin })
}

func (b *Bot) rememberManifest(plugin string, m *pluginv1.Manifest) {
	if b.o.Store == nil {
		return
	}
	data, err := proto.Marshal(m)
	if err != nil {
		b.log.Error("encode plugin manifest", "plugin", plugin, "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if old, ok, err := b.o.Store.KVGet(ctx, manifestNS, plugin); err == nil && ok && bytes.Equal(old, data) {
		return // a restart describes the same plugin: nothing to write
	}
	if err := b.o.Store.KVSet(ctx, manifestNS, plugin, data); err != nil {
		b.log.Error("remember plugin manifest", "plugin", plugin, "error", err)
	}
}

func (b *Bot) lastManifest(plugin string) *pluginv1.Manifest {
	if b.o.Store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, ok, err := b.o.Store.KVGet(ctx, manifestNS, plugin)
	if err != nil || !ok {
		return nil
	}
	m := &pluginv1.Manifest{}
	if err := proto.Unmarshal(data, m); err != nil {
		b.log.Warn("decode remembered plugin manifest", "plugin", plugin, "error", err)
		return nil
	}
	return m
}

// downPluginFor returns the plugin that is configured but not running and
// that text is most likely meant for: its first word is the plugin's name,
// or starts with the name and a colon ("deploy:lock"), with its state.
// "" when none is.
func (b *Bot) downPluginFor(text string) (string, pluginhost.State) {
	kw, _, _ := strings.Cut(strings.TrimSpace(text), " ")
	kw = strings.TrimRight(strings.ToLower(kw), "!")
	if kw == "" {
		return "", ""
	}
	for _, p := range b.o.Plugins.Plugins() {
		if kw != p && !strings.HasPrefix(kw, p+":") {
			continue
		}
		if st := b.o.Plugins.State(p); st != pluginhost.StateRunning && st != "" {
			return p, st
		}
	}
	return "", ""
}

// downMessage says which plugin is down, why, when it is tried again and
// what an operator can do.
func (b *Bot) downMessage(plugin string) string {
	st, _ := b.o.Plugins.PluginStatus(plugin)
	now := time.Now()
	switch st.State {
	case pluginhost.StateFailed:
		if st.FailedToStart {
			return fmt.Sprintf("⚠ The %s plugin could not start: %s. %s", plugin, st.Why(now), operatorHint)
		}
		return fmt.Sprintf("⚠ The %s plugin is down (%s). %s", plugin, st.Why(now), operatorHint)
	case pluginhost.StateStarting, pluginhost.StateRestarting:
		return fmt.Sprintf("⚠ The %s plugin is restarting and was not back in time; your command was not run. Send it again in a moment. If it stays down, %s",
			plugin, lowerFirst(operatorHint))
	case pluginhost.StateStopped:
		return fmt.Sprintf("⚠ The %s plugin is stopped: the bot is shutting down. Your command was not run.", plugin)
	}
	return fmt.Sprintf("⚠ The %s plugin is not available (%s). %s", plugin, st.State, operatorHint)
}

// crashMessage says that plugin crashed while handling what ("`deploy x`",
// "a click on a button"), and what became of it.
func (b *Bot) crashMessage(ctx context.Context, plugin, what string) string {
	// A restart takes a moment; wait a little for it so the message can
	// say how it went.
	st, _ := b.o.Plugins.PluginStatus(plugin)
	for wait := time.Now().Add(crashReportWait); restarting(st.State) && time.Now().Before(wait) && ctx.Err() == nil; {
		time.Sleep(20 * time.Millisecond)
		st, _ = b.o.Plugins.PluginStatus(plugin)
	}
	switch st.State {
	case pluginhost.StateRunning:
		return fmt.Sprintf("⚠ The %s plugin crashed while handling %s; it was restarted. Your command was not retried.", plugin, what)
	case pluginhost.StateFailed:
		return fmt.Sprintf("⚠ The %s plugin crashed while handling %s, and is down now (%s). Your command was not retried. %s",
			plugin, what, st.Why(time.Now()), operatorHint)
	default:
		return fmt.Sprintf("⚠ The %s plugin crashed while handling %s; it is being restarted. Your command was not retried.", plugin, what)
	}
}

// crashReportWait bounds how long a crash report waits for the restart.
const crashReportWait = 3 * time.Second

func restarting(s pluginhost.State) bool {
	return s == pluginhost.StateStarting || s == pluginhost.StateRestarting
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
