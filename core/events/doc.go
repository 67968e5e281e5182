// Package events delivers verified webhook deliveries to the plugins that
// subscribed to them, durably: a delivery is stored with one row per
// subscribed plugin before it is acknowledged (Queue.Receive), and a
// dispatcher (Queue.Run) hands each row to its plugin, retrying with
// exponential backoff up to a cap, after which the row ends failed, visibly
// (`chima events`, the chima_event_deliveries_total metric, the audit log).
//
// A plugin that is not running is handed nothing and loses no attempt; when
// it is back (Queue.Wake), what it missed is handed to it at once, without
// waiting out a backoff. A redelivery of a delivery is acknowledged and not
// handed again to a plugin that took it; it re-arms the plugins whose
// handing ended failed.
package events
