/**
 * The health registry: every dependency (store, log, kafka, redis, postgres, disk...) reports
 * itself degraded with a cause, or ok again. A fault is logged once when it starts and once when
 * it ends; while it lasts, a changed cause is logged at most once per `repeatEveryMs`. `/ready`
 * and `/api/v1/stats` read the registry, so an operator sees every fault while it lasts.
 * No I/O here: the caller hands in where log lines go.
 */

/** A dependency's state as `/ready` and `/api/v1/stats` show it. */
export interface HealthEntry {
  dependency: string;
  status: 'ok' | 'degraded';
  /** What is wrong, for a human (present while degraded). */
  cause?: string;
  /** A stable code for the fault (e.g. `store_write_failed`), present while degraded. */
  code?: string;
  /** ms since the epoch the current state began. */
  since: number;
  /** How many times the fault was reported since it began (1 = once). */
  reports?: number;
  /**
   * While degraded: true when the fault stops the pipeline doing its job (`/ready` 503), false
   * when it only needs attention (`/ready` 200 with `status: "degraded"`).
   */
  required?: boolean;
}

/** A line for the operator's log: a fault began, is still there (rate-limited), ended, or a one-off event. */
export interface HealthEvent {
  level: 'warn' | 'info';
  dependency: string;
  kind: 'degraded' | 'still_degraded' | 'recovered' | 'event';
  message: string;
  code?: string;
}

export interface HealthRegistryOptions {
  /** Where log lines go; default nowhere. */
  log?: (event: HealthEvent) => void;
  /** Least time between two lines about one ongoing fault. Default 60 s. */
  repeatEveryMs?: number;
  now?: () => number;
}

/** Reports for one dependency: what the components that watch it call. */
export interface HealthReporter {
  /** `required` (default true): see HealthEntry.required. */
  degraded(dependency: string, cause: string, code?: string, required?: boolean): void;
  ok(dependency: string): void;
  /** A one-off event worth an operator's attention (e.g. a torn log tail repaired); logged, not a state. */
  event(dependency: string, message: string, code?: string): void;
}

/** The registry. One per process; cheap to call on every write (a report that changes nothing is a map lookup). */
export class HealthRegistry implements HealthReporter {
  readonly #entries = new Map<string, HealthEntry & { loggedAt: number }>();
  readonly #log: (event: HealthEvent) => void;
  readonly #repeatEveryMs: number;
  readonly #now: () => number;
  /** The last few one-off events, newest last (bounded). */
  readonly #events: (HealthEvent & { at: number })[] = [];

  constructor(options: HealthRegistryOptions = {}) {
    this.#log = options.log ?? (() => undefined);
    this.#repeatEveryMs = options.repeatEveryMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  degraded(dependency: string, cause: string, code?: string, required = true): void {
    const now = this.#now();
    const entry = this.#entries.get(dependency);
    if (entry === undefined || entry.status === 'ok') {
      this.#entries.set(dependency, {
        dependency,
        status: 'degraded',
        cause,
        ...(code === undefined ? {} : { code }),
        since: now,
        reports: 1,
        required,
        loggedAt: now,
      });
      this.#log({
        level: 'warn',
        dependency,
        kind: 'degraded',
        message: `${dependency} degraded: ${cause}`,
        code,
      });
      return;
    }
    entry.reports = (entry.reports ?? 0) + 1;
    entry.cause = cause;
    if (code !== undefined) entry.code = code;
    if (now - entry.loggedAt >= this.#repeatEveryMs) {
      entry.loggedAt = now;
      this.#log({
        level: 'warn',
        dependency,
        kind: 'still_degraded',
        message: `${dependency} still degraded since ${new Date(entry.since).toISOString()} (${entry.reports} reports): ${cause}`,
        code: entry.code,
      });
    }
  }

  ok(dependency: string): void {
    const entry = this.#entries.get(dependency);
    const now = this.#now();
    if (entry === undefined) {
      this.#entries.set(dependency, { dependency, status: 'ok', since: now, loggedAt: now });
      return;
    }
    if (entry.status === 'ok') return;
    this.#log({
      level: 'info',
      dependency,
      kind: 'recovered',
      message: `${dependency} ok again after ${now - entry.since} ms (${entry.reports} reports; last: ${entry.cause})`,
    });
    this.#entries.set(dependency, { dependency, status: 'ok', since: now, loggedAt: now });
  }

  event(dependency: string, message: string, code?: string): void {
    const event: HealthEvent = { level: 'warn', dependency, kind: 'event', message, code };
    this.#events.push({ ...event, at: this.#now() });
    if (this.#events.length > 20) this.#events.shift();
    this.#log(event);
  }

  /** Every dependency that reported, ascending by name. */
  entries(): HealthEntry[] {
    return [...this.#entries.values()]
      .map(({ loggedAt: _loggedAt, ...entry }) => ({ ...entry }))
      .sort((a, b) => (a.dependency < b.dependency ? -1 : a.dependency > b.dependency ? 1 : 0));
  }

  /** The dependencies degraded now. */
  degradedEntries(): HealthEntry[] {
    return this.entries().filter((entry) => entry.status === 'degraded');
  }

  /** The last one-off events (at most 20), oldest first. */
  recentEvents(): (HealthEvent & { at: number })[] {
    return this.#events.map((event) => ({ ...event }));
  }
}
