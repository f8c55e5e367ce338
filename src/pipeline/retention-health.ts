/**
 * Store retention failing (docs/operations.md, Faults) as a health fault: `retention` degraded with
 * code `retention_failed` from the first failed step until a step succeeds. Not required: reads and
 * writes go on, and the next steps catch up. Logged once at each end, not once per step.
 */
import type { HealthReporter } from '../core/health.ts';

/** The `onError` and `onSuccess` of a StoreRetention, reporting to `health`. */
export function retentionHealth(health: HealthReporter): {
  onError: (error: unknown) => void;
  onSuccess: () => void;
} {
  return {
    onError: (error) =>
      health.degraded(
        'retention',
        `deleting expired rows failed (retried): ${error instanceof Error ? error.message : String(error)}`,
        'retention_failed',
        false,
      ),
    // Any step that did not fail ends the fault, whether or not it had rows to delete.
    onSuccess: () => health.ok('retention'),
  };
}
