'use strict';
// chima-plugin serves a Chima plugin from Node.js the way hashicorp/go-plugin's
// Go servers do, so that the Chima host starts it like any Go plugin:
//
//   * The host sets CHIMA_PLUGIN_MAGIC_COOKIE (a usability check, not
//     security), PLUGIN_PROTOCOL_VERSIONS, PLUGIN_MIN_PORT/PLUGIN_MAX_PORT and,
//     with AutoMTLS, PLUGIN_CLIENT_CERT: its own per-start certificate (PEM).
//   * The plugin makes a self-signed certificate of its own, serves gRPC over
//     TLS requiring a client certificate signed by PLUGIN_CLIENT_CERT's (the
//     host's, which is self-signed), and prints one handshake line on stdout:
//     CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK|ADDR|PROTOCOL|SERVER-CERT,
//     SERVER-CERT being its certificate's DER in base64 without padding.
//     Nothing else is ever written to stdout; logs go to stderr as hclog JSON
//     lines, which the host logs at their level.
//   * Besides chima.plugin.v1.Plugin it serves go-plugin's services:
//     grpc.health.v1.Health ("plugin" is SERVING), plugin.GRPCController
//     (Shutdown), plugin.GRPCStdio and plugin.GRPCBroker. On the broker's
//     stream the host announces, as ConnInfo{service_id, network, address},
//     the services it serves back; the Host service is the one whose id
//     DescribeRequest.host_service_id names. The plugin dials it over TLS
//     (its own certificate as the client's, the host's as the only root),
//     before it answers Describe, and keeps that channel. The host expects
//     no acknowledgement: knocks exist only with broker multiplexing, which
//     this library does not advertise.
//
// AutoMTLS is required: without PLUGIN_CLIENT_CERT the plugin explains that
// on stderr and exits 1, rather than serving its socket in the clear.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const forge = require('node-forge');

// The handshake, as sdk/wire/wire.go defines it.
const MAGIC_COOKIE_KEY = 'CHIMA_PLUGIN_MAGIC_COOKIE';
const MAGIC_COOKIE_VALUE = '7f3c2a1e-chima-plugin-protocol';
// go-plugin's own protocol version (CoreProtocolVersion).
const CORE_PROTOCOL_VERSION = 1;
// wire.ProtocolVersion: chima.plugin.v1.
const APP_PROTOCOL_VERSION = 1;
// wire.ProtocolMinor, the minor this library speaks.
const PROTOCOL_MINOR = 8;
// wire.MaxMessageBytes bounds every message in both directions.
const MAX_MESSAGE_BYTES = 16 << 20;
// The service name go-plugin's client health-checks.
const HEALTH_SERVICE = 'plugin';
// How long Describe waits for the broker to announce the Host service: the
// host starts serving it just before it calls Describe, and its announcement
// travels on another stream. go-plugin's Go broker waits as long.
const BROKER_WAIT_MS = 5000;
// How long a Host call may take before it fails, unless the caller says.
const HOST_CALL_TIMEOUT_MS = 30000;

const PROTO_DIR = path.join(__dirname, 'proto');
const PROTO_FILES = [
  'chima/plugin/v1/plugin.proto',
  'plugin/grpc_broker.proto',
  'plugin/grpc_controller.proto',
  'plugin/grpc_stdio.proto',
  'grpc/health/v1/health.proto',
];

