package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/chimaops/chima/core/pluginhost"
	"github.com/chimaops/chima/core/redact"
)

func TestHealthAndPluginStatusMaskSecretValuesInPluginErrors(t *testing.T) {
	const secret = "hunter22-in-a-path"
	host := pluginhost.New(pluginhost.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(host.Stop)
	// A plugin that cannot start, whose error names the secret value.
	if errs := host.Start(context.Background(), []pluginhost.Spec{{Name: "leaky", Path: "/nonexistent/" + secret + "/plugin"}}); len(errs) != 1 {
		t.Fatalf("start errors = %v, want one", errs)
	}
	a := &app{host: host, redact: redact.New(secret)}
	err := a.health(context.Background())
	if err == nil || !strings.Contains(err.Error(), "plugin leaky is down") {
		t.Fatalf("health = %v, want the failed plugin named", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("/healthz would show the secret: %v", err)
	}
	status := a.pluginStatus()
	if len(status) != 1 || status[0].LastError == "" {
		t.Fatalf("status = %+v", status)
	}
	if strings.Contains(status[0].LastError, secret) {
		t.Errorf("/plugins would show the secret: %q", status[0].LastError)
	}
}
