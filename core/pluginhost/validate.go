package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/wire"
)

// ErrNotValidated means the plugin cannot check its settings: it was built
// before protocol minor 4, or has no Validate. Its settings are neither
// valid nor invalid as far as the host knows.
var ErrNotValidated = errors.New("the plugin does not validate its settings")

// Problem is one thing a plugin found wrong with its settings, or with a
// file they name.
type Problem struct {
	// File is the file the problem is in (an apps file), or "" for the
	// plugin's settings themselves.
	File string
	// Line is the 1-based line in File; 0 when unknown.
	Line int
	// Key is the key at fault: a settings key when File is "", else a key
	// path in File; "" for the whole file.
	Key string
	// Message says what is wrong.
	Message string
}

// String renders the problem as "file:line: key: message", leaving out the
// parts that are unknown; a settings key is shown as "settings.<key>".
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	}
	switch {
	case p.Key != "" && p.File == "":
		b.WriteString("settings." + p.Key + ": ")
	case p.Key != "":
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Validate starts spec's plugin only to have it check its settings, stops
// it, and returns the problems it found (none when the settings are valid).
// The plugin is not described, configured or served a Host service, and
// the Host's plugins are not touched. A plugin that does not implement
// Validate gives ErrNotValidated; one that cannot be started, or fails
// otherwise, gives that error.
func (h *Host) Validate(ctx context.Context, spec Spec) ([]Problem, error) {
	client, _, conn, err := startProcess(h, spec)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", spec.Name, err)
	}
	defer client.Kill()
	vctx, cancel := context.WithTimeout(ctx, h.opts.StartTimeout)
	defer cancel()
	strs, doc, err := settingsMessages(spec.Settings)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", spec.Name, err)
	}
	resp, err := conn.Plugin.Validate(vctx, &pluginv1.ValidateRequest{
		Settings: strs, SettingsJson: doc, HostVersion: h.opts.Version, ProtocolMinor: wire.ProtocolMinor,
	})
	if status.Code(err) == codes.Unimplemented {
		return nil, fmt.Errorf("plugin %s: %w", spec.Name, ErrNotValidated)
	}
	if err != nil {
		return nil, fmt.Errorf("plugin %s: validate: %w", spec.Name, err)
	}
	problems := make([]Problem, 0, len(resp.GetProblems()))
	for _, p := range resp.GetProblems() {
		problems = append(problems, Problem{File: p.GetFile(), Line: int(p.GetLine()), Key: p.GetKey(), Message: p.GetMessage()})
	}
	return problems, nil
}
