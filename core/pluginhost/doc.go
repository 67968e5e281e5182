// Package pluginhost starts Chima's plugin processes through
// hashicorp/go-plugin and keeps them running. It owns the handshake (magic
// cookie, protocol version through VersionedPlugins, gRPC only, AutoMTLS), the
// clean per-plugin environment, the optional SHA-256 pin, the bridge from
// plugin logs to the host's slog log, the Host service served back to each
// plugin over the GRPCBroker, and supervision: a plugin that dies fails the
// calls it was handling with ErrCrashed, is restarted with exponential
// backoff, and is marked failed after repeated crashes. A failed plugin (too
// many crashes, or it could not start) is started again later, with a
// backoff that grows with each failure in a row (Options.RetryBackoff up to
// MaxRetryBackoff); Status says when. Health names the failed plugins.
//
// Calls are never retried once the plugin may have seen them: a half-done
// deploy must not run twice. Only a call that never reached the plugin (its
// process or stream had ended before the call was sent) goes to the
// restarted process, and it does not count as crashing under that call.
package pluginhost
