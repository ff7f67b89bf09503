import type Redis from 'ioredis';
import { ManualClock, systemClock } from '../../api/clock';
import { AdmissionNews } from '../../api/cluster/admission-news';
import type { ServiceSample } from '../../api/llm/line-meter';
import { duplicateForSubscribing } from '../../api/redis/redis-connection';
import { connectRedis, randomPrefix, waitFor } from '../llm/redis-helpers';

/**
 * Two instances' admission news over the real Redis, each on its own connections: late chats and
 * completed chats' service told by one are heard by the other, never by itself.
 */
describe('AdmissionNews', () => {
  const clients: Redis[] = [];
  const news: AdmissionNews[] = [];
  let prefix: string;

  beforeEach(() => {
    prefix = randomPrefix();
  });

  afterEach(() => {
    for (const one of news.splice(0)) one.stop();
    for (const client of clients.splice(0)) client.disconnect();
  });

  async function instance(id: string, clock = systemClock) {
    const publisher = await connectRedis();
    const subscriber = duplicateForSubscribing(publisher);
    clients.push(publisher, subscriber);
    const served: ServiceSample[] = [];
    const one = new AdmissionNews({
      publisher,
      subscriber,
      keyPrefix: prefix,
      instanceId: id,
      clock,
      onServedElsewhere: (sample) => served.push(sample),
    });
    await one.start();
    news.push(one);
    return { news: one, served };
  }

  test("one instance's late chats count at the others until they end or pass their deadline", async () => {
    const clock = new ManualClock(systemClock.now());
    const a = await instance('a', clock);
    const b = await instance('b', clock);
    a.news.lateStarted('run-1', clock.now() + 10_000);
    a.news.lateStarted('run-2', clock.now() + 20_000);
    await waitFor(() => b.news.lateElsewhere().length === 2);
    expect(a.news.lateElsewhere()).toEqual([]);
    a.news.lateEnded('run-1');
    await waitFor(() => b.news.lateElsewhere().length === 1);
    // run-2's instance said nothing more (killed, or the message was lost): its deadline ends it.
    clock.advance(20_000);
    expect(b.news.lateElsewhere()).toEqual([]);
    // News of a late chat already past its deadline is not kept.
    a.news.lateStarted('run-3', clock.now() - 1);
    a.news.lateStarted('run-4', clock.now() + 5_000);
    await waitFor(() => b.news.lateElsewhere().length === 1);
  });

  test('the calls a late chat elsewhere has started: when it went late, and one per call since', async () => {
    const clock = new ManualClock(systemClock.now());
    const a = await instance('a', clock);
    const b = await instance('b', clock);
    // It fell behind after two calls, then started two more.
    a.news.lateStarted('run-1', clock.now() + 10_000, 2);
    a.news.lateCalled('run-1');
    a.news.lateCalled('run-1');
    await waitFor(() => b.news.lateElsewhere()[0] === 4);
    expect(b.news.lateElsewhere()).toEqual([4]);
  });

  test("a completed chat's service time and calls reach the other instances", async () => {
    const a = await instance('a');
    const b = await instance('b');
    a.news.served({ serviceMs: 1_250, calls: 6 });
    await waitFor(() => b.served.length === 1);
    expect(b.served).toEqual([{ serviceMs: 1_250, calls: 6 }]);
    // Nobody hears itself; malformed news is ignored.
    await clients[0].publish(
      `${prefix}llm:admission`,
      JSON.stringify({ from: 'x', served: { serviceMs: -1, calls: 2 } }),
    );
    await clients[0].publish(`${prefix}llm:admission`, 'not json');
    b.news.served({ serviceMs: 900, calls: 5 });
    await waitFor(() => a.served.length === 1);
    expect(a.served).toEqual([{ serviceMs: 900, calls: 5 }]);
    expect(b.served).toHaveLength(1);
  });
});
