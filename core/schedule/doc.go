// Package schedule runs chat commands on a clock. Each schedule names a cron
// spec, a command, the room it runs in and the person it runs as; the
// scheduler works out each schedule's slots (the times it is due) and hands
// the command of a due slot to a Runner, which sends it through the same
// router, policy and audit as a typed command.
//
// A slot fires once: the scheduler claims (schedule, slot) in a Store before
// it runs, and a slot claimed already (by another scheduler on the same
// store, or before a restart) is left alone. Slots missed while the bot was
// down fire once at start when a schedule has catch_up, else are skipped;
// never once per missed slot.
//
// Plugins declare schedules of their own in their manifest: a job kind
// with a cron. SetPlugin sets a plugin's (named "<plugin>:<name>") beside
// the config's, replacing them whenever the plugin describes itself again;
// at each slot the Runner enqueues the job instead of running a command,
// under the same (schedule, slot) claim and catch_up rules.
package schedule
