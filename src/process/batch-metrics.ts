/** What the process stage reports, once per committed batch (serve's metrics implement it). */
export interface BatchMetricsRecorder {
  /**
   * `ticks` are the batch's processed ticks; `processedAtMs` the wall clock after the processor
   * applied the batch, `storedAtMs` after the store committed it; `storeWriteSeconds` the commit.
   */
  recordBatch(
    ticks: readonly { receivedAt: number }[],
    processedAtMs: number,
    storedAtMs: number,
    storeWriteSeconds: number,
  ): void;
  /** One store write attempt failed (the runner rolls back and retries). */
  recordWriteError?(): void;
  /** The store refused a commit because another processor continued the partition (a handover). */
  recordCheckpointConflict?(): void;
}
