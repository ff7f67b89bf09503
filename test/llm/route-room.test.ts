import { ManualClock } from '../../api/clock';
import type { BreakerState } from '../../api/llm/provider-breaker';
import { ProviderRoom } from '../../api/llm/provider-room';
import { RouteRoom } from '../../api/llm/routing/route-room';

/** Two endpoints, `lite` first on the Host's route, then `pro`; breakers settable. */
function setup() {
  const clock = new ManualClock(0);
  const breakers: Record<'lite' | 'pro', BreakerState> = { lite: 'closed', pro: 'closed' };
  const lite = { room: new ProviderRoom(2, clock), breaker: () => breakers.lite };
  const pro = { room: new ProviderRoom(1, clock), breaker: () => breakers.pro };
  return { lite, pro, breakers, room: new RouteRoom([lite, pro], [lite, pro]) };
}

describe('admission over several endpoints (RouteRoom)', () => {
  test('a chat starts while an endpoint of the first route has room and no call waits anywhere', () => {
    const { lite, pro, room } = setup();
    expect(room.hasRoom()).toBe(true);
    // The Host's first endpoint is full (calls waiting there): no room, even though pro is free.
    lite.room.update(1, 0);
    expect(room.hasRoom()).toBe(false);
    lite.room.update(0, 1);
    expect(room.hasRoom()).toBe(true);
    // A later agent's endpoint has a queue: the provider side absorbs no more chats right now.
    pro.room.update(2, 0);
    expect(room.hasRoom()).toBe(false);
  });

  test('an endpoint with an open breaker neither offers room nor blocks it', () => {
    const { lite, pro, breakers, room } = setup();
    pro.room.update(3, 0);
    breakers.pro = 'open';
    expect(room.hasRoom()).toBe(true);
    lite.room.update(0, 0);
    room.chatStarted('run-1');
    room.chatStarted('run-2');
    room.chatStarted('run-3');
    expect(room.hasRoom()).toBe(false);
  });

  test('every endpoint of the first route open: the chat starts, to fail fast with its code', () => {
    const { lite, breakers, room } = setup();
    lite.room.update(5, 0);
    breakers.lite = 'open';
    breakers.pro = 'open';
    expect(room.hasRoom()).toBe(true);
  });

  test('chat starts and ends reach every room, and any room opening wakes the line', () => {
    const { lite, pro, room } = setup();
    const woken: string[] = [];
    room.onRoom(() => woken.push('line'));
    room.chatStarted('run-1');
    lite.room.update(0, 0);
    pro.room.update(0, 0);
    room.chatEnded('run-1');
    expect(woken.length).toBeGreaterThanOrEqual(2);
  });
});
