import { z } from 'zod';

export const apiSchema = z.object({
  listen: z.string().regex(/^[^:\s]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, 'must be HOST:PORT').default('127.0.0.1:9464')
    .describe('HTTP API/page address. Env: TELEGEN_API_LISTEN'),
  enabled: z.boolean().default(true),
}).strict();
