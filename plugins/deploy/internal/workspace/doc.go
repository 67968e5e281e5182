// Package workspace keeps a cached bare mirror of each repository and makes
// a clean checkout of one exact commit per deployment.
//
// A deployment goes
//
//	co, err := cache.Prepare(ctx, repoURL, ref) // fetch, resolve ref to a SHA, check it out
//	defer co.Cleanup()
//	// run the provider in co.Dir, deploying co.SHA
//
// Mirrors live in <dir>/mirrors/<name>-<hash>.git. The first use clones with
// `git clone --mirror --no-local` (a packed copy even of a local repository,
// which checks out several times faster than hardlinked loose objects);
// later uses run `git fetch --prune origin`. A caller that waited while
// another fetch of the same repository started after it asked skips its own
// fetch, since that fetch already saw everything the caller could want.
//
// Checkouts are git worktrees of the mirror in fresh directories under
// <dir>/checkouts (or Options.CheckoutDir), removed, and the worktree entry
// pruned, by Checkout.Cleanup. A worktree was chosen over
// `git clone --shared` + checkout because it writes no copy of the mirror's
// refs (GitHub mirrors carry thousands of refs/pull/*) and keeps the
// checked-out commit reachable for the mirror's own repacks while the
// deployment runs; writing the files is most of the cost either way. It is
// made in two steps: `git worktree add --no-checkout --detach <dir> <sha>`
// registers it, then `git reset --hard` in <dir> writes the files.
//
// Locking: one lock per repository covers everything that changes the
// mirror's bookkeeping (clone, fetch, repack, adding and pruning worktree
// entries), because git's fetch and repack walk every worktree's HEAD and a
// worktree being added is half written. Writing a checkout's files, the slow
// part, runs outside the lock, in parallel with other checkouts and fetches.
//
// The checkout's .git links to the mirror: deploy scripts may read git
// metadata (git rev-parse HEAD, git log) but must not fetch, commit or push
// from it.
//
// Speed: on ext4, creating thousands of files within ~30 s of deleting
// thousands is slow (the inode allocator skips recently deleted inodes one
// at a time), so back-to-back deployments of a large repository are much
// faster with Options.CheckoutDir on a tmpfs; see
// BenchmarkCheckoutWarm5000Files.
//
// Every git command runs through exec.CommandContext with an argv (never a
// shell), in its own process group that is killed on cancellation, with a
// minimal environment: PATH, HOME set to <dir>/home, LC_ALL=C,
// GIT_TERMINAL_PROMPT=0, GIT_CONFIG_NOSYSTEM=1, GIT_CONFIG_GLOBAL=/dev/null,
// GIT_ALLOW_PROTOCOL=file:git:http:https:ssh and a non-interactive ssh, plus
// Options.Env, and for the commands that reach a remote what
// Options.Credentials gives then. Refs are checked with validate.Ref before
// git sees them. Git errors include git's stderr, with credentials in URLs
// redacted.
package workspace
