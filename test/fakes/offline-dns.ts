/**
 * Preloaded into a CLI under test (`NODE_OPTIONS=--import=…/offline-dns.ts`): names under `.invalid` (RFC 6761:
 * they never resolve) fail exactly as getaddrinfo fails them, without asking a DNS server, since tests may only
 * talk to 127.0.0.1. Every other name resolves as usual.
 */
import dns from 'node:dns';

const systemLookup = dns.lookup;

function offlineLookup(hostname: string, ...rest: unknown[]): void {
  if (!hostname.endsWith('.invalid')) {
    (systemLookup as (...args: unknown[]) => void).call(dns, hostname, ...rest);
    return;
  }
  const callback = rest.at(-1) as (error: NodeJS.ErrnoException) => void;
  const error: NodeJS.ErrnoException = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
    code: 'ENOTFOUND',
    errno: -3008,
    syscall: 'getaddrinfo',
    hostname,
  });
  process.nextTick(() => callback(error));
}

(dns as { lookup: unknown }).lookup = offlineLookup;
