/**
 * Notices that the process did not run for a while: stopped with SIGSTOP (or Ctrl-Z), a paused VM or
 * container, a machine starved of CPU. Nothing fails during such a pause, so nothing else would tell
 * the operator why live feeds then reconnected and data arrived in a burst. A timer that should fire
 * every `everyMs` finds more than `thresholdMs` since its last turn (the monotonic clock keeps
 * counting while the process is stopped) and reports it once, as an event of the health registry.
 */
import type { HealthReporter } from '../core/health.ts';

/** A pause shorter than this is not worth a line: on a busy machine a start-up step can block for seconds. */
export const PAUSE_THRESHOLD_MS = 5_000;

export function watchPauses(
  health: Pick<HealthReporter, 'event'>,
  options: { everyMs?: number; thresholdMs?: number; now?: () => number } = {},
): () => void {
  const everyMs = options.everyMs ?? 500;
  const thresholdMs = options.thresholdMs ?? PAUSE_THRESHOLD_MS;
  const now = options.now ?? (() => performance.now());
  let last = now();
  const timer = setInterval(() => {
    const at = now();
    const gapMs = at - last - everyMs;
    last = at;
    if (gapMs < thresholdMs) return;
    health.event(
      'process',
      `the process did not run for ${(gapMs / 1000).toFixed(1)} s (stopped with SIGSTOP, a paused VM, or starved of CPU); live feeds reconnect and catch up, nothing is lost`,
      'process_paused',
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
