// Package validate checks the pieces of a deploy command that come from chat
// and end up as arguments of git, fab, cap or ansible-playbook: refs, task
// names and host lists, plus app and environment names.
//
// The rules are deliberately stricter than the tools need. Every value is
// passed as its own argv entry and never through a shell, so the checks are a
// second line of defence: a value may not start with "-" (it would be read as
// an option), may not contain shell metacharacters, whitespace or control
// characters, may not contain ".." (path traversal, git range syntax) or "@{"
// (git reflog syntax), and has a sensible maximum length.
//
// Every function returns nil or an *Error whose message names the field and
// says what is wrong, ready to be shown in chat:
//
//	ref "main;reboot" is not allowed: it contains ";"
package validate
