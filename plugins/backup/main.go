// Command backup is Chima's backup plugin: databases (PostgreSQL, MySQL and
// MariaDB, SQLite) and directories backed up from chat with restic,
// listed, verified by restoring them into a scratch place, restored there,
// and restored over live data only once another person approved.
//
// Settings (chima.yaml plugins[].settings), decoded strictly by the SDK
// (an unknown key or a wrong type is named by its path, such as
// targets.demo-db.retention.keep_daily):
//
//	targets    a map of target name to its declaration, as nested YAML:
//	           kind (postgres, mysql, mariadb, sqlite, directory), dsn_env
//	           or path, excludes, repository, repository_env,
//	           repository_options, password_file or password_env,
//	           init, retention {keep_last, keep_daily, …}, schedule,
//	           verify_schedule, scratch, scratch_dsn_env, room, alert_after;
//	           the older form, that map as a YAML or JSON string
//	           (targets: |), is read the same
//	restic     the restic binary (default: restic on $PATH); 0.18 or newer
//	cache_dir  restic's cache (default: a folder in the temporary directory)
//
// Secrets (chima.yaml plugins[].secrets): the DSNs and repository passwords
// the targets name by dsn_env and password_env, or RESTIC_PASSWORD_FILE /
// RESTIC_PASSWORD for every target that names none, and the backends'
// credentials named by repository_env. A password reaches restic through
// its environment only, and a database password its client tools through
// theirs (PGPASSWORD, MYSQL_PWD): never a command line, a log or chat.
//
// A remote repository (s3:, b2:, azure:, gs:, swift:, rest:, rclone:,
// sftp:) takes its credentials from repository_env, a map of restic's
// variable to the secret holding it, and its extended options from
// repository_options, each passed as one --option=backend.option=value:
//
//	app-db:
//	  kind: sqlite
//	  path: data/app.db
//	  repository: s3:http://127.0.0.1:9000/backups/app-db
//	  repository_env: {AWS_ACCESS_KEY_ID: S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET_KEY}
//	  repository_options: [s3.bucket-lookup=path, s3.region=us-east-1]
//	  password_env: BACKUP_PASSWORD
//	  init: true
//	  scratch: data/scratch
//
// repository_env takes only the backends' variables (AWS_*,
// RESTIC_AWS_ASSUME_ROLE_*, B2_*, AZURE_*, GOOGLE_*, OS_*, ST_*, RCLONE_*,
// RESTIC_REST_USERNAME, RESTIC_REST_PASSWORD), and a target that has it
// gets no backend variable the plugin inherited. An option must be one of
// the repository's backend that restic knows, its value one plain word;
// options are on restic's command line, so they never hold a secret. A
// backend that refuses the credentials is ErrAccessDenied, told in chat
// with the secrets to check; a missing bucket, like any missing
// repository, is ErrNoRepository (init: true creates both).
//
// Each backup is a durable job whose queue key is its target's: the jobs of
// one target (backups, verifications, restores) run one at a time. Restic
// is driven through --json and its exit codes (ResticError, ErrNoRepository,
// ErrWrongPassword, ErrLocked, …); a database dump runs under restic backup
// --stdin-from-command, so a dump that fails fails the backup and stores
// nothing.
package main

import (
	"encoding/json"
	"os"

	"github.com/chimaops/chima/sdk"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == countRowsArg {
		os.Exit(countRowsMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == dumpGuardArg {
		os.Exit(dumpGuardMain(os.Args[2:]))
	}
	sdk.Serve((&backuper{}).spec())
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
