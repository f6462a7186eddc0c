// security: how `telegen run` is split into processes (docs/security.md, issue 11).
import { z } from 'zod';

export const securitySchema = z.object({
  privilege_separation: z.boolean().default(process.env.TELEGEN_PRIVILEGE_SEPARATION === '1')
    .describe('Run as a root BPF loader plus an unprivileged worker (decoders, pipeline, export, API) that gets the ring buffer fds over a Unix socket. Env: TELEGEN_PRIVILEGE_SEPARATION=1'),
  worker_user: z.union([z.string().regex(/^[a-z_][a-z0-9_-]*$/), z.number().int().min(1).max(0xfffffffe)]).default('nobody')
    .describe('User (name from /etc/passwd, or uid) the worker runs as; never 0'),
  worker_group: z.number().int().min(1).max(0xfffffffe).optional()
    .describe("Worker gid (default: the user's primary group)"),
  loader_socket: z.string().optional()
    .describe("The loader's Unix socket (default /run/telegen/loader-PID.sock): the worker's fds and attach requests"),
}).strict();

export type SecurityConfig = z.infer<typeof securitySchema>;
