// Package outbox delivers every chat message the bot sends or edits: one
// queue per (adapter, room), Retry-After honoured, progress edits
// coalesced, memory bounded, over-long messages split or truncated, and
// what could not be delivered logged and counted rather than lost quietly.
//
// The bot redacts secrets and degrades buttons before a message reaches
// the outbox; the outbox changes nothing but length.
//
//	ob := outbox.New(outbox.Options{Logger: log, Registerer: reg})
//	ref, err := ob.Send(ctx, adapter, to, out) // waits for the service
//	err = ob.Update(ctx, adapter, ref, progress) // returns once queued
//	err = ob.Close(ctx)                          // drains, with ctx's deadline
//
// Metrics (all labelled by adapter):
//
//	chima_outbox_sent_total{op}           posts (one per part) and edits delivered
//	chima_outbox_failed_total{reason}     given up: full, closed, permanent, retries, canceled, shutdown
//	chima_outbox_retries_total{reason}    retried: rate_limited, transient
//	chima_outbox_coalesced_total          edits replaced by a later edit before they went out
//	chima_outbox_reshaped_total{how}      too long: split (posts) or truncated (edits)
//	chima_outbox_pending                  waiting or being delivered now
package outbox
