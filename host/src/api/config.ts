import { z } from 'zod';

export const apiSchema = z.object({
  // The port is checked here: 127.0.0.1:99999 passed and failed only after every tracer attached.
  listen: z.string().regex(/^[^:\s]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/, 'must be HOST:PORT')
    .refine((v) => { const m = /:(\d+)$/.exec(v); return !m || (Number(m[1]) >= 1 && Number(m[1]) <= 65535); }, 'the port must be 1-65535')
    .default('127.0.0.1:9464')
    .describe('HTTP API/page address. Env: TELEGEN_API_LISTEN'),
  enabled: z.boolean().default(true),
  token_file: z.string().optional()
    .describe('File holding the bearer token for mutating endpoints (and all endpoints off loopback). Absent: a random token is written to DATA_DIR/api-token (0600). Env: TELEGEN_API_TOKEN_FILE'),
  tls: z.object({
    cert_file: z.string().describe('PEM certificate (chain) served by the API'),
    key_file: z.string().describe('PEM private key of cert_file'),
  }).strict().optional().describe('Serve the API over HTTPS (recommended whenever listen is not loopback)'),
}).strict();