// Loaded once: fields in lowerCamelCase, int64 as Number, enums as their
// names, bytes as Buffer, absent fields as their defaults.
const definitions = protoLoader.loadSync(PROTO_FILES, {
  includeDirs: [PROTO_DIR],
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const loaded = grpc.loadPackageDefinition(definitions);
const pb = {
  Plugin: loaded.chima.plugin.v1.Plugin,
  Host: loaded.chima.plugin.v1.Host,
  GRPCBroker: loaded.plugin.GRPCBroker,
  GRPCController: loaded.plugin.GRPCController,
  GRPCStdio: loaded.plugin.GRPCStdio,
  Health: loaded.grpc.health.v1.Health,
};

const CHANNEL_OPTIONS = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
};

// ------------------------------------------------------------------ logging --

const LEVELS = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

// hclogTimestamp formats a time as go-plugin parses hclog's @timestamp:
// 2006-01-02T15:04:05.000000Z07:00, microseconds included.
function hclogTimestamp(d) {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

// Logger writes hclog JSON lines (@level, @message, @timestamp, then the
// given fields) to a stream, stderr by default.
class Logger {
  constructor({ stream = process.stderr, level = 'info', fields = {} } = {}) {
    this.stream = stream;
    this.level = LEVELS[level] ?? LEVELS.info;
    this.fields = fields;
  }

  // with returns a logger that adds fields to every line.
  with(fields) {
    const l = new Logger({ stream: this.stream, fields: { ...this.fields, ...fields } });
    l.level = this.level;
    return l;
  }

  log(level, message, fields = {}) {
    if ((LEVELS[level] ?? LEVELS.info) < this.level) return;
    const entry = { '@level': level, '@message': message, '@timestamp': hclogTimestamp(new Date()) };
    for (const [k, v] of Object.entries({ ...this.fields, ...fields })) {
      entry[k] = v instanceof Error ? v.message : v;
    }
    this.stream.write(JSON.stringify(entry) + '\n');
  }

  debug(message, fields) { this.log('debug', message, fields); }
  info(message, fields) { this.log('info', message, fields); }
  warn(message, fields) { this.log('warn', message, fields); }
  error(message, fields) { this.log('error', message, fields); }
}

// ------------------------------------------------------------------- errors --

// UserError is a failure meant for the person in chat (a bad argument, a
// refused action), not a plugin crash: the host shows summary and detail,
// and a job ending with one fails rather than errs.
class UserError extends Error {
  constructor(summary, { detail = '', argument = '' } = {}) {
    super(summary);
    this.name = 'UserError';
    this.summary = summary;
    this.detail = detail;
    this.argument = argument;
  }
}

// ShutdownError is the reason of a call's signal when the host stops the
// plugin (a graceful Shutdown), rather than cancelling that one call.
class ShutdownError extends Error {
  constructor() {
    super('chima is shutting down');
    this.name = 'ShutdownError';
  }
}

// ------------------------------------------------------------- certificate --

// generateCertificate makes the plugin's per-start certificate, as
// go-plugin's generateCert does: self-signed, a CA (so that it is its own
// root), for both server and client authentication, named localhost (the
// name the host checks). Node cannot create X.509 certificates, so
// node-forge builds and signs it; the RSA key comes from Node's crypto.
function generateCertificate() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs1', format: 'pem' });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }));
  // A positive 128-bit serial.
  cert.serialNumber = '00' + crypto.randomBytes(16).toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 30 * 1000);
  cert.validity.notAfter = new Date(now + 10 * 365 * 24 * 3600 * 1000);
  const name = [
    { name: 'commonName', value: 'localhost' },
    { name: 'organizationName', value: 'Chima' },
  ];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true, keyCertSign: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const der = new crypto.X509Certificate(certPem).raw;
  return { certPem, keyPem, der };
}

// ------------------------------------------------------------------ outputs --

// output turns a string or an Output-shaped object into an Output message,
// setting status_code beside status as minor 8 senders do.
function output(o) {
  if (typeof o === 'string') return { text: o };
  const out = { ...o };
  if (out.status && !out.statusCode) out.statusCode = 'STATUS_' + String(out.status).toUpperCase();
  return out;
}

const OUTCOME_CODES = {
  success: 'OUTCOME_SUCCESS',
  failure: 'OUTCOME_FAILURE',
  error: 'OUTCOME_ERROR',
  cancelled: 'OUTCOME_CANCELLED',
};

function doneEvent(outcome = '', detail = '') {
  return { done: { outcome, detail, outcomeCode: OUTCOME_CODES[outcome] || 'OUTCOME_UNSPECIFIED' } };
}

// --------------------------------------------------------------------- host --

// lowerFirst names a Host method as JavaScript does: KVGet → kvGet.
function jsName(method) {
  const m = /^([A-Z]+)([A-Z][a-z].*)$/.exec(method);
  if (m) return m[1].toLowerCase() + m[2];
  return method[0].toLowerCase() + method.slice(1);
}

// Broker keeps the connection info the host announces on the GRPCBroker
// stream, by service id, and hands it to whoever waits for it.
class Broker {
  constructor() {
    this.infos = new Map();
    this.waiters = new Map();
  }

  announce(info) {
    this.infos.set(info.serviceId, info);
    const waiting = this.waiters.get(info.serviceId) || [];
    this.waiters.delete(info.serviceId);
    for (const w of waiting) w(info);
  }

