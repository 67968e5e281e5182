package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/hashicorp/go-plugin"
)

// EnvReattach is the environment variable `chima run` reads the plugins to
// attach to from, a JSON object of name to Reattach (the alternative to
// repeating --attach NAME=JSON).
const EnvReattach = "CHIMA_REATTACH_PLUGINS"

// EnvDebug set to 1 makes a plugin binary serve in debug mode, as --debug
// does.
const EnvDebug = "CHIMA_PLUGIN_DEBUG"

// Reattach is how a host attaches to a plugin process that a person started
// in debug mode, in the JSON shape the plugin prints and `chima run
// --attach` reads: {"protocol":"grpc","protocol_version":1,"pid":123,
// "addr":{"network":"unix","string":"/tmp/plugin123"}}.
type Reattach struct {
	// Protocol is go-plugin's protocol, "grpc" (the only one Chima speaks).
	Protocol string `json:"protocol"`
	// ProtocolVersion is the plugin protocol's major version, ProtocolVersion.
	ProtocolVersion int `json:"protocol_version"`
	// Pid is the plugin process's id.
	Pid int `json:"pid"`
	// Addr is where the plugin listens.
	Addr ReattachAddr `json:"addr"`
}

// ReattachAddr is the plugin's listening address.
type ReattachAddr struct {
	// Network is "unix" (a socket) or "tcp".
	Network string `json:"network"`
	// String is the socket's path, or host:port for tcp.
	String string `json:"string"`
}

// NewReattach returns the printable form of the config go-plugin hands a
// plugin serving in test mode.
func NewReattach(c *plugin.ReattachConfig) Reattach {
	return Reattach{
		Protocol: string(c.Protocol), ProtocolVersion: c.ProtocolVersion, Pid: c.Pid,
		Addr: ReattachAddr{Network: c.Addr.Network(), String: c.Addr.String()},
	}
}

// ParseReattach reads one plugin's reattach JSON and checks it can be
// attached to: gRPC, this protocol major, a pid and an address.
func ParseReattach(s string) (Reattach, error) {
	var r Reattach
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Reattach{}, fmt.Errorf("reattach config is not the JSON the plugin printed: %w", err)
	}
	return r, r.check()
}

func (r Reattach) check() error {
	switch {
	case r.Protocol != string(plugin.ProtocolGRPC):
		return fmt.Errorf("reattach config: protocol %q, want %q", r.Protocol, plugin.ProtocolGRPC)
	case r.ProtocolVersion != ProtocolVersion:
		return fmt.Errorf("reattach config: protocol version %d, this Chima speaks %d", r.ProtocolVersion, ProtocolVersion)
	case r.Pid <= 0:
		return errors.New("reattach config: no pid")
	case r.Addr.Network != "unix" && r.Addr.Network != "tcp":
		return fmt.Errorf("reattach config: address network %q, want unix or tcp", r.Addr.Network)
	case r.Addr.String == "":
		return errors.New("reattach config: no address")
	}
	return nil
}

// Config returns go-plugin's ReattachConfig, in test mode: the process is
// the person's, so go-plugin's Kill does not kill it.
func (r Reattach) Config() (*plugin.ReattachConfig, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	var addr net.Addr
	var err error
	if r.Addr.Network == "unix" {
		addr, err = net.ResolveUnixAddr("unix", r.Addr.String)
	} else {
		addr, err = net.ResolveTCPAddr("tcp", r.Addr.String)
	}
	if err != nil {
		return nil, fmt.Errorf("reattach config: address %s: %w", r.Addr.String, err)
	}
	return &plugin.ReattachConfig{
		Protocol: plugin.ProtocolGRPC, ProtocolVersion: r.ProtocolVersion,
		Pid: r.Pid, Addr: addr, Test: true,
	}, nil
}

// ParseReattachEnv reads CHIMA_REATTACH_PLUGINS' value: a JSON object of
// plugin name to Reattach.
func ParseReattachEnv(s string) (map[string]Reattach, error) {
	var m map[string]Reattach
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object of plugin name to reattach config: %w", EnvReattach, err)
	}
	for name, r := range m {
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("%s: plugin %s: %w", EnvReattach, name, err)
		}
	}
	return m, nil
}
