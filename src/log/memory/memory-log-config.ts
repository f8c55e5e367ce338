/** `log: {type: memory}`: a log in process memory; nothing survives a restart. */
import { z } from 'zod';

export const memoryLogSchema = z.strictObject({ type: z.literal('memory') });
