import { z } from 'zod';

export const pipelineSchema = z.object({
  filter: z.object({
    exclude_processes: z.array(z.string()).default([]).describe('process.executable.name values whose spans are dropped'),
    include_pids: z.array(z.number().int()).default([]).describe('Keep only spans of these pids (empty = all)'),
    exclude_ports: z.array(z.number().int()).default([]).describe('Drop spans whose server port is listed'),
    protocols: z.array(z.string()).default([]).describe('Keep only these protocols (empty = all)'),
  }).strict().default({}),
  sampling: z.object({
    ratio: z.number().min(0).max(1).default(1).describe('Probabilistic head sampling ratio'),
    keep_errors: z.boolean().default(true).describe('Always keep spans with error status'),
    slow_ms: z.number().min(0).default(0).describe('Always keep spans slower than this (0 = off)'),
  }).strict().default({}),
  redaction: z.object({
    headers: z.array(z.string()).default(['authorization', 'cookie', 'set-cookie', 'proxy-authorization'])
      .describe('HTTP header names whose values are replaced by "REDACTED"'),
    query_params: z.array(z.string()).default(['password', 'passwd', 'token', 'access_token', 'api_key', 'apikey', 'secret', 'sig', 'signature'])
      .describe('URL query parameters whose values are replaced by "REDACTED"'),
    sql_literals: z.boolean().default(true).describe('Replace SQL string/number literals by ?'),
  }).strict().default({}),
}).strict();
export type PipelineConfig = z.infer<typeof pipelineSchema>;
