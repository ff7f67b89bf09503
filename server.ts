import { ConfigError, loadConfig } from './config';
import { startTroupe } from './api/troupe';
import { startClusterIfAsked } from './api/cluster/start-cluster';
import { applyHeapGrowth } from './api/heap-growth';

/** Entry point: load and validate the config, start Troupe, and shut down cleanly on a signal. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  applyHeapGrowth(config.heapGrowingPercent);
  // `--workers N`: this process becomes the node:cluster primary, and each worker runs the rest.
  if (startClusterIfAsked(config, process.argv.slice(2))) return;
  const troupe = await startTroupe(config);
  process.stdout.write(`Troupe is ready at ${troupe.url} (provider: ${troupe.provider.name})\n`);
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      // A second signal (Ctrl-C twice, an impatient supervisor) cuts the grace period short.
      if (stopping) {
        troupe.endGrace();
        return;
      }
      stopping = true;
      troupe.close().then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`Shutdown failed: ${String(error)}\n`);
          process.exit(1);
        },
      );
    });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`Troupe failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
