// Package router decides whether a chat message is addressed to the bot,
// which plugin command it names, and parses and validates the command's typed
// arguments against the plugin's manifest. It also renders help.
//
// The router sits on the dispatch hot path and is safe for concurrent use:
// the command table is immutable and replaced as a whole (copy-on-write)
// through an atomic pointer whenever a plugin is registered, replaced or
// removed, so Parse never takes a lock.
//
// Grammar, in the order the router tries it:
//
//  1. "help [topic]" and "commands [topic]" are built in (Kind Help).
//  2. The keyword (first token, case-insensitive) names a command without a
//     pattern: its arguments are positional, split on white space, with
//     "double-quoted words" kept together and a final Rest argument taking
//     the rest of the line verbatim.
//  3. Otherwise the commands with a pattern are tried in registration order
//     against the whole text; named groups fill the arguments of that name.
//  4. Otherwise the text is Malformed (the keyword names a command, but the
//     rest did not fit) or Unknown (with a suggestion when one is close).
//
// Every argument value is checked against its declared type and pattern and
// normalised (booleans to "true"/"false", enum values to their declared
// spelling, durations to time.Duration's form), so plugins receive clean
// values. Secret argument values are never echoed in problems.
package router
