package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
)

// deploy is Deploy for the command providers.
func deploy(ctx context.Context, p CommandProvider, d Deployment, out io.Writer) error {
	spec, err := p.Command(d)
	if err != nil {
		return err
	}
	return Run(ctx, spec, out)
}

// Shell runs the repository's own deploy script.
type Shell struct{ opts Options }

// Name returns "shell".
func (*Shell) Name() string { return "shell" }

// Deploy runs the script.
func (p *Shell) Deploy(ctx context.Context, d Deployment, out io.Writer) error {
	return deploy(ctx, p, d, out)
}

// Command returns the script (settings "script", default script/deploy)
// with no arguments, in the checkout, with the deploy variables. The script
// must be an executable regular file inside the checkout; a symlink
// leading out of it is refused.
func (p *Shell) Command(d Deployment) (Spec, error) {
	if err := d.Validate(); err != nil {
		return Spec{}, err
	}
	script := d.Settings.Script
	if script == "" {
		script = apps.DefaultScript
	}
	path, err := checkoutExecutable(d.Dir, script)
	if err != nil {
		return Spec{}, err
	}
	return Spec{
		Path:  path,
		Env:   join(p.opts.env(), d.Environ()),
		Dir:   d.Dir,
		Name:  script,
		Grace: p.opts.grace(),
		Tag:   p.opts.Tag,
	}, nil
}

// checkoutExecutable resolves script, a path from the apps file, in the checkout
// dir: an executable regular file inside it (a symlink leading out of it is
// refused).
func checkoutExecutable(dir, script string) (string, error) {
	path, err := inside(dir, script, "script")
	if err != nil {
		return "", err
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return "", err
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("script %s is not a regular file", script)
	case st.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("script %s is not executable; run `git update-index --chmod=+x %s` and commit", script, script)
	}
	return path, nil
}

// Fabric runs a Fabric 2 task; see the package documentation for the
// contract a fabfile follows.
type Fabric struct{ opts Options }

// Name returns "fabric".
func (*Fabric) Name() string { return "fabric" }

// Deploy runs fab.
func (p *Fabric) Deploy(ctx context.Context, d Deployment, out io.Writer) error {
	return deploy(ctx, p, d, out)
}

// FabricTask is the fabfile task name for a chat or configured task: ":"
// and "_" become "-" ("deploy:migrate" runs deploy_migrate, which Invoke
// calls deploy-migrate); "." stays, for Invoke namespaces.
func FabricTask(task string) string {
	return strings.NewReplacer(":", "-", "_", "-").Replace(task)
}

// Command returns `fab --search-root <dir> [--hosts <hosts>] <task>
// --env=<env> --ref=<ref>` with the deploy variables and
// PYTHONUNBUFFERED=1 (so output arrives as it is printed).
func (p *Fabric) Command(d Deployment) (Spec, error) {
	if err := d.Validate(); err != nil {
		return Spec{}, err
	}
	if _, err := inside(d.Dir, "fabfile.py", "fabfile.py"); err != nil {
		if _, errDir := inside(d.Dir, "fabfile", "fabfile"); errDir != nil {
			return Spec{}, err
		}
	}
	args := []string{"--search-root", d.Dir}
	if d.Hosts != "" {
		args = append(args, "--hosts", d.Hosts)
	}
	args = append(args, FabricTask(d.task(d.Settings.Fabric.Task)), "--env="+d.Env, "--ref="+d.Ref)
	return Spec{
		Path:  "fab",
		Args:  args,
		Env:   join(p.opts.env(), d.Environ(), []string{"PYTHONUNBUFFERED=1"}),
		Dir:   d.Dir,
		Grace: p.opts.grace(),
		Tag:   p.opts.Tag,
	}, nil
}

// Capistrano runs a Capistrano 3 task.
type Capistrano struct{ opts Options }

// Name returns "capistrano".
func (*Capistrano) Name() string { return "capistrano" }

// Deploy runs cap.
func (p *Capistrano) Deploy(ctx context.Context, d Deployment, out io.Writer) error {
	return deploy(ctx, p, d, out)
}

