import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';

/**
 * One of our Lua scripts (api/redis/commands/<name>-<keys>.lua, bullmq's naming: the number is the
 * script's key count), run by its SHA and sent whole only when Redis does not know it yet (after
 * a restart, say). tsc does not copy .lua files into dist/, so a compiled build reads them from
 * the source tree beside it: the scripts ship with the repository.
 */
export class LuaScript {
  readonly lua: string;
  readonly numberOfKeys: number;
  private readonly sha: string;

  constructor(readonly name: string) {
    const match = /-(\d+)$/.exec(name);
    if (!match) throw new TypeError(`Lua script name "${name}" must end with its key count, e.g. name-2`);
    this.numberOfKeys = Number(match[1]);
    const file = `${name}.lua`;
    const candidates = [
      path.join(__dirname, 'commands', file),
      path.join(__dirname.replace(`${path.sep}dist${path.sep}`, path.sep), 'commands', file),
    ];
    const found = candidates.find((candidate) => fs.existsSync(candidate));
    if (!found) throw new Error(`Lua script ${file} not found (looked in ${candidates.join(', ')})`);
    this.lua = fs.readFileSync(found, 'utf8');
    this.sha = createHash('sha1').update(this.lua).digest('hex');
  }

  async run(client: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    if (keys.length !== this.numberOfKeys) {
      throw new TypeError(`${this.name} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    }
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}
