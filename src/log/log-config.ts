/** Config keys the logs share (each log type declares its schema beside its code). */
import { durationField, sizeField } from '../core/config-fields.ts';

/** How long processed entries are kept by default: a day of append time. */
const DEFAULT_RETENTION_MS = 86_400_000;
/** How many bytes a topic keeps by default before the oldest processed entries go: 1 GiB. */
const DEFAULT_RETENTION_BYTES = 1_073_741_824;

/** `retention`: a duration of append time, 0 for no age limit. */
export const logRetentionField = durationField.default(DEFAULT_RETENTION_MS);

/** `retentionBytes`: a size, 0 for no cap. */
export const logRetentionBytesField = sizeField.default(DEFAULT_RETENTION_BYTES);
