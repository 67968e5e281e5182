package provider

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
	"github.com/chimaops/chima/sdk/sdktest"
)

func TestEveryAppProviderExists(t *testing.T) {
	for _, name := range apps.Providers {
		p, err := New(name, Options{})
		if err != nil || p.Name() != name {
			t.Errorf("New(%q) = %v, %v", name, p, err)
		}
	}
	if got, want := Names(), slices.Sorted(slices.Values(apps.Providers)); !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %q, want the apps file's %q", got, want)
	}
	if _, err := New("chef", Options{}); err == nil || err.Error() != `no provider "chef"; the providers are ansible, capistrano, fabric, heroku, shell` {
		t.Errorf("New(chef) = %v", err)
	}
}

func TestDeploymentValidate(t *testing.T) {
	dir, sha := repo(t, nil)
	tests := []struct {
		name    string
		change  func(d *Deployment)
		wantErr string
	}{
		{"a complete deployment is valid", func(*Deployment) {}, ""},
		{"hosts and a task are fine", func(d *Deployment) { d.Hosts, d.Task = "web1,web2", "deploy:migrate" }, ""},
		{"a bad ref is refused", func(d *Deployment) { d.Ref = "main;reboot" }, `ref "main;reboot" is not allowed`},
		{"an option-like task is refused", func(d *Deployment) { d.Task = "--help" }, `task "--help" is not allowed`},
		{"bad hosts are refused", func(d *Deployment) { d.Hosts = "web1;id" }, `hosts "web1;id" is not allowed`},
		{"a short SHA is refused", func(d *Deployment) { d.SHA = sha[:7] }, "is not a full commit id"},
		{"a bad environment is refused", func(d *Deployment) { d.Env = "-x" }, `environment "-x" is not allowed`},
		{"a user with a newline is refused", func(d *Deployment) { d.User = "a\nDEPLOY_ENV=prod" }, "is not allowed"},
		{"a relative checkout is refused", func(d *Deployment) { d.Dir = "checkout" }, "not an absolute path"},
		{"a missing checkout is refused", func(d *Deployment) { d.Dir = filepath.Join(dir, "nope") }, "is missing"},
		{"settings are required", func(d *Deployment) { d.Settings = nil }, "no app settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployment(dir, sha, &apps.App{Provider: "shell"})
			tt.change(&d)
			err := d.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "deployment 42: ") {
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDeploymentEnviron(t *testing.T) {
	d := Deployment{ID: 7, App: "a", Env: "edge", Ref: "main", SHA: strings.Repeat("a", 40), Hosts: "web1", User: "bob"}
	want := []string{
		"DEPLOY_APP=a", "DEPLOY_ENV=edge", "DEPLOY_REF=main", "DEPLOY_SHA=" + strings.Repeat("a", 40),
		"DEPLOY_TASK=deploy", "DEPLOYMENT_ID=7", "DEPLOY_HOSTS=web1", "DEPLOY_USER=bob",
	}
	if got := d.Environ(); !reflect.DeepEqual(got, want) {
		t.Errorf("Environ = %q", got)
	}
}

func TestMinimalEnvHoldsNoSecrets(t *testing.T) {
	t.Setenv("HEROKU_API_KEY", "secret")
	t.Setenv("GITHUB_TOKEN", "secret")
	t.Setenv("PATH", "/custom/bin")
	env := envMap(MinimalEnv())
	if env["PATH"] != "/custom/bin" {
		t.Errorf("PATH = %q", env["PATH"])
	}
	for k, v := range env {
		if v == "secret" {
			t.Errorf("MinimalEnv passes %s", k)
		}
	}
}

func TestShellCommand(t *testing.T) {
	deployScript := file{content: "#!/bin/sh\necho deploying\n", mode: 0o755}
	tests := []struct {
		name    string
		files   map[string]file
		script  string
		wantErr string
		wantRel string
	}{
		{"runs script/deploy by default", map[string]file{"script/deploy": deployScript}, "", "", "script/deploy"},
		{"runs the configured script", map[string]file{"bin/ship": deployScript}, "bin/ship", "", "bin/ship"},
		{"a symlink inside the checkout is fine", map[string]file{"bin/real": deployScript, "script/deploy": {link: "../bin/real"}}, "", "", "script/deploy"},
		{"a missing script is named", map[string]file{"README": {content: "x"}}, "", "the repository has no script script/deploy", ""},
		{"a script that is not executable says how to fix it", map[string]file{"script/deploy": {content: "#!/bin/sh\n"}}, "",
			"script script/deploy is not executable; run `git update-index --chmod=+x script/deploy` and commit", ""},
		{"a directory is not a script", map[string]file{"script/deploy/x": {content: "x"}}, "", "is not a regular file", ""},
		{"a path escaping the checkout is refused", map[string]file{"x": {content: "x"}}, "../../bin/sh", "must be a relative path inside the repository", ""},
		{"an absolute path is refused", map[string]file{"x": {content: "x"}}, "/bin/sh", "must be a relative path inside the repository", ""},
		{"a symlink leading out of the checkout is refused", map[string]file{"script/deploy": {link: "/bin/sh"}}, "", "leads outside the repository", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, sha := repo(t, tt.files)
			d := deployment(dir, sha, &apps.App{Provider: "shell", Script: tt.script})
			spec, err := (&Shell{opts: Options{Env: []string{"PATH=/bin", "FOO=bar"}}}).Command(d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Command error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Path != filepath.Join(dir, tt.wantRel) || len(spec.Args) != 0 || spec.Dir != dir || spec.Name != tt.wantRel {
				t.Errorf("spec = %+v", spec)
			}
			env := envMap(spec.Env)
			if env["FOO"] != "bar" || env["DEPLOY_SHA"] != sha || env["DEPLOY_REF"] != "feature/login" {
				t.Errorf("env = %q", spec.Env)
			}
		})
	}
}

func TestShellDeployRunsTheScriptWithTheDeployVariables(t *testing.T) {
	dir, sha := repo(t, map[string]file{"script/deploy": {mode: 0o755, content: `#!/bin/sh
set -e
echo "deploying $DEPLOY_APP/$DEPLOY_REF to $DEPLOY_ENV"
printf '%s\n' "ENV=$DEPLOY_ENV" "REF=$DEPLOY_REF" "SHA=$DEPLOY_SHA" "TASK=$DEPLOY_TASK" "ID=$DEPLOYMENT_ID" \
  "HOSTS=$DEPLOY_HOSTS" "USER=$DEPLOY_USER" "PWD=$PWD" "ARGS=$#" > "$MARKER"
echo "done" >&2
`}})
	marker := filepath.Join(t.TempDir(), "marker")
	d := deployment(dir, sha, &apps.App{Provider: "shell"})
	d.Task, d.Hosts, d.Ref = "deploy:migrate", "web1,web2", "feature/x;echo-pwned"
	if err := d.Validate(); err == nil {
		t.Fatal("a ref with ; must not validate")
	}
	d.Ref = "feature/x"
	p, _ := New("shell", Options{Env: []string{"PATH=/usr/bin:/bin", "MARKER=" + marker}})
	var out lines
	if err := p.Deploy(context.Background(), d, &out); err != nil {
		t.Fatalf("Deploy: %v\n%s", err, out.String())
	}
	if out.String() != "deploying project-x/feature/x to edge\ndone\n" {
		t.Errorf("output %q", out.String())
	}
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	want := "ENV=edge\nREF=feature/x\nSHA=" + sha + "\nTASK=deploy:migrate\nID=42\nHOSTS=web1,web2\nUSER=alice\nPWD=" + dir + "\nARGS=0\n"
	if string(b) != want {
		t.Errorf("the script saw\n%s\nwant\n%s", b, want)
	}
}

func TestShellDeployReportsAFailingScript(t *testing.T) {
	dir, sha := repo(t, map[string]file{"script/deploy": {mode: 0o755, content: "#!/bin/sh\necho 'migration failed' >&2\nexit 4\n"}})
	p, _ := New("shell", Options{Env: shEnv()})
	var out lines
	err := p.Deploy(context.Background(), deployment(dir, sha, &apps.App{Provider: "shell"}), &out)
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Code != 4 || err.Error() != "script/deploy exited with status 4" {
		t.Fatalf("Deploy = %v", err)
	}
	if out.String() != "migration failed\n" {
		t.Errorf("output %q", out.String())
	}
}

func TestShellDeployCancelled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	dir, sha := repo(t, map[string]file{"script/deploy": {mode: 0o755, content: "#!/bin/sh\nsleep 600 &\necho \"$$ $!\" > \"$PIDS\"\nwait\n"}})
	p, _ := New("shell", Options{Env: shEnv("PIDS=" + pidFile), Grace: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Deploy(ctx, deployment(dir, sha, &apps.App{Provider: "shell"}), &lines{}) }()
	pids := readPIDs(t, pidFile, 2)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || err.Error() != "script/deploy stopped: cancelled" {
			t.Fatalf("Deploy = %v, want script/deploy stopped: cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Deploy did not return after cancel")
	}
	waitGone(t, pids...)
}

// A deploy whose timeout passed says so in words, not "context deadline
// exceeded".
func TestShellDeployTimedOutSaysSo(t *testing.T) {
	dir, sha := repo(t, map[string]file{"script/deploy": {mode: 0o755, content: "#!/bin/sh\nexec sleep 600\n"}})
	p, _ := New("shell", Options{Env: shEnv(), Grace: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.Deploy(ctx, deployment(dir, sha, &apps.App{Provider: "shell"}), &lines{})
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "script/deploy stopped: its timeout passed" {
		t.Fatalf("Deploy = %v, want script/deploy stopped: its timeout passed", err)
	}
}

func TestFabricCommand(t *testing.T) {
	dir, sha := repo(t, map[string]file{"fabfile.py": {content: "from fabric import task\n"}})
	tests := []struct {
		name     string
		task     string
		hosts    string
		settings string
		want     []string
	}{
		{"a plain deploy runs the default task with env and ref", "", "", "",
			[]string{"--search-root", dir, "deploy", "--env=edge", "--ref=feature/login"}},
		{"the chat task deploy is a plain deploy", "deploy", "", "ship",
			[]string{"--search-root", dir, "ship", "--env=edge", "--ref=feature/login"}},
		{"a chat task uses Invoke's dashed name", "deploy:migrate", "", "ship",
			[]string{"--search-root", dir, "deploy-migrate", "--env=edge", "--ref=feature/login"}},
		{"underscores become dashes", "", "", "ship_it",
			[]string{"--search-root", dir, "ship-it", "--env=edge", "--ref=feature/login"}},
		{"hosts from chat become --hosts", "", "web1,web2", "",
			[]string{"--search-root", dir, "--hosts", "web1,web2", "deploy", "--env=edge", "--ref=feature/login"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployment(dir, sha, &apps.App{Provider: "fabric", Fabric: apps.FabricSettings{Task: tt.settings}})
			d.Task, d.Hosts = tt.task, tt.hosts
			spec, err := (&Fabric{opts: Options{Env: []string{"PATH=/usr/bin"}}}).Command(d)
			if err != nil {
				t.Fatal(err)
			}
			if spec.Path != "fab" || !reflect.DeepEqual(spec.Args, tt.want) || spec.Dir != dir {
				t.Errorf("spec = %s in %s\nwant args %q", spec, spec.Dir, tt.want)
			}
			if env := envMap(spec.Env); env["PYTHONUNBUFFERED"] != "1" || env["DEPLOY_SHA"] != sha {
				t.Errorf("env = %q", spec.Env)
			}
		})
	}
	empty, sha2 := repo(t, map[string]file{"README": {content: "x"}})
	_, err := (&Fabric{}).Command(deployment(empty, sha2, &apps.App{Provider: "fabric"}))
	if err == nil || err.Error() != "the repository has no fabfile.py" {
		t.Errorf("no fabfile: %v", err)
	}
}

const fabfile = `import os
from fabric import task

def _record(c, env, ref, where):
    with open(os.environ["MARKER"], "a") as f:
        f.write("%s env=%s ref=%s sha=%s id=%s host=%s\n" % (
            where, env, ref, os.environ["DEPLOY_SHA"], os.environ["DEPLOYMENT_ID"], getattr(c, "host", "-")))

@task
def deploy(c, env, ref):
    print("deploying %s to %s" % (ref, env))
    # Without hosts c is an Invoke context: c.run runs on the bot.
    runner = getattr(c, "local", c.run)
    runner("echo local command ran")
    _record(c, env, ref, "deploy")

@task
def deploy_migrate(c, env, ref):
    _record(c, env, ref, "migrate")

@task
def broken(c, env, ref):
    c.run("echo about to fail; exit 3")
`

func TestFabricDeployWithTheRealFab(t *testing.T) {
	sdktest.NeedTool(t, "fab")
	dir, sha := repo(t, map[string]file{"fabfile.py": {content: fabfile}})
	tests := []struct {
		name    string
		task    string
		hosts   string
		want    string
		wantOut string
		wantErr string
	}{
		{"a plain deploy runs the deploy task locally", "", "",
			"deploy env=edge ref=feature/login sha=" + sha + " id=42 host=-\n", "deploying feature/login to edge\nlocal command ran\n", ""},
		{"deploy:migrate runs deploy_migrate", "deploy:migrate", "",
			"migrate env=edge ref=feature/login sha=" + sha + " id=42 host=-\n", "", ""},
		{"hosts run the task once per host (c.local stays local)", "", "localhost,127.0.0.1",
			"deploy env=edge ref=feature/login sha=" + sha + " id=42 host=localhost\n" +
				"deploy env=edge ref=feature/login sha=" + sha + " id=42 host=127.0.0.1\n", "", ""},
		{"a failing task fails the deploy", "broken", "", "", "about to fail\n", "fab exited with status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "marker")
			d := deployment(dir, sha, &apps.App{Provider: "fabric"})
			d.Task, d.Hosts = tt.task, tt.hosts
			p, _ := New("fabric", Options{Env: testEnv(t, "MARKER="+marker)})
			var out lines
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := p.Deploy(ctx, d, &out)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Deploy = %v, want %q\n%s", err, tt.wantErr, out.String())
				}
			} else if err != nil {
				t.Fatalf("Deploy: %v\n%s", err, out.String())
			}
			if tt.wantOut != "" && out.String() != tt.wantOut {
				t.Errorf("output %q, want %q", out.String(), tt.wantOut)
			}
			if tt.want != "" {
				b, _ := os.ReadFile(marker)
				if string(b) != tt.want {
					t.Errorf("marker\n%s\nwant\n%s", b, tt.want)
				}
			}
		})
	}
}

func TestCapistranoCommand(t *testing.T) {
	dir, sha := repo(t, map[string]file{"Capfile": {content: "#"}, "config/deploy/edge.rb": {content: "#"}})
	tests := []struct {
		name     string
		task     string
		hosts    string
		settings string
		args     []string
		env      map[string]string
	}{
		{"a plain deploy is cap <env> deploy with BRANCH", "", "", "", []string{"edge", "deploy"},
			map[string]string{"BRANCH": "feature/login", "DEPLOY_ENV": "edge", "HOSTS": ""}},
		{"a chat task runs as it is", "deploy:migrate", "", "", []string{"edge", "deploy:migrate"}, nil},
		{"the configured task runs for a plain deploy", "deploy", "", "deploy:full", []string{"edge", "deploy:full"}, nil},
		{"hosts become Capistrano's HOSTS filter", "", "web1,web2", "", []string{"edge", "deploy"},
			map[string]string{"HOSTS": "web1,web2", "DEPLOY_HOSTS": "web1,web2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployment(dir, sha, &apps.App{Provider: "capistrano", Capistrano: apps.CapistranoSettings{Task: tt.settings}})
			d.Task, d.Hosts = tt.task, tt.hosts
			spec, err := (&Capistrano{opts: Options{Env: []string{"PATH=/usr/bin"}}}).Command(d)
			if err != nil {
				t.Fatal(err)
			}
			if spec.Path != "cap" || !reflect.DeepEqual(spec.Args, tt.args) || spec.Dir != dir {
				t.Errorf("spec = %s, want args %q", spec, tt.args)
			}
			env := envMap(spec.Env)
			for k, v := range tt.env {
				if env[k] != v {
					t.Errorf("%s = %q, want %q", k, env[k], v)
				}
			}
		})
	}
	t.Run("a missing stage file is named", func(t *testing.T) {
		d := deployment(dir, sha, &apps.App{Provider: "capistrano"})
		d.Env = "live"
		_, err := (&Capistrano{}).Command(d)
		if err == nil || err.Error() != `the repository has no stage file config/deploy/live.rb, so Capistrano has no stage "live"` {
			t.Errorf("Command = %v", err)
		}
	})
	t.Run("deploy_script runs Capistrano through the repository's binstub", func(t *testing.T) {
		dir, sha := repo(t, map[string]file{"Capfile": {content: "#"}, "config/deploy/edge.rb": {content: "#"},
			"bin/cap": {content: "#!/bin/sh\n", mode: 0o755}, "bin/plain": {content: "#"}})
		d := deployment(dir, sha, &apps.App{Provider: "capistrano", Capistrano: apps.CapistranoSettings{Script: "bin/cap"}})
		spec, err := (&Capistrano{}).Command(d)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Path != filepath.Join(dir, "bin/cap") || !reflect.DeepEqual(spec.Args, []string{"edge", "deploy"}) {
			t.Errorf("spec = %s, want %s/bin/cap edge deploy", spec, dir)
		}
		d.Settings.Capistrano.Script = "bin/plain"
		if _, err := (&Capistrano{}).Command(d); err == nil || !strings.Contains(err.Error(), "script bin/plain is not executable") {
			t.Errorf("a script that is not executable: Command = %v", err)
		}
	})
	t.Run("a missing Capfile is named", func(t *testing.T) {
		dir, sha := repo(t, map[string]file{"README": {content: "x"}})
		_, err := (&Capistrano{}).Command(deployment(dir, sha, &apps.App{Provider: "capistrano"}))
		if err == nil || err.Error() != "the repository has no Capfile" {
			t.Errorf("Command = %v", err)
		}
	})
}

// capfile is what `cap install` makes, plus tasks that run locally only:
// with no servers in the stage, the standard deploy flow does nothing remote.
const capfile = `require "capistrano/setup"
require "capistrano/deploy"
require "capistrano/scm/git"
install_plugin Capistrano::SCM::Git

task :deploy do
  run_locally do
    execute :echo, "deploying", fetch(:application), "to", fetch(:stage)
    execute :touch, ENV.fetch("MARKER") + ".touched"
  end
  File.write(ENV.fetch("MARKER"), "stage=#{fetch(:stage)} branch=#{ENV['BRANCH']} sha=#{ENV['DEPLOY_SHA']} id=#{ENV['DEPLOYMENT_ID']}\n")
end

namespace :deploy do
  task :migrate do
    File.write(ENV.fetch("MARKER"), "migrate stage=#{fetch(:stage)} branch=#{ENV['BRANCH']}\n")
  end
  task :broken do
    run_locally { execute :false }
  end
end
`

func TestCapistranoDeployWithTheRealCap(t *testing.T) {
	sdktest.NeedTool(t, "cap")
	dir, sha := repo(t, map[string]file{
		"Capfile":               {content: capfile},
		"config/deploy.rb":      {content: "set :application, \"project-x\"\nset :repo_url, \"/nonexistent\"\n"},
		"config/deploy/edge.rb": {content: "# local only: no servers\n"},
	})
	tests := []struct {
		name    string
		task    string
		want    string
		wantErr string
	}{
		{"a plain deploy runs cap edge deploy locally with BRANCH", "",
			"stage=edge branch=feature/login sha=" + sha + " id=42\n", ""},
		{"a namespaced chat task runs", "deploy:migrate", "migrate stage=edge branch=feature/login\n", ""},
		{"a failing task fails the deploy", "deploy:broken", "", "cap exited with status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "marker")
			d := deployment(dir, sha, &apps.App{Provider: "capistrano"})
			d.Task = tt.task
			p, _ := New("capistrano", Options{Env: testEnv(t, "MARKER="+marker)})
			var out lines
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := p.Deploy(ctx, d, &out)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Deploy = %v, want %q\n%s", err, tt.wantErr, out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("Deploy: %v\n%s", err, out.String())
			}
			if b, _ := os.ReadFile(marker); string(b) != tt.want {
				t.Errorf("marker %q, want %q\noutput:\n%s", b, tt.want, out.String())
			}
			if tt.task == "" {
				if _, err := os.Stat(marker + ".touched"); err != nil {
					t.Errorf("run_locally did not run: %v", err)
				}
				if !strings.Contains(out.String(), "deploying project-x to edge") {
					t.Errorf("output lacks the task's output:\n%s", out.String())
				}
			}
		})
	}
}

