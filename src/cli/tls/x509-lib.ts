import { webcrypto } from 'node:crypto';

// @peculiar/x509 does the X.509 encoding (we never build ASN.1 by hand). Its dependency
// tsyringe needs the Reflect metadata API, provided by the `reflect-metadata` polyfill.
// The library is loaded lazily: a member that uses no TLS never pays for it.

type X509Module = typeof import('@peculiar/x509');

let loaded: Promise<X509Module> | undefined;

/** `@peculiar/x509`, wired to Node's WebCrypto. */
export function loadX509(): Promise<X509Module> {
  loaded ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
    return x509;
  })();
  return loaded;
}
