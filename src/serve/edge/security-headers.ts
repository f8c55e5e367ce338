/**
 * Security headers (@fastify/helmet) and the Host check. The Content-Security-Policy lets the
 * dashboard and `/docs` load only this server's own scripts, styles, images and connections, plus
 * the dashboard's inline theme script by its hash; frame-ancestors 'none' keeps both out of frames.
 * The Host check stops DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1
 * would otherwise read the open API of a server on localhost.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import helmet from '@fastify/helmet';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import type { LimitCounters } from './limit-counters.ts';

/** Probes answer any Host: a scraper reaches them by a service name no one thought to allow. */
const HOST_EXEMPT_PATHS: ReadonlySet<string> = new Set(['/health', '/ready', '/metrics']);

/** The `'sha256-...'` sources of the inline scripts of the dashboard's index.html (none when unbuilt). */
export function inlineScriptHashes(webRoot: string): string[] {
  let html: string;
  try {
    html = readFileSync(join(webRoot, 'index.html'), 'utf8');
  } catch {
    return [];
  }
  const hashes: string[] = [];
  for (const match of html.matchAll(/<script>([\s\S]*?)<\/script>/g)) {
    hashes.push(`'sha256-${createHash('sha256').update(match[1]!).digest('base64')}'`);
  }
  return hashes;
}

/** Registers helmet with the dashboard's policy. */
export async function registerSecurityHeaders(app: FastifyInstance, webRoot: string): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", ...inlineScriptHashes(webRoot)],
        // Svelte and Swagger UI set style attributes; styles cannot run code.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        fontSrc: ["'self'", 'data:'],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        // Plain http on localhost is the default; upgrading would break it.
        upgradeInsecureRequests: null,
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
  });
}

/** The host name of a Host header: without port, without the brackets of an IPv6 literal, lower-cased. */
export function hostName(header: string): string {
  const host = header.trim().toLowerCase();
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']') === -1 ? undefined : host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/**
 * Whether the server answers to `name`: localhost names and IP addresses always (a rebinding
 * attack needs a name of its own), `allowed` names exactly, `.example.com` for any subdomain.
 */
export function isAllowedHost(name: string, allowed: '*' | readonly string[]): boolean {
  if (allowed === '*') return true;
  if (name === 'localhost' || name.endsWith('.localhost') || isIP(name) !== 0) return true;
  for (const entry of allowed) {
    const rule = entry.toLowerCase();
    if (rule.startsWith('.') ? name.endsWith(rule) || name === rule.slice(1) : name === rule) return true;
  }
  return false;
}

/** An onRequest hook refusing requests whose Host the server does not answer to (403 host_not_allowed). */
export function checkHost(
  allowed: '*' | readonly string[],
  counters: LimitCounters,
): (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => void {
  return (request, _reply, done) => {
    if (allowed === '*') return done();
    const path = request.url.split('?')[0]!;
    const name = hostName(request.headers.host ?? '');
    if (HOST_EXEMPT_PATHS.has(path) || isAllowedHost(name, allowed)) return done();
    counters.count('allowedHosts');
    done(
      new ApiError(
        'host_not_allowed',
        `this server does not answer to host ${JSON.stringify(name.slice(0, 100))}; add it to server.allowedHosts`,
      ),
    );
  };
}
