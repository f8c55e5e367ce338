/** Stable codes of the errors the log implementations throw. */
export type LogErrorCode =
  | 'LOG_NOT_OPEN'
  | 'LOG_CLOSED'
  | 'LOG_BAD_ARGUMENT'
  | 'LOG_BAD_TOPIC'
  | 'LOG_CORRUPT'
  | 'LOG_WRITE_FAILED'
  /** The disk is full: nothing was written, and the same append may be retried once space returns. */
  | 'LOG_NO_SPACE';

/** An error of the log stage, with a stable `code` a caller can branch on. */
export class LogError extends Error {
  readonly code: LogErrorCode;

  constructor(code: LogErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'LogError';
    this.code = code;
  }
}

/** Throws LOG_BAD_ARGUMENT unless `partition` is an integer in [0, partitionCount). */
export function checkPartition(topic: string, partition: number, partitionCount: number): void {
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount) {
    throw new LogError(
      'LOG_BAD_ARGUMENT',
      `partition ${partition} of topic '${topic}' does not exist (it has ${partitionCount}: 0..${partitionCount - 1})`,
    );
  }
}

/** Throws LOG_BAD_ARGUMENT unless `offset` is a non-negative integer. */
export function checkOffset(name: string, offset: number): void {
  if (!Number.isInteger(offset) || offset < 0) {
    throw new LogError('LOG_BAD_ARGUMENT', `${name} must be a non-negative integer, got ${offset}`);
  }
}
