import fs from 'node:fs';
import path from 'node:path';
import type Redis from 'ioredis';

/**
 * Troupe's Lua scripts: every file of ./commands, defined on an ioredis client with `defineCommand`
 * (bullmq's layout: one file per operation named `<command>-<number of keys>.lua`, or
 * `<command>-n.lua` when the caller says how many keys (one call for several runs), with an
 * Input/Output header; shared pieces in ./commands/includes, pulled in by a line
 * `--- @include "includes/<name>"` so that a rule such as AIMD's recovery is written once). ioredis
 * sends EVALSHA and falls back to EVAL once per connection, so each operation costs one round trip.
 */

/** The scripts' replies as Redis returns them (arrays of integers or strings). */
export interface TroupeCommands {
  // The shared LLM quota (api/llm/redis/redis-limiter.ts).
  tryStart(...keysAndArgs: Array<string | number>): Promise<Array<number | string>>;
  release(...keysAndArgs: Array<string | number>): Promise<number>;
  renew(...keysAndArgs: Array<string | number>): Promise<number>;
  settle(...keysAndArgs: Array<string | number>): Promise<number>;
  holdStarts(...keysAndArgs: Array<string | number>): Promise<number[]>;
  rateLimited(...keysAndArgs: Array<string | number>): Promise<number[]>;
  adopt(...keysAndArgs: Array<string | number>): Promise<number>;
  // The instance registry (api/cluster/instance-registry.ts).
  heartbeat(...keysAndArgs: Array<string | number>): Promise<Array<number | string>>;
  instanceAlive(...keysAndArgs: Array<string | number>): Promise<number>;
  // Run events in Redis Streams and the shared tool limits.
  /** The number of keys first (two per run), then the keys and arguments (appendRunEvents-n.lua). */
  appendRunEvents(...keysAndArgs: Array<string | number>): Promise<number[]>;
  // Durable chats' checkpoints and ownership (api/streaming/redis/redis-run-checkpoints.ts).
  saveRunCheckpoint(...keysAndArgs: Array<string | number>): Promise<number>;
  releaseRun(...keysAndArgs: Array<string | number>): Promise<number>;
  claimRun(...keysAndArgs: Array<string | number>): Promise<[number, string] | null>;
  acquireToolPermit(...keysAndArgs: Array<string | number>): Promise<number[]>;
}

export type RedisWithCommands = Redis & TroupeCommands;

interface Script {
  name: string;
  /** Undefined for `<command>-n.lua`: the caller passes the number of keys first (ioredis's dynamic form). */
  numberOfKeys: number | undefined;
  lua: string;
}

/** The scripts sit beside the sources; tsc does not copy .lua files, so a build (dist/) reads them there. */
function commandsDirectory(): string {
  const beside = path.join(__dirname, 'commands');
  if (fs.existsSync(beside)) return beside;
  return path.resolve(__dirname, '..', '..', '..', 'api', 'redis', 'commands');
}

const INCLUDE = /^--- @include "([\w/-]+)"\s*$/gm;

/** A script with its includes in place (each at most once, as bullmq does). */
function withIncludes(directory: string, lua: string, seen = new Set<string>()): string {
  return lua.replace(INCLUDE, (_line, name: string) => {
    if (seen.has(name)) return '';
    seen.add(name);
    const included = fs.readFileSync(path.join(directory, `${name}.lua`), 'utf8');
    return withIncludes(directory, included, seen);
  });
}

let cache: Script[] | undefined;

/** Every command of ./commands, read once per process. */
export function troupeScripts(): Script[] {
  if (cache) return cache;
  const directory = commandsDirectory();
  cache = fs
    .readdirSync(directory)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => {
      const match = /^([a-z][A-Za-z]*)-(\d+|n)\.lua$/.exec(file);
      if (!match)
        throw new Error(`Lua command file ${file} must be named <command>-<number of keys | n>.lua`);
      const lua = withIncludes(directory, fs.readFileSync(path.join(directory, file), 'utf8'));
      return { name: match[1], numberOfKeys: match[2] === 'n' ? undefined : Number(match[2]), lua };
    });
  return cache;
}

const defined = new WeakSet<Redis>();

/** Defines every command on the client (idempotent) and returns it typed with them. */
export function withCommands(redis: Redis): RedisWithCommands {
  if (!defined.has(redis)) {
    for (const script of troupeScripts())
      redis.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
    defined.add(redis);
  }
  return redis as RedisWithCommands;
}
