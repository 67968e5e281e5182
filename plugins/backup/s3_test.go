package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chimaops/chima/plugins/backup/s3fake"
	"github.com/chimaops/chima/sdk/sdktest"
)

// s3Bed is a test's fake S3, its credentials as plugin secrets, and the
// plugin with targets in a bucket of it.
type s3Bed struct {
	*bed
	s3                   *s3fake.Server
	keyEnv, secretEnv    string // the plugin's secrets holding the credentials
	accessKey, secretKey string // what the server knows
	// badSecretEnv holds badness, a secret key the server does not know.
	badSecretEnv, badness string
}

const s3AccessKey = "AKIACHIMATEST0000001"

// newS3Bed starts a fake S3 that knows one key and a bucket "backups", sets
// the test's secrets (the right secret key, and a wrong one under another
// name), and starts the plugin with targets: a YAML map where %[1]s is the
// test's folder, %[2]s the S3 endpoint (http://127.0.0.1:port), %[3]s the
// access key's secret name, %[4]s the secret key's and %[5]s the wrong
// secret key's.
func newS3Bed(t *testing.T, targets string) *s3Bed {
	t.Helper()
	secret := "s3-secret-" + strings.Repeat("x", 8) + fmt.Sprint(os.Getpid())
	s, err := s3fake.New(s3AccessKey, secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	n := dbSeq.Add(1)
	sb := &s3Bed{s3: s, accessKey: s3AccessKey, secretKey: secret,
		keyEnv: fmt.Sprintf("CHIMA_TEST_S3_KEY_%d", n), secretEnv: fmt.Sprintf("CHIMA_TEST_S3_SECRET_%d", n), badSecretEnv: fmt.Sprintf("CHIMA_TEST_S3_WRONG_%d", n)}
	sb.badness = "wrong-" + secret
	setEnv(t, sb.keyEnv, s3AccessKey)
	setEnv(t, sb.secretEnv, secret)
	setEnv(t, sb.badSecretEnv, sb.badness)
	// newBed formats targets with the test's folder only: the rest is
	// filled in here, the folder left as %[1]s for it.
	targets = fmt.Sprintf(targets, "%[1]s", s.URL, sb.keyEnv, sb.secretEnv, sb.badSecretEnv)
	sb.bed = newBed(t, targets)
	return sb
}

// resticS3 runs restic on the bucket's prefix with the right credentials.
func (b *s3Bed) resticS3(prefix string, args ...string) (string, error) {
	b.t.Helper()
	cmd := exec.Command(b.env["CHIMA_RESTIC"], append([]string{"--json", "--no-cache", "-o", "s3.bucket-lookup=path", "-o", "s3.region=us-east-1"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY=s3:"+b.s3.URL+"/backups/"+prefix, "RESTIC_PASSWORD_FILE="+filepath.Join(b.dir, "password"),
		"AWS_ACCESS_KEY_ID="+b.accessKey, "AWS_SECRET_ACCESS_KEY="+b.secretKey)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// everything is all a test's results said, and what the plugin posted.
func (b *s3Bed) everything(results ...sdktest.Result) string {
	all := allText(results...)
	for _, p := range b.h.Host.Posts() {
		all += p.Output.Text + "\n"
	}
	return all
}

// noSecrets fails the test when a secret value is in text.
func (b *s3Bed) noSecrets(text string) {
	b.t.Helper()
	for _, s := range []string{b.secretKey, b.badness, "correct horse battery staple"} {
		if strings.Contains(text, s) {
			b.t.Fatalf("a secret is in the output:\n%s", text)
		}
	}
}

const s3DirTargets = `files:
  kind: directory
  path: %[1]s/data
  excludes: ["*.tmp"]
  repository: s3:%[2]s/backups/chima/files
  repository_env: {AWS_ACCESS_KEY_ID: %[3]s, AWS_SECRET_ACCESS_KEY: %[4]s}
  repository_options: [s3.bucket-lookup=path, s3.region=us-east-1]
  password_file: %[1]s/password
  init: true
  scratch: %[1]s/scratch
`

func TestS3RepositoryTakesListsVerifiesAndRestoresABackupWithSignedRequests(t *testing.T) {
	t.Parallel()
	b := newS3Bed(t, s3DirTargets)
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a.txt": "alpha", "sub/b.txt": "bravo!", "junk.tmp": "excluded"})

	job := b.job("backup", sdktest.Args{"target": "files"})
	if outcome(job) != "success" || !regexp.MustCompile(`Backed up files: snapshot [0-9a-f]{8}, 11 B`).MatchString(job.Text()) {
		t.Fatalf("backup to S3: %s", allText(job))
	}
	objects, err := b.s3.Objects("backups", "chima/files/")
	if err != nil || !containsPrefix(objects, "chima/files/config") || !containsPrefix(objects, "chima/files/snapshots/") || !containsPrefix(objects, "chima/files/data/") {
		t.Fatalf("objects in the bucket: %v, %v; want the repository's config, a snapshot and data under chima/files/", objects, err)
	}
	if out, err := b.resticS3("chima/files", "snapshots"); err != nil || strings.Count(out, `"short_id"`) != 1 {
		t.Fatalf("restic snapshots on the bucket: %v: %s", err, out)
	}

	list := b.h.Command("backups", sdktest.Args{"target": "files"})
	if len(list.Replies) == 0 || !strings.Contains(list.Replies[0].Code, "not verified") {
		t.Fatalf("backups: %s", allText(list))
	}
	v := b.job("backup:verify", sdktest.Args{"target": "files"})
	if outcome(v) != "success" || !strings.Contains(v.Text(), "restore --verify ok, 2 files, 11 B") {
		t.Fatalf("verify: %s", allText(v))
	}
	r := b.job("backup:restore", sdktest.Args{"target": "files"})
	m := regexp.MustCompile(`into (\S+) in `).FindStringSubmatch(r.Text())
	if outcome(r) != "success" || m == nil {
		t.Fatalf("restore: %s", allText(r))
	}
	if got, err := os.ReadFile(filepath.Join(m[1], "sub/b.txt")); err != nil || string(got) != "bravo!" {
		t.Fatalf("restored sub/b.txt = %q, %v", got, err)
	}
	if n := b.s3.Rejected("SignatureDoesNotMatch") + b.s3.Rejected("AccessDenied") + b.s3.Rejected("InvalidAccessKeyId"); n != 0 || b.s3.Accepted() == 0 {
		t.Fatalf("the server refused %d requests and took %d; want every request signed with the target's keys", n, b.s3.Accepted())
	}
	b.noSecrets(b.everything(job, list, v, r))
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestS3WrongSecretIsAClearErrorAndTakesNoSnapshot(t *testing.T) {
	t.Parallel()
	// init: true, so that a refusal taken for a missing repository would
	// show as an init (which the server would refuse too).
	b := newS3Bed(t, `files:
  kind: directory
  path: %[1]s/data
  repository: s3:%[2]s/backups/chima/files
  repository_env: {AWS_ACCESS_KEY_ID: %[3]s, AWS_SECRET_ACCESS_KEY: %[5]s}
  repository_options: [s3.bucket-lookup=path, s3.region=us-east-1]
  password_file: %[1]s/password
  init: true
  scratch: %[1]s/scratch
`)
	writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a.txt": "alpha"})
	if out, err := b.resticS3("chima/files", "init"); err != nil {
		t.Fatalf("restic init: %v: %s", err, out)
	}
	before, err := b.s3.Objects("backups", "")
	if err != nil {
		t.Fatal(err)
	}

	job := b.job("backup", sdktest.Args{"target": "files"})
	all := allText(job)
	if outcome(job) != "failure" || !strings.Contains(all, "the storage of the repository of files (s3:"+b.s3.URL+"/backups/chima/files) refused access with its credentials") ||
		!strings.Contains(all, "the secret "+b.badSecretEnv+" (AWS_SECRET_ACCESS_KEY)") {
		t.Fatalf("backup with a wrong secret key: %s", all)
	}
	if b.s3.Rejected("SignatureDoesNotMatch") == 0 {
		t.Fatalf("the server refused no signature; the backup did not reach it")
	}
	if out, err := b.resticS3("chima/files", "snapshots"); err != nil || strings.Count(out, `"short_id"`) != 0 {
		t.Fatalf("snapshots after the refused backup: %v: %s; want none", err, out)
	}
	if after, err := b.s3.Objects("backups", ""); err != nil || len(after) != len(before) {
		t.Fatalf("the bucket had %d objects and has %d after a refused backup", len(before), len(after))
	}
	list := b.h.Command("backups", sdktest.Args{"target": "files"})
	if !strings.Contains(allText(list), "refused access with its credentials") {
		t.Fatalf("backups with a wrong secret key: %s", allText(list))
	}
	b.noSecrets(b.everything(job, list))
}

func TestS3BucketOrRepositoryThatIsNotThereIsAClearError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, repo string
		init       bool
		want       string // in the backup's result
	}{
		{"a bucket that does not exist", "nobucket/files", false, "the repository of files does not exist (s3:%s/nobucket/files): create it with `restic init`, or set `init: true` on the target (restic init also creates the bucket"},
		{"a prefix with no repository", "backups/empty", false, "the repository of files does not exist (s3:%s/backups/empty)"},
		{"a bucket that does not exist, with init", "newbucket/files", true, "Backed up files: snapshot "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newS3Bed(t, fmt.Sprintf(`files:
  kind: directory
  path: %%[1]s/data
  repository: s3:%%[2]s/%s
  repository_env: {AWS_ACCESS_KEY_ID: %%[3]s, AWS_SECRET_ACCESS_KEY: %%[4]s}
  repository_options: [s3.bucket-lookup=path, s3.region=us-east-1]
  password_file: %%[1]s/password
  init: %v
  scratch: %%[1]s/scratch
`, tt.repo, tt.init))
			writeFiles(t, filepath.Join(b.dir, "data"), map[string]string{"a.txt": "alpha"})
			job := b.job("backup", sdktest.Args{"target": "files"})
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, b.s3.URL)
			}
			if !strings.Contains(job.Text(), want) {
				t.Fatalf("backup: %s\nwant %q", allText(job), want)
			}
			bucket, _, _ := strings.Cut(tt.repo, "/")
			objects, err := b.s3.Objects(bucket, "")
			switch {
			case tt.init && (err != nil || !containsPrefix(objects, "files/snapshots/")):
				t.Fatalf("objects of %s after a backup with init: %v, %v", bucket, objects, err)
			case !tt.init && err == nil && len(objects) > 0:
				t.Fatalf("a failed backup left objects in %s: %v", bucket, objects)
			}
		})
	}
}

