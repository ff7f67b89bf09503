import type { ChatRecord } from './chat-client';
import { startLoad, type LoadDriver } from './load-driver';
import type { FromWorker, ToWorker } from './load-group';

/** A load generator worker process (load-group.ts forks it): runs its share and sends the records back. */

const send = (message: FromWorker) => process.send?.(message);
const cpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};
const RECORDS_PER_MESSAGE = 2000;

let driver: LoadDriver | undefined;

process.on('message', (message: ToWorker) => {
  if (message.type === 'start' && !driver) {
    const started = startLoad(message.plan);
    driver = started;
    const progress = setInterval(
      () => send({ type: 'progress', counters: started.counters, cpuSeconds: cpuSeconds() }),
      500,
    );
    void started.finished.then(() => {
      clearInterval(progress);
      send({ type: 'progress', counters: started.counters, cpuSeconds: cpuSeconds() });
      const records: ChatRecord[] = started.records;
      // In pieces: one IPC message of tens of thousands of records would stall both event loops.
      for (let index = 0; index < records.length; index += RECORDS_PER_MESSAGE) {
        send({ type: 'records', records: records.slice(index, index + RECORDS_PER_MESSAGE) });
      }
      // Disconnect only once the last message is out, or it could be lost.
      process.send?.({ type: 'done', cpuSeconds: cpuSeconds() } satisfies FromWorker, undefined, {}, () =>
        process.disconnect?.(),
      );
    });
  } else if (message.type === 'stop') {
    driver?.stopArrivals();
  } else if (message.type === 'release') {
    driver?.releaseAll();
  }
});

// The parent going away (Ctrl-C, crash) must not leave thousands of streams open.
process.on('disconnect', () => {
  driver?.releaseAll();
  setTimeout(() => process.exit(0), 2000).unref();
});

send({ type: 'ready' });
