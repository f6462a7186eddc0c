// Sandbox, hot-swap and redaction policy (policies/*.yaml), validated with zod. The policy decides
// what a decoder may import, how much memory and CPU it gets, what it may see, and which modules
// may be swapped in at run time.
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import YAML from 'yaml';
import { z } from 'zod';
import { VerifyPolicy, DEFAULT_VERIFY_POLICY } from './instance';
import { pipelineSchema } from '../pipeline/config';
import { formatZodError, ConfigError } from '../config';

const limitsSchema = z.object({
  max_memory_pages: z.number().int().min(1).max(65536).describe('Largest memory a decoder may declare, in 64 KiB pages'),
  fuel_per_call: z.number().int().min(1000).max(2 ** 31 - 1).describe('CPU budget per call: loop iterations + calls'),
  max_failures: z.number().int().min(1).describe('Failures within failure_window_ms that quarantine a module'),
  failure_window_ms: z.number().int().min(1000),
  max_record_bytes: z.number().int().min(256).max(16 << 20),
}).strict();

const decoderRuleSchema = z.object({
  limits: limitsSchema.partial().default({}),
  ports: z.array(z.number().int().min(1).max(65535)).optional().describe('Server ports this decoder may see (absent = any)'),
  processes: z.array(z.string()).optional().describe('Executable names whose traffic this decoder may see (absent = any)'),
  cgroups: z.array(z.string()).optional().describe('cgroup path prefixes (containers, systemd slices) whose processes this decoder may see'),
  namespaces: z.array(z.string()).optional().describe('Kubernetes namespaces whose pods this decoder may see (from discovery)'),
  enabled: z.boolean().default(true),
}).strict();

const signingKeySchema = z.object({
  name: z.string().min(1),
  public_key: z.string().optional().describe('Ed25519 public key, PEM'),
  public_key_file: z.string().optional(),
}).strict().refine((k) => !!k.public_key !== !!k.public_key_file, 'give exactly one of public_key or public_key_file');

export const policySchema = z.object({
  sandbox: z.object({
    allowed_imports: z.array(z.string().regex(/^[\w$-]+\.[\w$-]+$/, 'must be module.name')).default(DEFAULT_VERIFY_POLICY.allowedImports),
    limits: limitsSchema.default({
      max_memory_pages: DEFAULT_VERIFY_POLICY.maxMemoryPages,
      fuel_per_call: DEFAULT_VERIFY_POLICY.fuelPerCall,
      max_failures: DEFAULT_VERIFY_POLICY.maxFailures,
      failure_window_ms: DEFAULT_VERIFY_POLICY.failureWindowMs,
      max_record_bytes: DEFAULT_VERIFY_POLICY.maxRecordBytes,
    }),
  }).strict().default({}),
  hot_swap: z.object({
    enabled: z.boolean().default(true),
    require: z.enum(['none', 'sha256', 'signature', 'sha256_or_signature']).default('signature')
      .describe('What a module loaded at run time must satisfy'),
    sha256_allowlist: z.array(z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256')).default([]),
    signing_keys: z.array(signingKeySchema).default([]),
    watch_dir: z.string().optional().describe('Directory watched for NAME.wasm (+ NAME.wasm.sig) to hot-swap'),
    max_module_bytes: z.number().int().min(1024).max(64 << 20).default(16 << 20),
    drain_timeout_ms: z.number().int().min(0).default(30_000).describe('How long in-flight streams stay on the old version'),
  }).strict().default({}),
  decoders: z.record(decoderRuleSchema).default({}),
  redaction: pipelineSchema.shape.redaction.optional(),
}).strict();

export type Policy = z.infer<typeof policySchema>;

export function parsePolicy(raw: unknown, source = '(inline)'): Policy {
  const r = policySchema.safeParse(raw ?? {});
  if (!r.success) throw new ConfigError(formatZodError(r.error, `policy ${source}`).replace(/^invalid config /, 'invalid '));
  return r.data;
}

export function loadPolicy(file?: string): Policy {
  if (!file) return parsePolicy({});
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw new ConfigError(`cannot read policy ${file}: ${(e as Error).message}`); }
  let raw: unknown;
  try { raw = YAML.parse(text); } catch (e) { throw new ConfigError(`policy ${file} is not valid YAML: ${(e as Error).message}`); }
  const p = parsePolicy(raw, file);
  // Relative key files are relative to the policy file.
  for (const k of p.hot_swap.signing_keys) if (k.public_key_file && !path.isAbsolute(k.public_key_file)) k.public_key_file = path.resolve(path.dirname(file), k.public_key_file);
  return p;
}

