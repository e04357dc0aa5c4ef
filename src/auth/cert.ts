import type { PeerCertificate } from 'node:tls';

// The TLS hook of client-certificate authentication: the Common Name of the certificate the
// client presented on this call's connection. With --client-cert-auth the TLS layer accepts
// only certificates it verified against --trusted-ca-file, and the auth gate then takes the
// CN as the user when a request carries no token (etcd's rule).
//
// grpc-js reports the peer certificate when the HTTP/2 session runs on a TLSSocket. If the
// client listener hands grpc-js some other socket wrapper, this is the one function to adapt.

/** The part of a grpc-js server call this hook reads (grpc-js's AuthContext). */
export interface CallWithAuthContext {
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | null;
}

export function certCommonName(call: CallWithAuthContext): string | undefined {
  let ctx: { sslPeerCertificate?: PeerCertificate } | null | undefined;
  try {
    ctx = call.getAuthContext?.();
  } catch {
    return undefined; // a call whose connection is already gone
  }
  const cn = ctx?.sslPeerCertificate?.subject?.CN as unknown;
  // Node gives an array when the subject has several CNs; etcd (Go) uses the first.
  const first = Array.isArray(cn) ? cn[0] : cn;
  return typeof first === 'string' && first !== '' ? first : undefined;
}