func TestAnsibleCommand(t *testing.T) {
	dir, sha := repo(t, map[string]file{"deploy.yml": {content: "[]"}, "ops/site.yml": {content: "[]"}, "inventory/hosts": {content: "x"}})
	absInv := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(absInv, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := func(extra string) string {
		return `{"deploy_app":"project-x","deploy_env":"edge","deploy_hosts":"` + extra + `","deploy_ref":"feature/login","deploy_sha":"` + sha +
			`","deploy_task":"deploy","deploy_user":"alice","deployment_id":42}`
	}
	tests := []struct {
		name     string
		settings apps.AnsibleSettings
		hosts    string
		want     []string
		wantErr  string
	}{
		{"the default playbook without an inventory", apps.AnsibleSettings{}, "",
			[]string{"--extra-vars", vars(""), "--", filepath.Join(dir, "deploy.yml")}, ""},
		{"a relative inventory is taken from the checkout", apps.AnsibleSettings{Inventory: "inventory/hosts", Playbook: "ops/site.yml"}, "",
			[]string{"-i", filepath.Join(dir, "inventory/hosts"), "--extra-vars", vars(""), "--", filepath.Join(dir, "ops/site.yml")}, ""},
		{"an absolute inventory is used as it is", apps.AnsibleSettings{Inventory: absInv}, "",
			[]string{"-i", absInv, "--extra-vars", vars(""), "--", filepath.Join(dir, "deploy.yml")}, ""},
		{"hosts become --limit", apps.AnsibleSettings{}, "web1,web2",
			[]string{"--limit", "web1,web2", "--extra-vars", vars("web1,web2"), "--", filepath.Join(dir, "deploy.yml")}, ""},
		{"a missing playbook is named", apps.AnsibleSettings{Playbook: "nope.yml"}, "", nil, "the repository has no playbook nope.yml"},
		{"a missing inventory is named", apps.AnsibleSettings{Inventory: "inventory/prod"}, "", nil, "the repository has no inventory inventory/prod"},
		{"a playbook escaping the checkout is refused", apps.AnsibleSettings{Playbook: "../x.yml"}, "", nil, "must be a relative path inside the repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployment(dir, sha, &apps.App{Provider: "ansible", Ansible: tt.settings})
			d.Hosts = tt.hosts
			spec, err := (&Ansible{opts: Options{Env: []string{"PATH=/usr/bin"}}}).Command(d)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr && !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Command = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if spec.Path != "ansible-playbook" || !reflect.DeepEqual(spec.Args, tt.want) || spec.Dir != dir {
				t.Errorf("args\n %q\nwant\n %q", spec.Args, tt.want)
			}
		})
	}
}

