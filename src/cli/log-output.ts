/**
 * The server's log: human-readable lines on a terminal, pino's JSON lines otherwise (or when
 * STREAMLINES_LOG_FORMAT=json asks), and HTTP requests at debug so a terminal shows what matters.
 */
import { Writable } from 'node:stream';
import { type LevelWithSilent, type Logger, pino } from 'pino';

export type LogFormat = 'json' | 'pretty';

/** `STREAMLINES_LOG_FORMAT` (json | pretty) when set, else pretty on a terminal and JSON otherwise. */
export function chooseLogFormat(
  env: NodeJS.ProcessEnv = process.env,
  isTerminal = process.stderr.isTTY === true,
): LogFormat {
  const asked = env.STREAMLINES_LOG_FORMAT?.trim().toLowerCase();
  if (asked === 'json' || asked === 'pretty') return asked;
  return isTerminal ? 'pretty' : 'json';
}

/** Fastify's two lines per request; at info they drown everything else on a terminal. */
const REQUEST_MESSAGES = new Set(['incoming request', 'request completed']);

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const LEVEL_COLOURS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
/** Fields every line has, or that the line shows in its own way. */
const SHOWN_APART = new Set([
  'level',
  'time',
  'pid',
  'hostname',
  'msg',
  'err',
  'req',
  'res',
  'reqId',
  'responseTime',
]);

/** One JSON log line as a terminal line: `12:03:04.567 INFO  message key=value ...`, the stack below. */
export function formatLogLine(line: string, colour: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof record.level === 'number' ? record.level : 30;
  const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
  const time = typeof record.time === 'number' ? new Date(record.time).toISOString().slice(11, 23) : '';
  const parts = [time, colour ? `\u001b[${LEVEL_COLOURS[level] ?? '0'}m${name}\u001b[0m` : name];
  const request = record.req as { method?: string; url?: string } | undefined;
  const response = record.res as { statusCode?: number } | undefined;
  if (request?.method !== undefined) parts.push(`${request.method} ${request.url ?? ''}`);
  if (response?.statusCode !== undefined) parts.push(String(response.statusCode));
  if (typeof record.msg === 'string') parts.push(record.msg);
  if (typeof record.responseTime === 'number') parts.push(`${record.responseTime.toFixed(1)} ms`);
  for (const [key, value] of Object.entries(record)) {
    if (SHOWN_APART.has(key) || value === undefined) continue;
    parts.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  let text = parts.filter((part) => part !== '').join(' ');
  const error = record.err as { stack?: string; message?: string } | undefined;
  if (error !== undefined) text += `\n    ${(error.stack ?? error.message ?? '').replaceAll('\n', '\n    ')}`;
  return text;
}

/** A stream pino writes JSON lines to that writes them on as terminal lines. */
export function prettyStream(out: NodeJS.WritableStream, colour: boolean): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      pending += chunk.toString();
      let newline = pending.indexOf('\n');
      let text = '';
      while (newline >= 0) {
        text += `${formatLogLine(pending.slice(0, newline), colour)}\n`;
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
      if (text === '') done();
      else out.write(text, () => done());
    },
  });
}

/** The logger of `run` and `serve`, on stderr (stdout carries the address scripts read). */
export function createServerLogger(
  level: LevelWithSilent,
  format: LogFormat = chooseLogFormat(),
  out: NodeJS.WritableStream = process.stderr,
): Logger {
  const options = {
    level,
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...args: unknown[]) => void, levelNumber: number) {
        const message = args.find((arg) => typeof arg === 'string');
        if (levelNumber === 30 && typeof message === 'string' && REQUEST_MESSAGES.has(message)) {
          if (this.isLevelEnabled('debug')) (this.debug as (...args: unknown[]) => void)(...args);
          return;
        }
        method.apply(this, args);
      },
    },
  };
  if (format === 'pretty') {
    return pino(options, prettyStream(out, (out as { isTTY?: boolean }).isTTY === true));
  }
  return out === process.stderr ? pino(options, pino.destination(2)) : pino(options, out);
}
