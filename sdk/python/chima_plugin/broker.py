"""go-plugin's GRPCBroker, the plugin's side, without multiplexing.

The host calls plugin.GRPCBroker/StartStream once, right after the
handshake, and keeps that stream open. For each service it serves back to
the plugin (Chima's Host service) it listens on a new socket and sends
ConnInfo{service_id, network, address} down the stream; the plugin dials
that address with TLS, presenting its own certificate and trusting only the
host's. The host's side forgets the id if the plugin does not dial it within
5 seconds (go-plugin's timeoutWait). The plugin never sends anything on the
stream: it serves nothing back through the broker. Knocks (ConnInfo.knock)
exist only with multiplexing (PLUGIN_MULTIPLEX_GRPC), which this library
does not advertise, so the host never sends them.
"""

import logging
import threading

import grpc

from ._tls import SERVER_NAME
from .pb.goplugin import grpc_broker_pb2 as broker_pb

log = logging.getLogger("chima_plugin.broker")

# How long dial waits for the host's connection info and for the TLS
# connection: go-plugin's own 5 seconds.
DIAL_TIMEOUT = 5.0


class BrokerError(Exception):
    """A broker service could not be dialled."""


class Broker:
    """Connection info the host announced, by service id, and the dialling
    of it. cert is the plugin's Certificate; host_cert_pem the host's PEM."""

    def __init__(self, cert, host_cert_pem, channel_options=()):
        self._cert, self._host_cert = cert, host_cert_pem
        self._options = list(channel_options)
        self._cond = threading.Condition()
        self._infos = {}

    def announced(self, info):
        """Records one ConnInfo from the host's stream."""
        if info.HasField("knock"):
            log.warning("ignoring a multiplexing knock from the host; this plugin did not "
                        "advertise multiplexing", extra={"kv": {"broker_id": info.service_id}})
            return
        with self._cond:
            self._infos[info.service_id] = (info.network, info.address)
            self._cond.notify_all()
        log.debug("host service announced", extra={"kv": {
            "broker_id": info.service_id, "network": info.network, "address": info.address}})

    def serve_stream(self, request_iterator, context):
        """The StartStream handler: reads ConnInfo until the host closes the
        stream, sends nothing."""
        try:
            for info in request_iterator:
                self.announced(info)
        except grpc.RpcError:
            pass  # the host closed the stream (it is stopping the plugin)
        return
        yield  # a generator: the response stream stays empty

    def target(self, service_id, timeout=DIAL_TIMEOUT):
        """The gRPC target of service_id, waiting up to timeout for the host
        to announce it."""
        with self._cond:
            if not self._cond.wait_for(lambda: service_id in self._infos, timeout):
                raise BrokerError("timeout waiting for connection info of broker id %d" % service_id)
            network, address = self._infos[service_id]
        if network == "unix":
            return "unix:" + address
        if network == "tcp":
            return address
        raise BrokerError("broker id %d: unknown network %r" % (service_id, network))

    def dial(self, service_id, timeout=DIAL_TIMEOUT):
        """Dials service_id over mutual TLS and returns the channel, once it
        is connected (the TLS handshake done)."""
        target = self.target(service_id, timeout)
        creds = grpc.ssl_channel_credentials(
            root_certificates=self._host_cert,
            private_key=self._cert.key_pem,
            certificate_chain=self._cert.cert_pem)
        options = self._options + [("grpc.ssl_target_name_override", SERVER_NAME)]
        channel = grpc.secure_channel(target, creds, options=options)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            channel.close()
            raise BrokerError("broker id %d: no TLS connection to %s within %gs"
                              % (service_id, target, timeout)) from None
        return channel