  // wait returns the connection info of service id, waiting up to ms for it.
  wait(id, ms) {
    const known = this.infos.get(id);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const list = (this.waiters.get(id) || []).filter((w) => w !== got);
        this.waiters.set(id, list);
        reject(new Error(`the host did not announce service ${id} on the broker within ${ms / 1000}s`));
      }, ms);
      const got = (info) => { clearTimeout(timer); resolve(info); };
      this.waiters.set(id, [...(this.waiters.get(id) || []), got]);
    });
  }
}

// Host is the plugin's client of the host's Host service: one promise-
// returning method per RPC, named in lowerCamelCase (post, enqueue, lock,
// kvGet, kvSet, ...), each taking the request message and optional
// { signal, timeoutMs }.
class Host {
  constructor(client, channelTarget) {
    this.client = client;
    this.target = channelTarget;
    for (const method of Object.keys(pb.Host.service)) {
      this[jsName(method)] = (request = {}, opts = {}) => this.call(method, request, opts);
    }
  }

  call(method, request, { signal, timeoutMs = HOST_CALL_TIMEOUT_MS } = {}) {
    return new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutMs);
      const call = this.client[method](request, { deadline }, (err, resp) => {
        if (signal) signal.removeEventListener('abort', onAbort);
        if (err) reject(new Error(`Host.${method}: ${err.details || err.message}`, { cause: err }));
        else resolve(resp);
      });
      const onAbort = () => call.cancel();
      if (signal) {
        if (signal.aborted) call.cancel();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  close() { this.client.close(); }
}

// dialHost connects to the Host service at a broker's connection info over
// mutual TLS and waits until the channel is ready.
function dialHost(info, tls, timeoutMs) {
  let target;
  switch (info.network) {
    case 'unix': target = 'unix:' + info.address; break;
    case 'tcp': target = info.address; break;
    default: return Promise.reject(new Error(`the broker announced an unknown network ${JSON.stringify(info.network)}`));
  }
  const creds = grpc.credentials.createSsl(
    Buffer.from(tls.hostCertPem), Buffer.from(tls.keyPem), Buffer.from(tls.certPem));
  const client = new pb.Host(target, creds, {
    ...CHANNEL_OPTIONS,
    // The host's certificate names localhost, as go-plugin's ServerName.
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.default_authority': 'localhost',
    // Never let the channel go idle: it would redial on its next call, a
    // path only long quiet exercises. It is one local socket.
    'grpc.client_idle_timeout_ms': 2 ** 31 - 1,
  });
  return new Promise((resolve, reject) => {
    client.waitForReady(new Date(Date.now() + timeoutMs), (err) => {
      if (err) {
        client.close();
        reject(new Error(`dial the Host service at ${target}: ${err.message}`));
        return;
      }
      resolve(new Host(client, target));
    });
  });
}

// ------------------------------------------------------------------ context --

// Context is what a handler gets for one call: the request, ways to answer
// (reply, progress), the Host service, the call's signal and a logger.
class Context {
  constructor({ kind, request, write, host, settings, signal, logger }) {
    this.kind = kind;
    this.request = request;
    this.signal = signal;
    this.logger = logger;
    this.settings = settings;
    this._write = write;
    this._host = host;
    this.command = kind === 'command' ? request : null;
    this.event = kind === 'event' ? request : null;
    this.interaction = kind === 'interaction' ? request : null;
    this.job = kind === 'job' ? request : kind === 'jobInterrupted' ? request.job : null;
    this.requestId = request.requestId || '';
    // Where replies go: the command's or click's message, the job's notify.
    this.source = (this.command || this.interaction)?.message || this.job?.notify || null;
    this.args = this.command?.args || {};
    this.user = (this.command || this.interaction)?.user || null;
  }

  // host is the Host service; it throws when the host serves none.
  get host() {
    if (!this._host) throw new Error('the host serves no Host service to this plugin (explain-only mode)');
    return this._host;
  }

  // arg returns a validated argument of the command, '' when absent.
  arg(name) { return this.args[name] ?? ''; }

  // setting returns a plugin setting from chima.yaml, '' when absent.
  setting(name) { return this.settings[name] ?? ''; }

  // shuttingDown reports whether the call ends because the host stops.
  get shuttingDown() { return this.signal.aborted && this.signal.reason instanceof ShutdownError; }

