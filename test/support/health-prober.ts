/**
 * Measures a server from outside while a test attacks it: `GET /health` every 20 ms (one at a
 * time) and the server process's resident memory every 100 ms. A process of its own, so that the
 * attack's client-side work in the test process does not delay the probes it measures.
 *
 * Usage: node health-prober.ts BASE_URL SERVER_PID; writing anything to its stdin (or closing it)
 * stops it, and it prints `{latenciesMs, failures, rssBytes: {first, max}}` as one JSON line.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [baseUrl, pidText] = process.argv.slice(2);
const pid = Number(pidText);

function rssBytes(): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return match === null ? 0 : Number(match[1]) * 1024;
}

let running = true;
process.stdin.on('data', () => {
  running = false;
});
process.stdin.on('end', () => {
  running = false;
});

const latenciesMs: number[] = [];
let failures = 0;
const firstRss = rssBytes();
let maxRss = firstRss;
const rssTimer = setInterval(() => {
  maxRss = Math.max(maxRss, rssBytes());
}, 100);

while (running) {
  const start = performance.now();
  try {
    const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5_000) });
    await response.arrayBuffer();
    if (response.status !== 200) failures++;
  } catch {
    failures++;
  }
  latenciesMs.push(performance.now() - start);
  await sleep(20);
}
clearInterval(rssTimer);
maxRss = Math.max(maxRss, rssBytes());
process.stdout.write(
  `${JSON.stringify({ latenciesMs, failures, rssBytes: { first: firstRss, max: maxRss } })}\n`,
);
process.exit(0);
