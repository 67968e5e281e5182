// Package pluginhost starts Chima's plugin processes through
// hashicorp/go-plugin and keeps them running. It owns the handshake (magic
// cookie, protocol version through VersionedPlugins, gRPC only, AutoMTLS), the
// clean per-plugin environment, the optional SHA-256 pin, the bridge from
// plugin logs to the host's slog log, the Host service served back to each
// plugin over the GRPCBroker, and supervision: a plugin that dies fails the
// calls it was handling with ErrCrashed, is restarted with exponential
// backoff, and is marked failed after repeated crashes. Calls are never
// retried automatically: a half-done deploy must not run twice.
package pluginhost
