package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// runSocketMode receives events over Socket Mode until ctx ends. slack-go's
// client reconnects by itself (on Slack's disconnect/refresh, a dropped
// connection, a missed ping) with its own backoff; when it gives up with
// anything but bad credentials, a new client is started after a backoff of
// ours. Every envelope is acknowledged before it is handled.
func (a *Adapter) runSocketMode(ctx context.Context) error {
	wait := a.opts.Backoff
	for {
		opts := []socketmode.Option{socketmode.OptionLog(slogLogger{a.log})}
		if a.opts.PingInterval > 0 {
			opts = append(opts, socketmode.OptionPingInterval(a.opts.PingInterval))
		}
		client := socketmode.New(a.api, opts...)
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- client.RunContext(runCtx) }()
		err := a.consume(runCtx, client, done)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("slack: socket mode: %w", err)
		}
		a.log.Warn("slack: socket mode ended, reconnecting", "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, a.opts.MaxBackoff)
	}
}

// consume handles the client's events until its RunContext returns, and
// returns what it returned.
func (a *Adapter) consume(ctx context.Context, client *socketmode.Client, done <-chan error) error {
	for {
		select {
		case err := <-done:
			return err
		case evt := <-client.Events:
			a.socketEvent(ctx, client, evt)
		}
	}
}

// socketEvent acknowledges and handles one Socket Mode event.
func (a *Adapter) socketEvent(ctx context.Context, client *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		a.log.Debug("slack: socket mode connecting")
	case socketmode.EventTypeConnected:
		a.log.Info("slack: socket mode connected")
	case socketmode.EventTypeConnectionError:
		a.log.Warn("slack: socket mode connection failed", "err", evt.Data)
	case socketmode.EventTypeInvalidAuth:
		a.log.Error("slack: socket mode: the app token was refused")
	case socketmode.EventTypeEventsAPI:
		a.ack(ctx, client, evt.Request, nil)
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		if !ok || ev.Type != slackevents.CallbackEvent {
			return
		}
		var eventID string
		if cb, ok := ev.Data.(*slackevents.EventsAPICallbackEvent); ok {
			eventID = cb.EventID
		}
		a.handleEvent(eventID, ev.InnerEvent)
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slackgo.SlashCommand)
		if !ok {
			a.ack(ctx, client, evt.Request, nil)
			return
		}
		if cmd.Command != a.opts.SlashCommand {
			a.ack(ctx, client, evt.Request, map[string]string{"response_type": "ephemeral",
				"text": fmt.Sprintf("This bot answers %s, not %s.", a.opts.SlashCommand, cmd.Command)})
			return
		}
		a.ack(ctx, client, evt.Request, slashAck)
		a.handleSlash(cmd)
	case socketmode.EventTypeInteractive:
		a.ack(ctx, client, evt.Request, nil)
		if cb, ok := evt.Data.(slackgo.InteractionCallback); ok {
			a.handleInteraction(cb)
		}
	case socketmode.EventTypeErrorBadMessage:
		var bad *socketmode.ErrorBadMessage
		if e, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			bad = e
		}
		a.log.Warn("slack: socket mode: unreadable envelope", "err", errCause(bad))
	}
}

// ack acknowledges an envelope so that Slack does not deliver it again.
func (a *Adapter) ack(ctx context.Context, client *socketmode.Client, req *socketmode.Request, payload any) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	if err := client.AckCtx(ctx, req.EnvelopeID, payload); err != nil && !errors.Is(err, context.Canceled) {
		a.log.Warn("slack: socket mode ack failed", "envelope", req.EnvelopeID, "err", err)
	}
}

func errCause(b *socketmode.ErrorBadMessage) error {
	if b == nil {
		return errors.New("unknown")
	}
	return b.Cause
}

// slogLogger lets slack-go's socketmode log through slog, at debug level:
// it only logs when debugging is on.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Output(_ int, msg string) error {
	s.l.Debug("slack-go: " + msg)
	return nil
}
