// Target sharding by rendezvous (highest random weight) hashing: target t belongs to the replica
// i in [0, n) with the largest weight(t, i). Every replica computes the same answer from (id, n)
// alone, so no membership protocol is needed (Kubernetes keeps the replicas alive), and going
// from n to n+1 replicas moves only the targets the new replica wins: ~1/(n+1) of them.
import * as crypto from 'crypto';

/** 64-bit weight of (target, replica); sha256 so ids that differ in one character spread well. */
export function weight(targetId: string, replica: number): bigint {
  return crypto.createHash('sha256').update(targetId).update('\0').update(String(replica)).digest().readBigUInt64BE(0);
}

export function ownerOf(targetId: string, replicas: number): number {
  let best = 0;
  let bestW = -1n;
  for (let i = 0; i < replicas; i++) {
    const w = weight(targetId, i);
    if (w > bestW) { bestW = w; best = i; }
  }
  return best;
}

export function ownedBy<T extends { id: string }>(targets: T[], index: number, replicas: number): T[] {
  return targets.filter((t) => ownerOf(t.id, replicas) === index);
}

export interface ReplicaIdentity { index: number; replicas: number; source: string }

/**
 * Ordinal and count from flags, then config, then the environment the StatefulSet gives:
 * TELEGEN_REPLICA_INDEX (downward API, pod-index label) or the "-N" suffix of TELEGEN_POD_NAME
 * (or HOSTNAME, which Kubernetes sets to the pod name), and TELEGEN_REPLICAS.
 */
export function replicaIdentity(opts: { index?: number; replicas?: number }, env: NodeJS.ProcessEnv = process.env): ReplicaIdentity {
  let index = opts.index;
  let source = 'flag/config';
  const num = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s.trim()) ? Number(s.trim()) : undefined);
  if (index === undefined) { index = num(env.TELEGEN_REPLICA_INDEX); source = 'TELEGEN_REPLICA_INDEX'; }
  if (index === undefined) {
    for (const k of ['TELEGEN_POD_NAME', 'HOSTNAME'] as const) {
      const m = /-(\d+)$/.exec(env[k] ?? '');
      if (m && env.TELEGEN_REPLICAS) { index = Number(m[1]); source = `${k} suffix`; break; }
    }
  }
  const replicas = opts.replicas ?? num(env.TELEGEN_REPLICAS) ?? 1;
  if (index === undefined) { index = 0; source = 'default (single replica)'; }
  if (replicas < 1) throw Object.assign(new Error(`replica count must be at least 1 (got ${replicas})`), { userFacing: true });
  if (index >= replicas) {
    throw Object.assign(new Error(`replica index ${index} is not below the replica count ${replicas}: set TELEGEN_REPLICAS to the StatefulSet's replicas`), { userFacing: true });
  }
  return { index, replicas, source };
}
