import fs from 'node:fs/promises';
import path from 'node:path';
import type { ClaimedRun, RunCheckpoint, RunCheckpoints } from '../agents/run-checkpoint';
import type { RunEvent } from '../streaming/run-events';

/** What a handed-over run leaves in DATA_DIR for the next start. */
interface HandedOverFile {
  checkpoint: RunCheckpoint;
  epoch: number;
  events: RunEvent[];
}

/**
 * Durable chats for a single instance without Redis: checkpoints are kept in memory while the
 * process runs, and a run still unfinished when a drain's grace ends is written, with its events,
 * to `<DATA_DIR>/handover/<runId>.json`. The instance that starts next on the same DATA_DIR claims
 * these files and continues the runs. One process owns DATA_DIR (as it owns the embedded store),
 * so there is nobody to fence off. A crash leaves nothing to resume: its checkpoints were in memory.
 */
export class FileRunCheckpoints implements RunCheckpoints {
  private readonly latest = new Map<string, RunCheckpoint>();
  readonly readByNextStartOnly = true;

  constructor(private readonly directory: string) {}

  async save(checkpoint: RunCheckpoint): Promise<boolean> {
    this.latest.set(checkpoint.runId, checkpoint);
    return true;
  }

  async finish(runId: string): Promise<boolean> {
    this.latest.delete(runId);
    return true;
  }

  async handOver(runId: string, epoch: number, events: readonly RunEvent[]): Promise<boolean> {
    const checkpoint = this.latest.get(runId);
    if (!checkpoint) return false;
    await fs.mkdir(this.directory, { recursive: true });
    const file = this.fileOf(runId);
    // Written whole, then renamed: a start never reads half a file.
    await fs.writeFile(
      `${file}.tmp`,
      JSON.stringify({ checkpoint, epoch, events: [...events] } satisfies HandedOverFile),
    );
    await fs.rename(`${file}.tmp`, file);
    this.latest.delete(runId);
    return true;
  }

  async owners(): Promise<Map<string, string>> {
    const names = await fs.readdir(this.directory).catch(() => [] as string[]);
    return new Map(
      names.filter((name) => name.endsWith('.json')).map((name) => [name.slice(0, -'.json'.length), '']),
    );
  }

  async claim(runId: string): Promise<ClaimedRun | undefined> {
    const file = this.fileOf(runId);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
      await fs.rm(file);
    } catch {
      return undefined;
    }
    const handed = JSON.parse(text) as HandedOverFile;
    return { checkpoint: handed.checkpoint, epoch: handed.epoch + 1, events: handed.events };
  }

  private fileOf(runId: string): string {
    // Run ids are UUIDs; anything else is not a file name this class wrote.
    if (!/^[\w-]{1,128}$/.test(runId)) throw new Error(`not a run id: ${runId}`);
    return path.join(this.directory, `${runId}.json`);
  }
}