/** The verify/limits policy for one decoder name: global limits overridden per decoder. */
export function verifyPolicyFor(p: Policy, name?: string): VerifyPolicy {
  const l = { ...p.sandbox.limits, ...(name ? p.decoders[name]?.limits : {}) };
  return {
    allowedImports: p.sandbox.allowed_imports,
    maxMemoryPages: l.max_memory_pages,
    fuelPerCall: l.fuel_per_call,
    maxFailures: l.max_failures,
    failureWindowMs: l.failure_window_ms,
    maxRecordBytes: l.max_record_bytes,
  };
}

export class PolicyRefusal extends Error {
  constructor(message: string) { super(message); this.name = 'PolicyRefusal'; }
}

export function sha256Hex(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

function publicKeys(p: Policy): Array<{ name: string; key: crypto.KeyObject }> {
  return p.hot_swap.signing_keys.map((k) => {
    const pem = k.public_key ?? fs.readFileSync(k.public_key_file!, 'utf8');
    const key = crypto.createPublicKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new ConfigError(`signing key ${k.name} is ${key.asymmetricKeyType}, not ed25519`);
    return { name: k.name, key };
  });
}

/**
 * Decides whether a module may be swapped in at run time. `signature` is base64 Ed25519 over the
 * exact module bytes. Returns the name of the key that signed it, or 'sha256-allowlist'.
 */
export function checkHotSwap(p: Policy, bytes: Uint8Array, signature?: string): string {
  if (!p.hot_swap.enabled) throw new PolicyRefusal('hot-swap is disabled by policy');
  if (bytes.length > p.hot_swap.max_module_bytes) throw new PolicyRefusal(`module of ${bytes.length} bytes exceeds the policy limit of ${p.hot_swap.max_module_bytes}`);
  const req = p.hot_swap.require;
  if (req === 'none') return 'no-requirement';
  const digest = sha256Hex(bytes);
  if ((req === 'sha256' || req === 'sha256_or_signature') && p.hot_swap.sha256_allowlist.includes(digest)) return 'sha256-allowlist';
  if (req === 'sha256') throw new PolicyRefusal(`module sha256 ${digest} is not in the policy allowlist`);
  if (!signature) throw new PolicyRefusal(`module is not signed (policy requires an Ed25519 signature${req === 'sha256_or_signature' ? ' or an allowlisted sha256' : ''}; sha256 ${digest})`);
  let sig: Buffer;
  try { sig = Buffer.from(signature.trim(), 'base64'); } catch { throw new PolicyRefusal('signature is not base64'); }
  if (sig.length !== 64) throw new PolicyRefusal(`signature is ${sig.length} bytes, an Ed25519 signature has 64`);
  const keys = publicKeys(p);
  if (!keys.length) throw new PolicyRefusal('policy requires signatures but configures no signing_keys');
  for (const k of keys) if (crypto.verify(null, bytes, k.key, sig)) return k.name;
  throw new PolicyRefusal(`signature does not verify with any configured key (${keys.map((k) => k.name).join(', ')}): wrong key or the module was modified`);
}

export function signModule(bytes: Uint8Array, privateKeyPem: string): string {
  const key = crypto.createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519') throw new ConfigError(`signing key is ${key.asymmetricKeyType}, not ed25519`);
  return crypto.sign(null, bytes, key).toString('base64');
}
