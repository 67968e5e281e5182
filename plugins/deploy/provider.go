package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
	"github.com/chimaops/chima/plugins/deploy/internal/provider"
)

// runProvider runs the app's provider for dep in the checkout dir, writing
// its output to out. Providers exec their tools directly (never through a
// shell), under a reaper that ends their whole process tree when they end
// or ctx does; every process is tagged with the deployment for the sweep
// at start.
func (d *deployer) runProvider(ctx context.Context, a *apps.App, dep *Deployment, dir string, out io.Writer) error {
	d.mu.RLock()
	tag := d.tags + "/" + strconv.FormatInt(dep.ID, 10)
	d.mu.RUnlock()
	p, err := provider.New(a.Provider, provider.Options{Tag: tag})
	if err != nil {
		return fmt.Errorf("provider %s: %w", a.Provider, err)
	}
	return p.Deploy(ctx, provider.Deployment{
		ID: dep.ID, App: dep.App, Env: dep.Env, Ref: dep.Ref, SHA: dep.SHA,
		Task: dep.Task, Hosts: dep.Hosts, User: dep.User, Dir: dir, Settings: a,
	}, out)
}
