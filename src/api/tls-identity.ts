import type net from 'node:net';
import tls from 'node:tls';
import { commonNameOf } from './tls-config.js';

// Who is calling, by TLS client certificate (etcd: with --client-cert-auth, the CN of a
// verified client certificate is the user when no token is sent).
//
// grpc-js hands a handler only `getPeer()` (the session socket's "address:port") and
// `getAuthContext()` (the peer certificate, when the session's socket is a TLSSocket). Our
// listener terminates TLS itself and injects the decrypted connection into grpc-js, and
// sometimes wraps it (the :authority shim), in which case grpc-js sees no TLSSocket at all.
// So the listener registers every admitted TLS connection here under the same
// "address:port" string grpc-js reports, and a call is matched back to its connection.
//
// The match must never name the wrong user: connections are registered only while open,
// only verified certificates count, plain connections are registered too (as "no CN"), and
// if two live connections share a remote address and port (possible only with several
// listeners) and disagree on the CN, no CN is returned.

/** Open, admitted TLS connections by the remote "address:port" grpc-js's getPeer() reports. */
const liveByPeer = new Map<string, Set<net.Socket>>();

/** grpc-js's getPeer() format for a socket: `address:port` (an IPv6 address is not bracketed). */
export function peerKey(remoteAddress: string | undefined, remotePort: number | undefined): string | undefined {
  if (!remoteAddress) return undefined;
  return remotePort ? `${remoteAddress}:${remotePort}` : remoteAddress;
}

/**
 * Called by the client listener for every connection handed to gRPC (admitted TLS ones and
 * plain ones); forgets it when it closes.
 */
export function trackConnection(socket: net.Socket): void {
  const key = peerKey(socket.remoteAddress, socket.remotePort);
  if (key === undefined) return;
  let set = liveByPeer.get(key);
  if (!set) {
    set = new Set();
    liveByPeer.set(key, set);
  }
  set.add(socket);
  socket.once('close', () => {
    const s = liveByPeer.get(key);
    if (!s) return;
    s.delete(socket);
    if (s.size === 0) liveByPeer.delete(key);
  });
}

/** The parts of a grpc-js server call this module reads (ServerUnaryCall, ServerDuplexStream, ...). */
export interface CallIdentitySource {
  getPeer(): string;
  getAuthContext?(): { sslPeerCertificate?: tls.PeerCertificate };
}

function verifiedCertificate(socket: net.Socket): tls.PeerCertificate | undefined {
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized || socket.destroyed) return undefined;
  const cert = socket.getPeerCertificate();
  return cert && cert.raw !== undefined && cert.raw.length > 0 ? cert : undefined;
}

/**
 * The CN of the verified client certificate of the connection `call` came in on, or
 * undefined (plain connection, no certificate, or not determinable without doubt).
 */
export function certCommonName(call: CallIdentitySource): string | undefined {
  const sockets = liveByPeer.get(call.getPeer());
  if (!sockets) return undefined;
  // When grpc-js got the TLSSocket itself, its certificate pins down the connection.
  const direct = call.getAuthContext?.().sslPeerCertificate;
  const directCert = direct && direct.raw !== undefined && direct.raw.length > 0 ? direct : undefined;
  // Every candidate connection must agree; a connection without a verified certificate
  // counts as "no CN", so it can never be mistaken for one with a certificate.
  const names = new Set<string | undefined>();
  for (const s of sockets) {
    const cert = verifiedCertificate(s);
    if (directCert && cert?.fingerprint256 !== directCert.fingerprint256) continue;
    names.add(cert ? commonNameOf(cert) : undefined);
  }
  if (names.size !== 1) return undefined;
  const [cn] = names;
  return cn === '' ? undefined : cn;
}

/** Number of tracked connections (for tests and diagnostics). */
export function trackedTlsConnections(): number {
  let n = 0;
  for (const s of liveByPeer.values()) n += s.size;
  return n;
}
