import { openSse, type SseStream } from '../helpers/sse-client';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';
import { waitUntil } from '../streaming/wait-until';

/** More waiting streams than WaitingReads' slice (50): their sockets are read in turns. */
const WAITING = 110;

const isPlace = (position: number) => (event: { event: string; data: { position?: number } }) =>
  event.event === 'queued' && event.data.position === position;

describe('waiting streams read in turns, over real HTTP', () => {
  let troupe: TestTroupe | undefined;
  const streams: SseStream[] = [];
  afterEach(async () => {
    for (const stream of streams) stream.abort();
    streams.length = 0;
    await troupe?.stop();
    troupe = undefined;
  });

  test(`with ${WAITING} waiting, each hears its place on joining and as the line moves, and gets its heartbeat`, async () => {
    troupe = await startTestTroupe({
      SSE_MAX_CONCURRENT: '1',
      SSE_QUEUE_MAX: '1000',
      SSE_TOKEN_GRACE_MS: '0',
      SSE_HEARTBEAT_MS: '300',
      // The one running chat holds its slot for the whole test; LLM admission is off (it would
      // wait for a first measured call), so that the SSE line is what is tested.
      SIM_LATENCY_MS: '60000',
      LLM_TIMEOUT: '3600000',
      CHAT_TIMEOUT_MS: '0',
      LLM_ADMISSION: 'off',
    });
    const url = `${troupe.url}/api/chat`;
    for (let index = 0; index <= WAITING; index++) {
      const stream = await openSse(url, {
        body: { message: `Question ${index} about trains`, mode: 'single' },
      });
      expect(stream.status).toBe(200);
      await stream.waitFor((event) => event.event === 'run');
      streams.push(stream);
    }
    // Its place on joining, at once, though its socket is paused from then on (rotation).
    for (let index = 1; index <= WAITING; index++) await streams[index].waitFor(isPlace(index), 2000);
    // Every waiting stream is pinged within the interval, the paused ones in their read turns.
    const pingsBefore = streams.map((stream) => stream.comments.length);
    await waitUntil(
      () => streams.every((stream, index) => stream.comments.length > pingsBefore[index]),
      3000,
    );
    // The first in line leaves: the front moves up one place and hears it.
    streams[1].abort();
    await streams[2].waitFor(isPlace(1), 5000);
    await streams[100].waitFor(isPlace(99), 5000);
  }, 60_000);
});