// Command returns `cap <env> <task>` with BRANCH=<ref>, HOSTS=<hosts> when
// hosts were given, and the deploy variables. The checkout must have a
// Capfile and config/deploy/<env>.rb. With capistrano.script (Heaven's
// deploy_script) set, that executable in the checkout, such as a bin/cap
// binstub, runs instead of cap from PATH.
func (p *Capistrano) Command(d Deployment) (Spec, error) {
	if err := d.Validate(); err != nil {
		return Spec{}, err
	}
	if _, err := inside(d.Dir, "Capfile", "Capfile"); err != nil { // "the repository has no Capfile"
		return Spec{}, err
	}
	if _, err := inside(d.Dir, filepath.Join("config", "deploy", d.Env+".rb"), "stage file"); err != nil {
		return Spec{}, fmt.Errorf("%w, so Capistrano has no stage %q", err, d.Env)
	}
	extra := []string{"BRANCH=" + d.Ref}
	if d.Hosts != "" {
		extra = append(extra, "HOSTS="+d.Hosts)
	}
	cap := "cap"
	if s := d.Settings.Capistrano.Script; s != "" {
		var err error
		if cap, err = checkoutExecutable(d.Dir, s); err != nil {
			return Spec{}, err
		}
	}
	return Spec{
		Path:  cap,
		Args:  []string{d.Env, d.task(d.Settings.Capistrano.Task)},
		Env:   join(p.opts.env(), d.Environ(), extra),
		Dir:   d.Dir,
		Grace: p.opts.grace(),
		Tag:   p.opts.Tag,
	}, nil
}

// Ansible runs an Ansible playbook.
type Ansible struct{ opts Options }

// Name returns "ansible".
func (*Ansible) Name() string { return "ansible" }

// Deploy runs ansible-playbook.
func (p *Ansible) Deploy(ctx context.Context, d Deployment, out io.Writer) error {
	return deploy(ctx, p, d, out)
}

// ExtraVars returns the variables given to the playbook: the app's
// ansible.extra_vars, then the deploy variables (deploy_app, deploy_env,
// deploy_ref, deploy_sha, deploy_task, deploy_hosts, deploy_user and
// deployment_id, a number), which win.
func (d Deployment) ExtraVars() map[string]any {
	vars := map[string]any{}
	if d.Settings != nil {
		for k, v := range d.Settings.Ansible.ExtraVars {
			vars[k] = v
		}
	}
	task := d.Task
	if task == "" {
		task = apps.DefaultTask
	}
	for k, v := range map[string]any{
		"deploy_app": d.App, "deploy_env": d.Env, "deploy_ref": d.Ref, "deploy_sha": d.SHA,
		"deploy_task": task, "deploy_hosts": d.Hosts, "deploy_user": d.User, "deployment_id": d.ID,
	} {
		vars[k] = v
	}
	return vars
}

// Command returns `ansible-playbook [-i <inventory>] [--limit <hosts>]
// --extra-vars <json> -- <playbook>` in the checkout, with the deploy
// variables and PYTHONUNBUFFERED=1, ANSIBLE_NOCOLOR=1 and
// ANSIBLE_RETRY_FILES_ENABLED=0. A relative inventory and the playbook must
// be inside the checkout.
func (p *Ansible) Command(d Deployment) (Spec, error) {
	if err := d.Validate(); err != nil {
		return Spec{}, err
	}
	s := d.Settings.Ansible
	var args []string
	if s.Inventory != "" {
		inv := s.Inventory
		if !filepath.IsAbs(inv) {
			var err error
			if inv, err = inside(d.Dir, s.Inventory, "inventory"); err != nil {
				return Spec{}, err
			}
		} else if _, err := os.Stat(inv); err != nil {
			return Spec{}, fmt.Errorf("inventory %s: %w", inv, err)
		}
		args = append(args, "-i", inv)
	}
	if d.Hosts != "" {
		args = append(args, "--limit", d.Hosts)
	}
	vars, err := json.Marshal(d.ExtraVars())
	if err != nil {
		return Spec{}, fmt.Errorf("ansible extra vars: %w", err)
	}
	playbook := s.Playbook
	if playbook == "" {
		playbook = apps.DefaultPlaybook
	}
	pb, err := inside(d.Dir, playbook, "playbook")
	if err != nil {
		return Spec{}, err
	}
	args = append(args, "--extra-vars", string(vars), "--", pb)
	return Spec{
		Path: "ansible-playbook",
		Args: args,
		Env: join(p.opts.env(), d.Environ(), []string{
			"PYTHONUNBUFFERED=1", "ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0", "ANSIBLE_RETRY_FILES_ENABLED=0",
		}),
		Dir:   d.Dir,
		Grace: p.opts.grace(),
		Tag:   p.opts.Tag,
	}, nil
}
