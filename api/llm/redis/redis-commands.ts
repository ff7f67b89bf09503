import fs from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';

/**
 * Loads the Lua scripts of ./commands into an ioredis client with `defineCommand` (bullmq's style:
 * one file per operation, named `<command>-<number of keys>.lua`). ioredis sends EVALSHA and falls
 * back to EVAL once per connection, so each operation costs one round trip.
 */

/** The scripts' replies as Redis returns them (arrays of integers or strings). */
export interface LimiterCommands {
  tryStart(...keysAndArgs: Array<string | number>): Promise<number[]>;
  release(...keysAndArgs: Array<string | number>): Promise<number>;
  renew(...keysAndArgs: Array<string | number>): Promise<number>;
  settle(...keysAndArgs: Array<string | number>): Promise<number>;
  holdStarts(...keysAndArgs: Array<string | number>): Promise<number[]>;
  rateLimited(...keysAndArgs: Array<string | number>): Promise<number[]>;
  adopt(...keysAndArgs: Array<string | number>): Promise<number>;
  heartbeat(...keysAndArgs: Array<string | number>): Promise<Array<number | string>>;
}

export type RedisWithCommands = Redis & LimiterCommands;

/** The scripts sit beside the sources; the compiled build (dist/) reads them from there too. */
function commandsDirectory(): string {
  const beside = path.join(__dirname, 'commands');
  if (fs.existsSync(beside)) return beside;
  return path.resolve(__dirname, '..', '..', '..', '..', 'api', 'llm', 'redis', 'commands');
}

const defined = new WeakSet<Redis>();
let cache: Array<{ name: string; numberOfKeys: number; lua: string }> | undefined;

function scripts(): Array<{ name: string; numberOfKeys: number; lua: string }> {
  if (cache) return cache;
  const directory = commandsDirectory();
  cache = fs
    .readdirSync(directory)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => {
      const match = /^(.+)-(\d+)\.lua$/.exec(file);
      if (!match) throw new Error(`Lua command file ${file} must be named <command>-<keys>.lua`);
      return {
        name: match[1],
        numberOfKeys: Number(match[2]),
        lua: fs.readFileSync(path.join(directory, file), 'utf8'),
      };
    });
  return cache;
}

/** Defines every command on the client (idempotent) and returns it typed with them. */
export function withLimiterCommands(redis: Redis): RedisWithCommands {
  if (!defined.has(redis)) {
    for (const script of scripts())
      redis.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
    defined.add(redis);
  }
  return redis as RedisWithCommands;
}