  // reply posts a new message in answer (text or an Output object).
  reply(o, { inThread = false } = {}) {
    this._write({ reply: { output: output(o), inThread } });
  }

  // progress shows the state of long work; progress with one key updates
  // one message where the chat can edit messages.
  progress(key, o) {
    this._write({ progress: { key, output: output(o) } });
  }

  // post sends a message to a room (a MessageRef; the call's source when
  // omitted) through the Host service, and returns the posted MessageRef.
  async post(o, to = this.source) {
    const resp = await this.host.post({ target: to, output: output(o), requestId: this.requestId }, { signal: this.signal });
    return resp.message;
  }

  // enqueue adds a durable job of one of the plugin's kinds; it reports to
  // the call's source unless opts.notify says otherwise. It returns its id.
  async enqueue(kind, payload, opts = {}) {
    const origin = this.job?.originRequestId || this.requestId;
    const resp = await this.host.enqueue({
      kind,
      payload: Buffer.isBuffer(payload) ? payload : Buffer.from(String(payload ?? '')),
      queueKey: opts.queueKey || '',
      notify: opts.notify || this.source,
      originRequestId: origin,
      delaySeconds: Math.ceil((opts.delayMs || 0) / 1000),
      title: opts.title || '',
    }, { signal: this.signal });
    return resp.jobId;
  }

  // kvGet reads a key of the plugin's own state: a Buffer, or null.
  async kvGet(key) {
    const resp = await this.host.kvGet({ key }, { signal: this.signal });
    return resp.found ? resp.value : null;
  }

  // kvSet writes a key of the plugin's own state.
  async kvSet(key, value) {
    await this.host.kvSet({ key, value: Buffer.isBuffer(value) ? value : Buffer.from(String(value)) }, { signal: this.signal });
  }

  // lock takes a named lock; it resolves to { acquired, holder }.
  lock(name, { owner, reason = '', ttlSeconds = 0, jobId = 0 } = {}) {
    return this.host.lock({ name, owner: owner ?? this.lockOwner(), reason, ttlSeconds, jobId }, { signal: this.signal });
  }

  // unlock releases a named lock; it resolves to { released, holder }.
  unlock(name, { owner, force = false } = {}) {
    return this.host.unlock({ name, owner: owner ?? this.lockOwner(), force }, { signal: this.signal });
  }

  // lockOwner names the person behind the call, as locks should.
  lockOwner() {
    const u = this.user;
    return u ? (u.person || u.name || u.id) : 'chima';
  }

