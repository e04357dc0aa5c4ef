import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValueError } from '../../../src/cli/errors.js';
import { bindUrlProblem, hostUrlProblem, parseEtcdUrl, parseEtcdUrlList, splitHostPort } from '../../../src/cli/url.js';

describe('parseEtcdUrl', () => {
  it('keeps the text exactly as etcd (Go) does: explicit default ports, no trailing slash', () => {
    const u = parseEtcdUrl('http://10.0.0.1:80');
    expect(u.text).toBe('http://10.0.0.1:80');
    expect(String(u)).toBe('http://10.0.0.1:80');
    expect(JSON.stringify([u])).toBe('["http://10.0.0.1:80"]');
    expect(u.port).toBe('80');
    expect(u.portNumber).toBe(80);
    expect(u.hostname).toBe('10.0.0.1');
    expect(u.host).toBe('10.0.0.1:80');
    expect(u.secure).toBe(false);
    // The WHATWG form differs, which is why EtcdUrl exists.
    expect(u.toURL().href).toBe('http://10.0.0.1/');
  });

  it('handles https, IPv6, localhost, upper-case schemes and surrounding spaces', () => {
    expect(parseEtcdUrl('https://127.0.0.1:2379').secure).toBe(true);
    const v6 = parseEtcdUrl('http://[::1]:2379');
    expect(v6.hostname).toBe('::1');
    expect(v6.port).toBe('2379');
    expect(v6.text).toBe('http://[::1]:2379');
    expect(parseEtcdUrl('HTTP://127.0.0.1:1').text).toBe('http://127.0.0.1:1');
    expect(parseEtcdUrl('  http://localhost:2379 ').text).toBe('http://localhost:2379');
  });

  it('accepts unix sockets without a host:port check, as etcd', () => {
    const u = parseEtcdUrl('unix://localhost:12345');
    expect(u.isUnix).toBe(true);
    expect(u.socketPath).toBe('localhost:12345');
    const s = parseEtcdUrl('unixs://etcd.sock');
    expect(s.secure).toBe(true);
    expect(s.socketPath).toBe('etcd.sock');
    expect(parseEtcdUrl('unix:///var/run/etcd.sock').socketPath).toBe('/var/run/etcd.sock');
  });

  it.each([
    ['ftp://127.0.0.1:3379', 'URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:3379'],
    ['localhost:2379', 'URL scheme must be http, https, unix, or unixs: localhost:2379'],
    ['', 'URL scheme must be http, https, unix, or unixs: '],
    ['127.0.0.1:2379', 'parse "127.0.0.1:2379": first path segment in URL cannot contain colon'],
    ['http://127.0.0.1:3379/x', 'URL must not contain a path: http://127.0.0.1:3379/x'],
    ['http://127.0.0.1:3379/', 'URL must not contain a path: http://127.0.0.1:3379/'],
    ['http://127.0.0.1', 'URL address does not have the form "host:port": http://127.0.0.1'],
    ['http://::1:2379', 'URL address does not have the form "host:port": http://::1:2379'],
    ['http://127.0.0.1:abc', 'parse "http://127.0.0.1:abc": invalid port ":abc" after host'],
    ['http://127.0.0.1:99999', 'parse "http://127.0.0.1:99999": invalid port ":99999" after host'],
    ['http://a b:1', 'parse "http://a b:1": invalid character " " in host name'],
    ['http://user@127.0.0.1:1', 'URL must not contain user information: http://user@127.0.0.1:1'],
    ['http://127.0.0.1:1?x=1', 'URL must not contain a query or fragment: http://127.0.0.1:1?x=1'],
  ])('%j is rejected with etcd wording', (input, message) => {
    expect(() => parseEtcdUrl(input)).toThrow(new ValueError(message));
  });
});

describe('parseEtcdUrlList', () => {
  it('sorts by string form and drops duplicates, like etcd', () => {
    const urls = parseEtcdUrlList('http://172.16.80.20:2379,http://127.0.0.1:2379,http://127.0.0.1:2379');
    expect(urls.map(String)).toEqual(['http://127.0.0.1:2379', 'http://172.16.80.20:2379']);
  });

  it('rejects an empty element', () => {
    expect(() => parseEtcdUrlList('http://127.0.0.1:2379,,http://127.0.0.2:1')).toThrow(
      'URL scheme must be http, https, unix, or unixs: ',
    );
  });

  it('is idempotent: parsing the joined text of a parsed list gives the same list', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    const url = fc
      .tuple(fc.constantFrom('http', 'https'), octet, octet, fc.integer({ min: 1, max: 65535 }))
      .map(([s, a, b, p]) => `${s}://10.${a}.${b}.1:${p}`);
    fc.assert(
      fc.property(fc.array(url, { minLength: 1, maxLength: 6 }), (list) => {
        const once = parseEtcdUrlList(list.join(',')).map(String);
        const twice = parseEtcdUrlList(once.join(',')).map(String);
        expect(twice).toEqual(once);
        expect(new Set(once).size).toBe(once.length);
        expect([...once].sort()).toEqual(once);
      }),
      { numRuns: 200 },
    );
  });
});

describe('splitHostPort (Go net.SplitHostPort)', () => {
  it('splits and refuses like Go', () => {
    expect(splitHostPort('127.0.0.1:2379')).toEqual({ hostname: '127.0.0.1', port: '2379' });
    expect(splitHostPort('[::1]:2379')).toEqual({ hostname: '::1', port: '2379' });
    expect(splitHostPort(':2379')).toEqual({ hostname: '', port: '2379' });
    expect(splitHostPort('127.0.0.1')).toBeNull();
    expect(splitHostPort('::1:2379')).toBeNull();
    expect(splitHostPort('[::1]')).toBeNull();
  });
});

describe('listen/advertise URL checks', () => {
  it('listen URLs must be IPs or localhost', () => {
    expect(bindUrlProblem(parseEtcdUrlList('http://127.0.0.1:1,http://[::]:2,http://localhost:3,unix://x:1'))).toBeNull();
    expect(bindUrlProblem(parseEtcdUrlList('http://example.com:3379'))).toBe(
      'expected IP in URL for binding (http://example.com:3379)',
    );
  });

  it('advertise URLs need a host', () => {
    expect(hostUrlProblem(parseEtcdUrlList('http://example.com:2380'))).toBeNull();
    expect(hostUrlProblem(parseEtcdUrlList('http://:3380'))).toBe('unexpected empty host (http://:3380)');
  });
});