func TestRepositoryEnvAndOptionsRejectWhatCouldLeakOrInject(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	setEnv(t, "CHIMA_TEST_REPOENV_SECRET", "v")
	target := func(extra string) string {
		return `files: {kind: directory, path: ` + filepath.Join(dir, "data") + `, repository: "s3:http://127.0.0.1:9/b/p", password_file: pw, scratch: s, ` + extra + `}`
	}
	tests := []struct {
		name, extra string
		want        string // a problem "key: message" must match this
	}{
		{"the repository's password", `repository_env: {RESTIC_PASSWORD: CHIMA_TEST_REPOENV_SECRET}`, `^targets\.files\.repository_env\.RESTIC_PASSWORD: "RESTIC_PASSWORD" is not a variable restic's backends read: repository_env takes AWS_\*`},
		{"another repository", `repository_env: {RESTIC_REPOSITORY: CHIMA_TEST_REPOENV_SECRET}`, `^targets\.files\.repository_env\.RESTIC_REPOSITORY: .* is not a variable restic's backends read`},
		{"a loader variable", `repository_env: {LD_PRELOAD: CHIMA_TEST_REPOENV_SECRET}`, `^targets\.files\.repository_env\.LD_PRELOAD: `},
		{"a lower-case name", `repository_env: {aws_secret_access_key: CHIMA_TEST_REPOENV_SECRET}`, `^targets\.files\.repository_env\.aws_secret_access_key: `},
		{"a prefix alone", `repository_env: {AWS_: CHIMA_TEST_REPOENV_SECRET}`, `^targets\.files\.repository_env\.AWS_: `},
		{"a secret that is not set", `repository_env: {AWS_SECRET_ACCESS_KEY: CHIMA_TEST_REPOENV_NOT_SET}`, `^targets\.files\.repository_env\.AWS_SECRET_ACCESS_KEY: environment variable CHIMA_TEST_REPOENV_NOT_SET is not set \(declare it in the plugin's secrets\)$`},
		{"a value instead of a secret's name", `repository_env: {AWS_SECRET_ACCESS_KEY: "wJalr/K7MDENG+bPxRfi"}`, `^targets\.files\.repository_env\.AWS_SECRET_ACCESS_KEY: "wJalr/K7MDENG\+bPxRfi" is not an environment variable name$`},
		{"no value", `repository_env: {AWS_SECRET_ACCESS_KEY: ""}`, `^targets\.files\.repository_env\.AWS_SECRET_ACCESS_KEY: names no secret`},
		{"a flag", `repository_options: ["--no-lock"]`, `^targets\.files\.repository_options\[0\]: "--no-lock" is not a restic option`},
		{"a shell command in a value", `repository_options: ["s3.region=$(id)"]`, `^targets\.files\.repository_options\[0\]: the value of s3\.region must be one plain word`},
		{"a second flag in a value", `repository_options: [s3.region=us-east-1, "s3.region=x --password-file=/etc/shadow"]`, `^targets\.files\.repository_options\[1\]: the value of s3\.region must be one plain word`},
		{"a separator in a value", `repository_options: ["s3.region=a;b"]`, `^targets\.files\.repository_options\[0\]: the value of s3\.region must be one plain word`},
		{"a value that starts as a flag", `repository_options: ["s3.region=-x"]`, `^targets\.files\.repository_options\[0\]: the value of s3\.region must be one plain word`},
		{"an option without a value", `repository_options: [s3.region]`, `^targets\.files\.repository_options\[0\]: "s3\.region" is not a restic option: want backend\.option=value`},
		{"an option of another backend", `repository_options: [sftp.command=ssh]`, `^targets\.files\.repository_options\[0\]: sftp\.command is an option of restic's sftp backend, and the repository is s3$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, problems := checkStrings(map[string]string{"targets": target(tt.extra), "chima_config_dir": dir}, true)
			wantProblem(t, problems, tt.want)
		})
	}
	t.Run("good credentials and options", func(t *testing.T) {
		targets, problems := checkStrings(map[string]string{"targets": target(`repository_env: {AWS_ACCESS_KEY_ID: CHIMA_TEST_REPOENV_SECRET, AWS_SECRET_ACCESS_KEY: CHIMA_TEST_REPOENV_SECRET}, repository_options: [s3.bucket-lookup=path, s3.region=us-east-1, s3.storage-class=STANDARD_IA]`), "chima_config_dir": dir}, true)
		if len(problems) > 0 {
			t.Fatalf("problems %v", problems)
		}
		if got := targets["files"].optionArgs(); strings.Join(got, " ") != "--option=s3.bucket-lookup=path --option=s3.region=us-east-1 --option=s3.storage-class=STANDARD_IA" {
			t.Fatalf("option flags %q", got)
		}
	})
	t.Run("an option restic does not know", func(t *testing.T) {
		env := services(t)
		targets, problems := checkStrings(map[string]string{"targets": target(`repository_options: [s3.regoin=us-east-1, s3.region=us-east-1]`), "chima_config_dir": dir}, true)
		if len(problems) > 0 {
			t.Fatalf("problems %v", problems)
		}
		problems = checkOptionsKnown(targets, env["CHIMA_RESTIC"])
		if len(problems) != 1 || problems[0].String() != "targets.files.repository_options[0]: restic does not know the option s3.regoin (`restic options` lists them)" {
			t.Fatalf("problems %v; want one about s3.regoin", problems)
		}
	})
}

func TestResticGetsATargetsCredentialsInItsEnvironmentOnlyAndNoOtherTargets(t *testing.T) {
	setEnv(t, "CHIMA_TEST_ENVIRON_KEY_A", "AKIA-A")
	setEnv(t, "CHIMA_TEST_ENVIRON_SECRET_A", "secret-of-a")
	// An AWS variable the plugin inherited (declared as a secret under
	// restic's own name): a target with repository_env must not get it.
	setEnv(t, "AWS_SESSION_TOKEN", "token-of-someone-else")
	r := &restic{bin: "/bin/true", cacheDir: t.TempDir()}
	a := &Target{Name: "a", Repository: "s3:http://127.0.0.1:9/b/a", PasswordFile: "/pw",
		RepositoryEnv:     map[string]string{"AWS_ACCESS_KEY_ID": "CHIMA_TEST_ENVIRON_KEY_A", "AWS_SECRET_ACCESS_KEY": "CHIMA_TEST_ENVIRON_SECRET_A"},
		RepositoryOptions: []string{"s3.region=us-east-1"}}
	plain := &Target{Name: "b", Repository: "/repo", PasswordFile: "/pw"}

	cmd := r.command(t.Context(), a, runOpts{}, append([]string{"--json"}, append(a.optionArgs(), "snapshots")...)...)
	env := strings.Join(cmd.Env, "\n")
	if !strings.Contains(env, "\nAWS_ACCESS_KEY_ID=AKIA-A\n") || !strings.Contains(env, "\nAWS_SECRET_ACCESS_KEY=secret-of-a") {
		t.Fatalf("restic's environment for a lacks its credentials:\n%s", env)
	}
	if strings.Contains(env, "AWS_SESSION_TOKEN") {
		t.Fatalf("restic's environment for a has an inherited AWS variable")
	}
	if args := strings.Join(cmd.Args, " "); strings.Contains(args, "secret-of-a") || strings.Contains(args, "AKIA-A") || !strings.Contains(args, "--option=s3.region=us-east-1") {
		t.Fatalf("restic's command line %q; want the option and no credential", args)
	}
	env = strings.Join(r.command(t.Context(), plain, runOpts{}, "snapshots").Env, "\n")
	if strings.Contains(env, "AWS_ACCESS_KEY_ID=") || strings.Contains(env, "AWS_SECRET_ACCESS_KEY=") || !strings.Contains(env, "AWS_SESSION_TOKEN=") {
		t.Fatalf("a target without repository_env got another's credentials, or lost the plugin's environment:\n%s", env)
	}
	if msg := scrub("Fatal: key secret-of-a refused", a.secrets()...); strings.Contains(msg, "secret-of-a") {
		t.Fatalf("scrub left the secret key in %q", msg)
	}
}

func TestRepositoryShownInChatHasNoURLCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct{ repo, want string }{
		{"s3:http://127.0.0.1:9000/backups/prod", "s3:http://127.0.0.1:9000/backups/prod"},
		{"s3:s3.amazonaws.com/acme/prod-db", "s3:s3.amazonaws.com/acme/prod-db"},
		{"rest:https://user:p%40ss@backup.example:8000/prod/", "rest:https://…@backup.example:8000/prod/"},
		{"rest:https://user:pass@host", "rest:https://…@host"},
		{"s3:https://minio.example/bucket/a@b", "s3:https://minio.example/bucket/a@b"},
		{"/var/backups/repo", "/var/backups/repo"},
	}
	for _, tt := range tests {
		if got := repoName(&Target{Repository: tt.repo}); got != tt.want {
			t.Errorf("repoName(%q) = %q; want %q", tt.repo, got, tt.want)
		}
	}
	// restic quotes the repository in its messages: a URL's password is
	// scrubbed from them, written as it is and decoded.
	rest := &Target{Repository: "rest:https://user:p%40ss-word@backup.example:8000/prod/"}
	msg := scrub("Fatal: unable to open rest:https://user:p%40ss-word@backup.example:8000/prod/ (p@ss-word)", rest.secrets()...)
	if strings.Contains(msg, "p%40ss-word") || strings.Contains(msg, "p@ss-word") {
		t.Fatalf("scrub left the URL's password in %q", msg)
	}
}
