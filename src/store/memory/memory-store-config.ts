/** `store: {type: memory}`: a store in process memory; nothing survives a restart. */
import { z } from 'zod';

export const memoryStoreSchema = z.strictObject({ type: z.literal('memory') });
