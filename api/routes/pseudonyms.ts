import { createHmac, randomBytes } from 'node:crypto';

/**
 * Stable stand-ins for ids shown to callers who are not the operator: the same user or
 * conversation always maps to the same pseudonym within this process (so a watcher can still see
 * "one user holds ten calls"), but the pseudonym cannot be turned back into the id, nor checked
 * against a guess (an HMAC keyed with a per-process random secret, unlike a plain hash).
 */
export class Pseudonyms {
  private readonly key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.key = key;
  }

  of(kind: 'user' | 'conversation', id: string): string {
    const digest = createHmac('sha256', this.key).update(`${kind}\0${id}`).digest('hex');
    return `${kind === 'user' ? 'u' : 'c'}_${digest.slice(0, 12)}`;
  }
}
