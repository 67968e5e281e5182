package main

import (
	"context"
	"fmt"
	"io"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
	"github.com/chimaops/chima/plugins/deploy/internal/provider"
)

// runProvider runs the app's provider for dep in the checkout dir, writing
// its output to out. Providers exec their tools directly (never through a
// shell), in their own process group, which is ended when ctx ends.
func (d *deployer) runProvider(ctx context.Context, a *apps.App, dep *Deployment, dir string, out io.Writer) error {
	p, err := provider.New(a.Provider, provider.Options{})
	if err != nil {
		return fmt.Errorf("provider %s: %w", a.Provider, err)
	}
	return p.Deploy(ctx, provider.Deployment{
		ID: dep.ID, App: dep.App, Env: dep.Env, Ref: dep.Ref, SHA: dep.SHA,
		Task: dep.Task, Hosts: dep.Hosts, User: dep.User, Dir: dir, Settings: a,
	}, out)
}