func TestAnsibleExtraVarsAreOneJSONObjectAndDeployVarsWin(t *testing.T) {
	d := Deployment{ID: 9, App: "a", Env: "edge", Ref: "x';id;'", SHA: "s", Settings: &apps.App{
		Ansible: apps.AnsibleSettings{ExtraVars: map[string]any{"region": "eu", "replicas": 3.0, "deploy_env": "sneaky"}},
	}}
	b, err := json.Marshal(d.ExtraVars())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["region"] != "eu" || got["replicas"] != 3.0 || got["deploy_env"] != "edge" || got["deploy_ref"] != "x';id;'" || got["deployment_id"] != 9.0 {
		t.Errorf("extra vars %s", b)
	}
}

const playbook = `- hosts: all
  gather_facts: false
  tasks:
    - name: write the marker
      ansible.builtin.copy:
        dest: "{{ marker }}"
        content: "env={{ deploy_env }} ref={{ deploy_ref }} sha={{ deploy_sha }} id={{ deployment_id }} region={{ region }} host={{ inventory_hostname }}\n"
`

func TestAnsibleDeployWithTheRealAnsiblePlaybook(t *testing.T) {
	sdktest.NeedTool(t, "ansible-playbook")
	dir, sha := repo(t, map[string]file{
		"deploy.yml": {content: playbook},
		"inventory/hosts": {content: "[web]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n" +
			"other ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"},
		"fail.yml": {content: "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.fail:\n        msg: deliberately broken\n"},
	})
	marker := filepath.Join(t.TempDir(), "marker")
	tests := []struct {
		name     string
		playbook string
		wantErr  string
	}{
		{"the playbook runs against localhost over a local connection", "deploy.yml", ""},
		{"a failing playbook fails the deploy", "fail.yml", "ansible-playbook exited with status 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &apps.App{Provider: "ansible", Ansible: apps.AnsibleSettings{
				Playbook: tt.playbook, Inventory: "inventory/hosts",
				ExtraVars: map[string]any{"marker": marker, "region": "eu"},
			}}
			d := deployment(dir, sha, app)
			d.Hosts = "localhost" // --limit: "other" must not run
			p, _ := New("ansible", Options{Env: testEnv(t)})
			var out lines
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			err := p.Deploy(ctx, d, &out)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Deploy = %v, want %q\n%s", err, tt.wantErr, out.String())
				}
				if !strings.Contains(out.String(), "deliberately broken") {
					t.Errorf("output lacks the failure:\n%s", out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("Deploy: %v\n%s", err, out.String())
			}
			b, _ := os.ReadFile(marker)
			want := "env=edge ref=feature/login sha=" + sha + " id=42 region=eu host=localhost\n"
			if string(b) != want {
				t.Errorf("marker %q, want %q\n%s", b, want, out.String())
			}
			if !strings.Contains(out.String(), "PLAY RECAP") || strings.Contains(out.String(), "other ") {
				t.Errorf("output:\n%s", out.String())
			}
		})
	}
}
