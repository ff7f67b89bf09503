/**
 * npm run sim-llm -- --port P --rpm R --concurrency C --latency-ms L --tps T
 * A standalone OpenAI-compatible provider that enforces its quota with 429 + Retry-After.
 */
import { SIM_USAGE, SimArgumentError, parseSimServerArgs } from '../api/llm/sim/sim-args';
import { SIM_SERVER_DEFAULTS, startSimServer } from '../api/llm/sim/sim-server';

async function main(): Promise<void> {
  let options;
  try {
    options = parseSimServerArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof SimArgumentError) {
      process.stderr.write(`sim-llm: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  if (options.help) {
    process.stdout.write(`${SIM_USAGE}\n`);
    return;
  }
  const settings = { ...SIM_SERVER_DEFAULTS, ...options };
  const server = await startSimServer(settings);
  process.stdout.write(
    `sim-llm listening on ${server.url} (rpm ${settings.rpm}, concurrency ${settings.concurrency}, ` +
      `latency ${settings.latencyMs} ms, ${settings.tps} tokens/s)\n` +
      (faultSummary(settings) ? `  faults: ${faultSummary(settings)}\n` : '') +
      `  LLM_PROVIDER=openai LLM_BASE_URL=${server.baseUrl} LLM_MODEL=troupe-sim\n` +
      `  stats: GET ${server.url}/sim/stats   reset: POST ${server.url}/sim/reset\n`,
  );
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function faultSummary(settings: typeof SIM_SERVER_DEFAULTS): string {
  const parts = [
    settings.failPercent > 0 && `${settings.failPercent}% 5xx`,
    settings.cutAfterChunks > 0 && `streams cut after ${settings.cutAfterChunks} chunks`,
    settings.firstByteDelayMs > 0 && `first byte after ${settings.firstByteDelayMs} ms`,
    settings.hangPercent > 0 && `${settings.hangPercent}% hang`,
    settings.storm429Percent > 0 &&
      `${settings.storm429Percent}% 429 (Retry-After ${settings.retryAfterSeconds} s)`,
  ];
  return parts.filter(Boolean).join(', ');
}

main().catch((error: unknown) => {
  process.stderr.write(`sim-llm: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
