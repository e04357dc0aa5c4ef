import { webcrypto } from 'node:crypto';

// @peculiar/x509 does the X.509 encoding (we never build ASN.1 by hand). It depends on
// tsyringe, which refuses to load unless a Reflect metadata API exists (normally the
// `reflect-metadata` package, which is not installed). tsyringe only stores and reads
// constructor-parameter metadata with it, so a small per-object map is all it needs.
// The library is loaded lazily: a member that uses no TLS never pays for it.

type X509Module = typeof import('@peculiar/x509');

type MetadataTarget = object;
const metadataStore = new WeakMap<MetadataTarget, Map<unknown, unknown>>();

function ownMetadata(target: MetadataTarget, create: boolean): Map<unknown, unknown> | undefined {
  let m = metadataStore.get(target);
  if (!m && create) {
    m = new Map();
    metadataStore.set(target, m);
  }
  return m;
}

/** Installs the few Reflect metadata functions tsyringe calls, unless a real polyfill is present. */
function installReflectMetadata(): void {
  const r = Reflect as unknown as Record<string, unknown>;
  if (typeof r.getMetadata === 'function') return;
  const getOwn = (key: unknown, target: MetadataTarget) => ownMetadata(target, false)?.get(key);
  const get = (key: unknown, target: MetadataTarget): unknown => {
    // Metadata is inherited along the prototype chain, as in reflect-metadata.
    for (let t: MetadataTarget | null = target; t !== null; t = Object.getPrototypeOf(t) as MetadataTarget | null) {
      const m = ownMetadata(t, false);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  const define = (key: unknown, value: unknown, target: MetadataTarget) => {
    ownMetadata(target, true)!.set(key, value);
  };
  Object.assign(r, {
    getMetadata: get,
    getOwnMetadata: getOwn,
    hasMetadata: (key: unknown, target: MetadataTarget) => get(key, target) !== undefined,
    hasOwnMetadata: (key: unknown, target: MetadataTarget) => ownMetadata(target, false)?.has(key) ?? false,
    defineMetadata: define,
    metadata: (key: unknown, value: unknown) => (target: MetadataTarget) => define(key, value, target),
  });
}

let loaded: Promise<X509Module> | undefined;

/** `@peculiar/x509`, wired to Node's WebCrypto. */
export function loadX509(): Promise<X509Module> {
  loaded ??= (async () => {
    installReflectMetadata();
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
    return x509;
  })();
  return loaded;
}