  // sleep waits ms, or rejects when the call's signal aborts.
  sleep(ms) {
    return new Promise((resolve, reject) => {
      if (this.signal.aborted) { reject(this.signal.reason); return; }
      const timer = setTimeout(() => { this.signal.removeEventListener('abort', onAbort); resolve(); }, ms);
      const onAbort = () => { clearTimeout(timer); reject(this.signal.reason); };
      this.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

// --------------------------------------------------------------- the plugin --

const ARG_TYPES = { string: 'ARG_TYPE_STRING', int: 'ARG_TYPE_INT', bool: 'ARG_TYPE_BOOL', enum: 'ARG_TYPE_ENUM', duration: 'ARG_TYPE_DURATION' };

// manifest builds the Manifest message a plugin definition describes.
function manifest(def) {
  const capabilities = [...(def.capabilities || [])];
  if (def.onJobInterrupted && !capabilities.includes('job_interrupted')) capabilities.push('job_interrupted');
  return {
    name: def.name,
    version: def.version || '0.0.0',
    description: def.description || '',
    protocolMinor: PROTOCOL_MINOR,
    capabilities,
    events: (def.events || []).map((e) => e.type),
    jobKinds: (def.jobs || []).map((j) => j.kind),
    actions: (def.actions || []).map(({ name, help = '', command = '', permission = '' }) => ({ name, help, command, permission })),
    commands: (def.commands || []).map((c) => ({
      name: c.name,
      aliases: c.aliases || [],
      usage: c.usage || c.name,
      help: c.help || '',
      permission: c.permission || '',
      pattern: c.pattern || '',
      examples: c.examples || [],
      args: (c.args || []).map((a) => ({
        name: a.name,
        type: ARG_TYPES[a.type || 'string'] || a.type,
        required: !!a.required,
        default: a.default ?? '',
        enum: a.enum || [],
        secret: !!a.secret,
        rest: !!a.rest,
        help: a.help || '',
        pattern: a.pattern || '',
      })),
    })),
  };
}

// checkDefinition throws on a definition the host would refuse or that
// could never run.
function checkDefinition(def) {
  if (!def || typeof def.name !== 'string' || def.name === '') throw new Error('a plugin needs a name');
  for (const [list, key] of [['commands', 'name'], ['jobs', 'kind'], ['events', 'type'], ['actions', 'name']]) {
    for (const item of def[list] || []) {
      if (!item[key]) throw new Error(`${def.name}: every one of ${list} needs a ${key}`);
      if (typeof item.run !== 'function') throw new Error(`${def.name}: ${list} ${item[key]} has no run function`);
    }
  }
}

// PluginServer is the chima.plugin.v1.Plugin service for one plugin
// definition, and go-plugin's services around it. serve starts one; tests
// may build one and call handleCall directly (see runForTest).
class PluginServer {
  constructor(def, { logger = new Logger(), tls = null } = {}) {
    checkDefinition(def);
    this.def = def;
    this.logger = logger;
    this.tls = tls;
    this.broker = new Broker();
    this.host = null;
    this.hostId = 0;
    this.settings = {};
    this.settingsJson = '';
    this.calls = new Set();
    this.handlers = {
      command: new Map((def.commands || []).map((c) => [c.name, c])),
      event: new Map((def.events || []).map((e) => [e.type, e])),
      job: new Map((def.jobs || []).map((j) => [j.kind, j])),
      interaction: new Map((def.actions || []).map((a) => [a.name, a])),
    };
  }

  // connectHost dials the Host service served on broker id, unless it is
  // connected to it already. id 0: the host serves none.
  async connectHost(id) {
    if (id === this.hostId && this.host) return;
    if (this.host) this.host.close();
    this.host = null;
    this.hostId = id;
    if (id === 0) return;
    const info = await this.broker.wait(id, BROKER_WAIT_MS);
    this.host = await dialHost(info, this.tls, BROKER_WAIT_MS);
    this.logger.debug('connected to the Host service', { broker_id: id, address: this.host.target });
  }

  async describe(req) {
    await this.connectHost(req.hostServiceId);
    this.settings = req.settings || {};
    this.settingsJson = req.settingsJson || '';
    if (this.def.configure) await this.def.configure(this.settings, { settingsJson: this.settingsJson, hostVersion: req.hostVersion, logger: this.logger });
    this.logger.info('described to host', { host_version: req.hostVersion, host_protocol_minor: req.protocolMinor });
    return manifest(this.def);
  }

  async validate(req) {
    if (!this.def.validate) {
      if (!this.def.configure) return { problems: [] };
      const err = new Error(`${this.def.name} does not validate its settings`);
      err.code = grpc.status.UNIMPLEMENTED;
      throw err;
    }
    try {
      const problems = (await this.def.validate(req.settings || {}, { settingsJson: req.settingsJson || '' })) || [];
      return { problems: problems.map((p) => (typeof p === 'string' ? { message: p } : { file: '', line: 0, key: '', ...p })) };
    } catch (e) {
      return { problems: [{ message: e.message }] };
    }
  }

  // handleCall runs one call (kind: command, event, job, interaction,
  // jobInterrupted) and always ends it with Done, as the Go SDK does.
  async handleCall(kind, request, write, signal) {
    const ctx = new Context({
      kind, request, write, host: this.host, settings: this.settings, signal,
      logger: this.logger.with({ request_id: request.requestId || '' }),
    });
    let handler;
    switch (kind) {
      case 'command': handler = this.handlers.command.get(request.command)?.run; break;
      case 'event': handler = this.handlers.event.get(request.type)?.run; break;
      case 'job': handler = this.handlers.job.get(request.kind)?.run; break;
      case 'interaction': handler = this.handlers.interaction.get(request.action)?.run; break;
      case 'jobInterrupted': handler = this.def.onJobInterrupted; break;
    }
    if (!handler) {
      write(doneEvent('error', `${this.def.name} has no handler for this call`));
      return;
    }
    try {
      await handler(ctx);
    } catch (e) {
      if (e instanceof UserError) {
        write({ error: { summary: e.summary, detail: e.detail, argument: e.argument } });
        write(doneEvent('failure', e.message));
        return;
      }
      let outcome = kind === 'job' ? 'failure' : 'error';
      if (signal.aborted) outcome = 'cancelled';
      else ctx.logger.error('handler failed', { kind, error: e.stack || String(e) });
      write(doneEvent(outcome, e && e.message ? e.message : String(e)));
      return;
    }
    write(doneEvent(kind === 'job' ? 'success' : ''));
  }

  // streamCall serves one server-streaming call of the Plugin service.
  streamCall(kind, call) {
    const ac = new AbortController();
    const entry = { abort: (reason) => ac.abort(reason) };
    this.calls.add(entry);
    call.on('cancelled', () => ac.abort(new Error('call cancelled by the host')));
    const write = (ev) => { if (!call.cancelled && !call.destroyed) call.write(ev); };
    this.handleCall(kind, call.request, write, ac.signal)
      .catch((e) => this.logger.error('call failed', { kind, error: e.stack || String(e) }))
      .finally(() => { this.calls.delete(entry); if (!call.cancelled) call.end(); });
  }

  // stopCalls aborts every call in progress because the plugin stops.
  stopCalls() {
    for (const c of this.calls) c.abort(new ShutdownError());
  }

  // service is the implementation of chima.plugin.v1.Plugin for grpc-js.
  service() {
    const unary = (fn) => (call, callback) => {
      Promise.resolve().then(() => fn(call.request)).then(
        (resp) => callback(null, resp),
        (e) => callback({ code: e.code ?? grpc.status.UNKNOWN, details: e.message }));
    };
    const unimplemented = (what) => (call, callback) => {
      const err = { code: grpc.status.UNIMPLEMENTED, details: `${this.def.name} does not serve ${what}` };
      if (callback) callback(err); else call.emit('error', err);
    };
    return {
      Describe: unary(async (req) => {
        try {
          return await this.describe(req);
        } catch (e) {
          this.logger.error('describe failed', { error: e.message });
          throw new Error(`${this.def.name}: ${e.message}`);
        }
      }),
      Validate: unary((req) => this.validate(req)),
      Handle: (call) => this.streamCall('command', call),
      HandleEvent: (call) => this.streamCall('event', call),
      RunJob: (call) => this.streamCall('job', call),
      HandleInteraction: (call) => this.streamCall('interaction', call),
      JobInterrupted: (call) => this.streamCall('jobInterrupted', call),
      HandleHTTP: unimplemented('HandleHTTP (no http capability)'),
      Multiplex: unimplemented('Multiplex (no multiplex capability)'),
    };
  }
}

// ---------------------------------------------------------------- listening --

// listen binds the gRPC server as go-plugin's Go servers do: a Unix socket
// in PLUGIN_UNIX_SOCKET_DIR (or the temp dir) on POSIX systems, a TCP port of
// PLUGIN_MIN_PORT..PLUGIN_MAX_PORT on 127.0.0.1 on Windows. It resolves to
// { network, address, cleanup }.
async function listen(server, creds, env) {
  const bind = (target) => new Promise((resolve, reject) => {
    server.bindAsync(target, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
  if (process.platform !== 'win32') {
    const dir = fs.mkdtempSync(path.join(env.PLUGIN_UNIX_SOCKET_DIR || os.tmpdir(), 'chima-node-plugin-'));
    const address = path.join(dir, 'plugin.sock');
    await bind('unix:' + address);
    return { network: 'unix', address, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
  }
  const min = Number.parseInt(env.PLUGIN_MIN_PORT || '0', 10);
  const max = Number.parseInt(env.PLUGIN_MAX_PORT || '0', 10);
  if (Number.isNaN(min) || Number.isNaN(max) || min > max) {
    throw new Error(`PLUGIN_MIN_PORT ${env.PLUGIN_MIN_PORT} and PLUGIN_MAX_PORT ${env.PLUGIN_MAX_PORT} are no port range`);
  }
  for (let port = min; port <= max; port++) {
    try {
      const got = await bind(`127.0.0.1:${port}`);
      return { network: 'tcp', address: `127.0.0.1:${got}`, cleanup: () => {} };
    } catch {
      // taken: try the next port
    }
  }
  throw new Error(`no free TCP port in ${min}..${max} on 127.0.0.1`);
}

// ------------------------------------------------------------------- serve --

function notAPlugin(def) {
  return `This is ${def.name}, a Chima plugin written for Node.js. It is not meant to be run
by hand: Chima starts it and talks to it over gRPC. To use it, add it to the
plugins of chima.yaml:

  plugins:
    - name: ${def.name}
      path: ${process.argv[1] ? path.resolve(process.argv[1]) : '<this script>'}
      auto_mtls: true

(${MAGIC_COOKIE_KEY} is not set to the value of the Chima plugin protocol.)
`;
}

// serve runs a plugin definition until the host stops it. It must be the
// only thing a plugin's main script does at start; nothing may write to
// stdout, which carries the handshake. It resolves once the plugin is
// serving; the process exits when the host shuts it down or goes away.
//
// A definition is { name, version, description, commands: [{ name, usage,
// help, args: [{ name, type, required, rest, enum, default, help }], run }],
// jobs: [{ kind, run }], events: [{ type, run }], actions: [{ name, help,
// run }], configure(settings), validate(settings), onJobInterrupted(ctx) };
// each run(ctx) gets a Context.
async function serve(def, { env = process.env, logLevel } = {}) {
  checkDefinition(def);
  const logger = new Logger({ level: logLevel || env.CHIMA_PLUGIN_LOG_LEVEL || 'info' });
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(notAPlugin(def));
    process.exitCode = 1;
    return null;
  }
  const hostCertPem = env.PLUGIN_CLIENT_CERT || '';
  if (hostCertPem === '') {
    logger.error('the host did not ask for automatic mTLS, which this Node.js plugin requires; set auto_mtls: true (the default) for it in chima.yaml');
    process.exitCode = 1;
    return null;
  }
  const offered = (env.PLUGIN_PROTOCOL_VERSIONS || '').split(',').filter(Boolean);
  if (offered.length > 0 && !offered.includes(String(APP_PROTOCOL_VERSION))) {
    // As go-plugin's Go servers do: announce our version anyway, and the
    // host refuses it with a message naming both sides' versions.
    logger.error('the host does not speak this plugin\'s protocol version', { host_versions: offered.join(','), plugin_version: APP_PROTOCOL_VERSION });
  }
  try {
    new crypto.X509Certificate(hostCertPem);
  } catch (e) {
    logger.error('PLUGIN_CLIENT_CERT is no PEM certificate', { error: e.message });
    process.exitCode = 1;
    return null;
  }

  const { certPem, keyPem, der } = generateCertificate();
  const tls = { hostCertPem, certPem, keyPem };
  const plugin = new PluginServer(def, { logger, tls });
  const server = new grpc.Server(CHANNEL_OPTIONS);

  let stopping = false;
  let cleanup = () => {};
  const stdioCalls = new Set();
  const stop = (why) => {
    if (stopping) return;
    stopping = true;
    logger.debug('stopping', { why });
    plugin.stopCalls();
    for (const c of stdioCalls) c.end();
    if (plugin.host) plugin.host.close();
    // Like go-plugin's GRPCController, stop at once rather than wait for
    // calls: the host has given up on them.
    server.forceShutdown();
    cleanup();
    setImmediate(() => process.exit(0));
  };

  server.addService(pb.Plugin.service, plugin.service());
  server.addService(pb.Health.service, {
    Check: (call, callback) => {
      const service = call.request.service;
      if (service !== '' && service !== HEALTH_SERVICE) {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(service)}` });
        return;
      }
      callback(null, { status: 'SERVING' });
    },
    Watch: (call) => { call.write({ status: 'SERVING' }); },
    List: (call, callback) => callback(null, { statuses: { [HEALTH_SERVICE]: { status: 'SERVING' } } }),
  });
  server.addService(pb.GRPCController.service, {
    Shutdown: (call, callback) => {
      callback(null, {});
      setImmediate(() => stop('the host asked the plugin to shut down'));
    },
  });
  server.addService(pb.GRPCStdio.service, {
    // Go plugins forward their stdout and stderr here. This library logs to
    // the real stderr, which go-plugin reads directly, and never writes to
    // stdout after the handshake; the stream stays open and empty until the
    // plugin stops, as a Go plugin's does when nothing is printed.
    StreamStdio: (call) => {
      stdioCalls.add(call);
      call.on('cancelled', () => stdioCalls.delete(call));
    },
  });
  server.addService(pb.GRPCBroker.service, {
    StartStream: (call) => {
      call.on('data', (info) => {
        if (info.knock) {
          logger.warn('the host knocked on the broker, but this plugin does not multiplex it', { broker_id: info.serviceId });
          return;
        }
        logger.debug('host service announced', { broker_id: info.serviceId, network: info.network, address: info.address });
        plugin.broker.announce(info);
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
  });

  let bound;
  try {
    bound = await listen(server, grpc.ServerCredentials.createSsl(
      Buffer.from(hostCertPem), [{ private_key: Buffer.from(keyPem), cert_chain: Buffer.from(certPem) }], true), env);
  } catch (e) {
    logger.error('plugin init error', { error: e.message });
    process.exitCode = 1;
    return null;
  }
  cleanup = bound.cleanup;
  process.on('exit', () => cleanup());

  // go-plugin's Go servers ignore SIGINT: a Ctrl-C in the host's terminal
  // reaches the whole process group, and the host stops its plugins itself.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => stop('SIGTERM'));
  // The host's stdin is passed through; it is never read here.

  const serverCert = der.toString('base64').replace(/=+$/, '');
  process.stdout.write(`${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|${bound.network}|${bound.address}|grpc|${serverCert}\n`);
  logger.debug('plugin address', { network: bound.network, address: bound.address });
  return { address: bound.address, stop };
}

// ------------------------------------------------------------------ testing --

// MemoryHost is an in-memory stand-in for the Host service, for a plugin's
// own unit tests: KV, locks, jobs and posts are kept in maps and lists.
class MemoryHost {
  constructor() {
    this.kv = new Map();
    this.locksHeld = new Map();
    this.jobs = [];
    this.posts = [];
  }

  async post(req) { this.posts.push(req); return { message: { ...req.target, messageId: String(this.posts.length) } }; }
  async enqueue(req) { this.jobs.push(req); return { jobId: this.jobs.length }; }
  async kvGet({ key }) { return this.kv.has(key) ? { found: true, value: this.kv.get(key) } : { found: false, value: Buffer.alloc(0) }; }
  async kvSet({ key, value }) { this.kv.set(key, Buffer.from(value)); return {}; }
  async kvDelete({ key }) { this.kv.delete(key); return {}; }
  // kvIncrement keeps a decimal counter, as the host's KVIncrement does.
  async kvIncrement({ key, delta = 0 }) {
    const before = this.kv.has(key) ? this.kv.get(key).toString('utf8') : '0';
    if (!/^-?[0-9]+$/.test(before)) throw new Error(`Host.KVIncrement: ${key} holds ${JSON.stringify(before)}, not a decimal counter`);
    const value = Number(before) + Number(delta);
    this.kv.set(key, Buffer.from(String(value)));
    return { value };
  }
  async kvList({ prefix = '' }) { return { keys: [...this.kv.keys()].filter((k) => k.startsWith(prefix)).sort() }; }
  async lock({ name, owner, reason = '' }) {
    const held = this.locksHeld.get(name);
    if (held && held.owner !== owner) return { acquired: false, holder: held };
    const holder = held || { name, owner, reason, acquiredUnix: Math.floor(Date.now() / 1000) };
    this.locksHeld.set(name, holder);
    return { acquired: true, holder };
  }
  async unlock({ name, owner, force = false }) {
    const held = this.locksHeld.get(name);
    if (!held || (held.owner !== owner && !force)) return { released: false, holder: held || null };
    this.locksHeld.delete(name);
    return { released: true, holder: held };
  }
}

// runForTest runs one call of a plugin definition in-process, without a
// host: kind is 'command', 'job', 'event' or 'interaction', request the
// call's message (for a command: { command, args, user, message }). It
// resolves to the events the call sent, Done last. host defaults to a new
// MemoryHost; settings are what Describe would give.
async function runForTest(def, kind, request, { host = new MemoryHost(), settings = {} } = {}) {
  const plugin = new PluginServer(def, { logger: new Logger({ level: 'error' }) });
  plugin.host = host;
  plugin.settings = settings;
  if (def.configure) await def.configure(settings, { settingsJson: JSON.stringify(settings), hostVersion: 'test', logger: plugin.logger });
  const events = [];
  const ac = new AbortController();
  await plugin.handleCall(kind, { requestId: 'test', args: {}, ...request }, (ev) => events.push(ev), ac.signal);
  return events;
}

module.exports = {
  serve,
  UserError,
  ShutdownError,
  Context,
  Logger,
  PluginServer,
  MemoryHost,
  runForTest,
  manifest,
  generateCertificate,
  PROTOCOL_MINOR,
  MAGIC_COOKIE_KEY,
  MAGIC_COOKIE_VALUE,
};
