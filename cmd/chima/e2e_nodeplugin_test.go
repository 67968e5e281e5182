package main

// End-to-end tests of the Node.js plugin (examples/nodeplugin, on the
// sdk/node/chima-plugin library): through the real bot and its console, and
// through go-plugin's client for what the bot cannot show (the mTLS the
// plugin demands, a Host service it cannot reach).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
	"github.com/chimaops/chima/sdk/wire"
)

var (
	nodeOnce sync.Once
	nodeErr  error
)

// nodePlugin returns the example Node.js plugin's script with its
// dependencies installed: `npm ci` runs once, when the example's
// node_modules is missing or holds a copy of the library older than
// sdk/node/chima-plugin (npm copies it, install-links=true). It skips, or
// fails under CI=true, when node is not on PATH.
func nodePlugin(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		sdktest.Missing(t, "node is not on PATH, so the Node.js plugin cannot run: %v", err)
	}
	dir, err := filepath.Abs("../../examples/nodeplugin")
	if err != nil {
		t.Fatal(err)
	}
	nodeOnce.Do(func() {
		if nodeModulesCurrent(dir) {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			nodeErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
	if nodeErr != nil {
		t.Fatal(nodeErr)
	}
	return filepath.Join(dir, "plugin.js")
}

// nodeModulesCurrent reports whether the example's node_modules holds the
// library exactly as sdk/node/chima-plugin has it.
func nodeModulesCurrent(example string) bool {
	src := filepath.Join(example, "../../sdk/node/chima-plugin")
	installed := filepath.Join(example, "node_modules/chima-plugin")
	if _, err := os.Stat(filepath.Join(example, "node_modules/.package-lock.json")); err != nil {
		return false
	}
	same := true
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(src, path)
		want, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(installed, rel))
		if err != nil || !bytes.Equal(got, want) {
			same = false
			return filepath.SkipAll
		}
		return nil
	})
	return err == nil && same
}

// nodeConfig writes a chima.yaml that runs the Node.js plugin, with AutoMTLS
// on, on the console as alice (an admin) in room general.
func nodeConfig(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`bot:
  name: chima
  prefix: "!"
adapters:
  - {name: shell, type: shell, room: general, user: alice}
store:
  path: %s
plugins:
  - name: nodehello
    path: %s
    auto_mtls: true
roles:
  admin: {users: ["shell:alice"], permissions: ["*"]}
`, filepath.Join(dir, "chima.db"), script)
	path := filepath.Join(dir, "chima.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// nodePID returns the pid of the bot's Node.js plugin process other than
// not, waiting for one to run (a failure guard of 10s applies).
func nodePID(t *testing.T, c *console, not int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, pid := range childPIDs(t, c.cmd.Process.Pid) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if pid != not && alive(pid) && strings.Contains(string(b), "nodeplugin/plugin.js") {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Node.js plugin process (other than %d) under the bot", not)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNodePluginRepliesKeepsNotesInTheHostAcrossAKillAndRunsAJobThatPosts(t *testing.T) {
	c := startConsole(t, nodeConfig(t, nodePlugin(t)))

	c.say(t, "chima nodehello world")
	c.expect(t, "Hello from Node.js, world!")
	c.say(t, "chima nodecount 3")
	c.expect(t, "counted to 3")

	// The first Host call comes after the plugin sat idle past go-plugin's
	// 5 s broker timeout: the plugin dialled the Host service at Describe
	// and kept the connection, so it still reaches it.
	if !testing.Short() {
		idle(t)
	}
	c.say(t, "chima nodenote set color blue")
	c.expect(t, "noted color")
	c.say(t, "chima nodenote get color")
	c.expect(t, "color = blue")

	// The note lives in the host's store, not in the plugin: it is there for
	// the plugin the host starts after this one is killed.
	first := nodePID(t, c, 0)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := nodePID(t, c, first)
	c.say(t, "chima nodenote get color")
	c.expect(t, "color = blue")
	if nodePID(t, c, 0) != second {
		t.Fatal("the restarted plugin did not answer the command")
	}

	c.say(t, "chima nodelock take door")
	c.expect(t, "locked door for alice")
	c.say(t, "/user bob")
	c.say(t, "chima nodelock take door")
	c.expect(t, "door is held by alice")
	c.say(t, "/user alice")
	c.say(t, "chima nodelock release door")
	c.expect(t, "released door")

	c.say(t, "chima nodejob hi there")
	line := c.expect(t, "queued job #")
	id := strings.TrimSpace(line[strings.Index(line, "#")+1:])
	c.expect(t, fmt.Sprintf("job #%s: HI THERE! (for alice; 1 notes kept)", id))
}

// nodeGoPlugin is the Node.js plugin started by go-plugin's client, as
// core/pluginhost starts plugins.
type nodeGoPlugin struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	conn   *wire.Conn
	stderr *syncBuf
}

func startNodeGoPlugin(t *testing.T, autoMTLS bool) (*nodeGoPlugin, error) {
	t.Helper()
	cmd := exec.Command(nodePlugin(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	p := &nodeGoPlugin{stderr: &syncBuf{}}
	p.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.PluginSets(&wire.GRPCPlugin{}),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         autoMTLS,
		SkipHostEnv:      true,
		GRPCDialOptions:  wire.DialOptions(),
		Stderr:           p.stderr,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: p.stderr, Level: hclog.Debug}),
	})
	t.Cleanup(p.client.Kill)
	var err error
	if p.rpc, err = p.client.Client(); err != nil {
		return p, err
	}
	raw, err := p.rpc.Dispense(wire.PluginName)
	if err != nil {
		return p, err
	}
	p.conn = raw.(*wire.Conn)
	return p, nil
}

