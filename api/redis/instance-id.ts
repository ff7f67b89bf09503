import { randomBytes } from 'node:crypto';
import os from 'node:os';

/**
 * This process's id in the cluster, the one format every part uses (the registry, lease and permit
 * ids, run ownership, dashboards): readable — host and pid — and never reused (a random suffix).
 */
export function newInstanceId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}
