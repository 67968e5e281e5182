// Package wire is the go-plugin glue shared by the Chima host and the Go SDK:
// the handshake, the protocol version and the go-plugin Plugin type that
// carries the chima.plugin.v1 gRPC services. Plugin authors do not use it
// directly; sdk.Serve does.
package wire

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// ProtocolVersion is the major version of the plugin protocol, negotiated in
// go-plugin's handshake. A plugin speaking another major is refused at start.
const ProtocolVersion = 1

// ProtocolMinor is the minor version of the protocol, exchanged in Describe
// for logs. Minors only ever add things:
//
//   - 1: commands, events, jobs, the Host service, multiplexing.
//   - 2: job listing and cancel, plugin logs, pages (HandleHTTP),
//     interrupted-job events.
//   - 3: a cancel says whether Chima is shutting down.
//   - 4: Validate, for `chima config validate`: a plugin checks its
//     settings without serving. Older plugins answer Unimplemented.
//   - 5: EnqueueRequest.title, what a job is for people. Older hosts
//     ignore it.
//   - 6: buttons: Button.action and value, Manifest.actions, the
//     HandleInteraction call (and Call.interaction on Multiplex) for clicks
//     on a plugin's action buttons, and CommandRequest.button for commands
//     run by a click. Older hosts drop action buttons' actions; older
//     plugins declare no actions and so get no interactions.
//   - 7: the core platform: User.person (one identity across adapters),
//     ApprovalNeeded and CommandRequest.approval (approvals in chat),
//     Host.RunCommand and CommandRequest.triggered_by (a plugin runs a
//     command as a person), Manifest.schedules (plugin schedules), the
//     JobInterrupted call (instead of the chima:job_interrupted event) and
//     WebhookEvent.attempt (durable event delivery). Older hosts ignore
//     them; older plugins get the interrupted-job event they subscribed to.
//   - 8: enums beside the strings they supersede (Done.outcome_code,
//     Output.status_code, Button.style_code, JobInfo.state_code,
//     JobsRequest.state_codes, RunCommandResponse.outcome_code; senders set
//     both) and the settings as one JSON document (settings_json), nested
//     values included, for typed settings.
//   - 9: Host.KVTransaction (checked writes of several keys in one call).
//     A plugin that calls it on an older host gets Unimplemented.
//   - 10: Output.mentions: people a message pings, each through a
//     placeholder the host replaces with the chat service's own mention
//     of the person. Older hosts ignore mentions; the SDK writes plain
//     names to them instead of placeholders.
const ProtocolMinor = 10

// PluginName is the key of the Chima service in go-plugin's plugin set.
const PluginName = "chima"

// CapabilityMultiplex is the manifest capability that says the plugin serves
// the Multiplex stream.
const CapabilityMultiplex = "multiplex"

// CapabilityHTTP is the manifest capability that says the plugin serves
// HandleHTTP for its http_paths.
const CapabilityHTTP = "http"

// CapabilityJobInterrupted is the manifest capability that says the plugin
// answers the JobInterrupted call (since minor 7): the host sends it that
// call, not the EventJobInterrupted event.
const CapabilityJobInterrupted = "job_interrupted"

// EventJobInterrupted is the event type the host sends for a plugin's job
// that was running when the host died.
const EventJobInterrupted = "chima:job_interrupted"

// CancelReasonShutdown is the CancelCall reason sent when the host stops.
const CancelReasonShutdown = "shutdown"

// ErrShutdown is the cause of contexts cancelled because the host is
// stopping; the host turns it into CancelReasonShutdown on the wire and the
// SDK back into it.
var ErrShutdown = errors.New("chima is shutting down")

// MaxMessageBytes bounds every gRPC message in both directions.
const MaxMessageBytes = 16 << 20

// Handshake is shared by host and plugins. The magic cookie is a usability
// check, so that a plugin binary run by hand explains itself instead of
// hanging; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "CHIMA_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "7f3c2a1e-chima-plugin-protocol",
}

// Conn is what the host gets after dispensing a plugin: the Plugin client and
// the broker on which it serves the Host service back to the plugin.
type Conn struct {
	// Plugin is the client of the plugin's chima.plugin.v1.Plugin service.
	Plugin pluginv1.PluginClient
	// Broker is go-plugin's broker of the connection, on which the host
	// serves the Host service back to the plugin.
	Broker *plugin.GRPCBroker
}

// GRPCPlugin implements plugin.GRPCPlugin for the chima.plugin.v1 services.
// On the plugin side Impl is set; on the host side it is nil.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl builds the plugin's service once the broker is known.
	Impl func(broker *plugin.GRPCBroker) pluginv1.PluginServer
}

// GRPCServer registers the plugin's service (plugin side).
func (p *GRPCPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServer(s, p.Impl(broker))
	return nil
}

// GRPCClient returns a *Conn (host side).
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &Conn{Plugin: pluginv1.NewPluginClient(c), Broker: broker}, nil
}

// PluginSets returns the versioned plugin sets for go-plugin's
// VersionedPlugins, on either side.
func PluginSets(p *GRPCPlugin) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ProtocolVersion: {PluginName: p}}
}

// GRPCOptions are the server options both sides use: explicit message limits.
func GRPCOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
	}
}

// DialOptions are the client options both sides use.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageBytes),
		grpc.MaxCallSendMsgSize(MaxMessageBytes),
	)}
}

// MaxKVTransactionOps is how many checks and writes one Host.KVTransaction
// may hold in all: a transaction holds the store's write lock (SQLite) or
// its rows' locks (PostgreSQL) while it runs, which other plugins and
// replicas wait for. The host refuses more with InvalidArgument.
const MaxKVTransactionOps = 64

// IsPersonName reports whether s may name a person of chima.yaml's people:
// a lower-case letter, then lower-case letters, digits, '.', '-' and '_'.
// The bot's config checks people's names by it, and the SDK's mentions
// take only such names.
func IsPersonName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}