func TestNodePluginRefusesToRunWithoutAutoMTLS(t *testing.T) {
	p, err := startNodeGoPlugin(t, false)
	if err == nil {
		t.Fatal("the plugin started without AutoMTLS")
	}
	if !strings.Contains(p.stderr.String(), "set auto_mtls: true") {
		t.Fatalf("the plugin did not say to turn AutoMTLS on; its output:\n%s", p.stderr)
	}
}

// selfSigned returns a client certificate that is not the host's.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestNodePluginServesOnlyTheHostsCertificate(t *testing.T) {
	p, err := startNodeGoPlugin(t, true)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, p.stderr)
	}
	// go-plugin's client got here over TLS, checking the plugin's
	// certificate from the handshake line; its health check passed.
	if err := p.rpc.Ping(); err != nil {
		t.Fatalf("ping over mTLS: %v", err)
	}
	addr := p.client.ReattachConfig().Addr
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no client certificate", nil},
		{"a client certificate that is not the host's", []tls.Certificate{selfSigned(t)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds := credentials.NewTLS(&tls.Config{Certificates: tc.certs, InsecureSkipVerify: true}) // the plugin's side is what is tested
			conn, err := grpc.NewClient("passthrough:///plugin", grpc.WithTransportCredentials(creds),
				grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, addr.Network(), addr.String())
				}))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "plugin"})
			if err == nil {
				t.Fatal("the plugin answered a client without the host's certificate")
			}
		})
	}
}

func TestNodePluginDoesNotStartWhenItCannotReachTheHostService(t *testing.T) {
	for _, tc := range []struct {
		name string
		// serve announces a broker id to Describe with, or announces none.
		serve func(b *plugin.GRPCBroker) uint32
		want  string
	}{
		{"the host announces no such service", func(b *plugin.GRPCBroker) uint32 { return b.NextId() + 100 }, "did not announce service"},
		{"nothing listens where the host announced it", func(b *plugin.GRPCBroker) uint32 {
			id := b.NextId()
			ln, err := b.Accept(id)
			if err != nil {
				t.Fatal(err)
			}
			_ = ln.Close()
			return id
		}, "dial the Host service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := startNodeGoPlugin(t, true)
			if err != nil {
				t.Fatalf("start: %v\n%s", err, p.stderr)
			}
			id := tc.serve(p.conn.Broker)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err = p.conn.Plugin.Describe(ctx, &pluginv1.DescribeRequest{HostServiceId: id, ProtocolMinor: wire.ProtocolMinor})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Describe = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
