import { ManualClock, flushMicrotasks } from '../../api/clock';
import type { AppError } from '../../api/errors';
import { ChatAdmission } from '../../api/llm/admission';
import { LineMeter } from '../../api/llm/line-meter';
import { ProviderRoom } from '../../api/llm/provider-room';
import { RunLedger } from '../../api/llm/run-ledger';
import { Run } from '../../api/streaming/run';
import { SseLimiter } from '../../api/streaming/sse-limiter';

/**
 * Start late before it is too late: a waiting chat is not kept waiting for room at the provider
 * until it can no longer finish — once the line's next check would find it unable to finish even
 * as a late chat, it and the chats ahead of it start late, room or not.
 */
function measured() {
  const clock = new ManualClock(0);
  const ledger = new RunLedger({ clock, maxAgeMs: 600_000 });
  const meter = new LineMeter({ clock, maxAgeMs: 600_000 });
  const room = new ProviderRoom(10, clock);
  const admission = new ChatAdmission({
    maxRunning: 100,
    chatTimeoutMs: 60_000,
    enabled: true,
    room,
    meter,
    ledger,
  });
  // Twenty chats measured: each ran 10 s, 8 s of it blocked in the queue (2 s of service, 4 calls).
  for (let index = 0; index < 20; index++) {
    const runId = `chat-${index}`;
    admission.started(runId, false);
    ledger.callQueued(runId);
    clock.advance(8_000);
    for (let call = 0; call < 4; call++) ledger.callStarted(runId, 'default', true);
    for (let call = 0; call < 4; call++) ledger.callEnded(runId);
    clock.advance(2_000);
    admission.ended(runId, true);
  }
  // Then the line moved fast: starts 100 ms apart while calls waited. A late chat behind k late
  // chats needs 2 s + 4 calls × (100 ms + k × 100 ms) = 2.4 s + 0.4 s × k.
  ledger.chatStarted('busy');
  for (let call = 0; call < 300; call++) {
    clock.advance(100);
    ledger.callStarted('busy', 'default', true);
  }
  ledger.chatEnded('busy');
  return { clock, ledger, room, admission };
}

describe('admission: late starts that are due', () => {
  test('the chats that would lose their last chance by the next check are due, as many as can finish', () => {
    const { clock, admission } = measured();
    const now = clock.now();
    // 3 s left each: the first needs 2.4 s, the second (behind it) 2.8 s, the third 3.2 s — too long.
    expect(admission.lateStartsDue([now + 3_000, now + 3_000, now + 3_000], 0, now, 1_000)).toBe(2);
    // With 10 s left none is due yet: each can still wait a check and start late then.
    expect(admission.lateStartsDue([now + 10_000, now + 10_000], 0, now, 1_000)).toBe(0);
    // A chat with time to spare ahead of one whose chance runs out: both start (in line order).
    expect(admission.lateStartsDue([now + 10_000, now + 3_000], 0, now, 1_000)).toBe(2);
    // SSE_MAX_CONCURRENT still bounds them: 99 running leave one slot.
    expect(admission.lateStartsDue([now + 3_000, now + 3_000], 99, now, 1_000)).toBe(1);
    // A chat without a deadline is never due, nor anyone behind it.
    expect(admission.lateStartsDue([undefined, now + 3_000], 0, now, 1_000)).toBe(0);
  });

  test('the calls every running chat may still make count ahead', () => {
    const { clock, ledger, admission } = measured();
    const now = clock.now();
    ledger.chatStarted('late', now + 30_000);
    // One late chat ahead: the first now needs 2.8 s, the second 3.2 s.
    expect(admission.lateStartsDue([now + 3_000, now + 3_000], 0, now, 1_000)).toBe(1);
    // A running chat that is not late, one call made of a typical four: three calls × 100 ms more.
    ledger.chatStarted('steady', undefined, now + 30_000);
    ledger.callStarted('steady', 'default', false);
    expect(admission.lateStartsDue([now + 3_000], 0, now, 1_000)).toBe(0);
    expect(admission.lateStartsDue([now + 3_200], 0, now, 1_000)).toBe(1);
  });

  test('nothing is due on a cold server or with admission off', () => {
    const clock = new ManualClock(0);
    const ledger = new RunLedger({ clock, maxAgeMs: 600_000 });
    const cold = new ChatAdmission({
      maxRunning: 100,
      chatTimeoutMs: 60_000,
      enabled: true,
      room: new ProviderRoom(10, clock),
      meter: new LineMeter({ clock, maxAgeMs: 600_000 }),
      ledger,
    });
    expect(cold.lateStartsDue([1_000, 2_000], 0, 0, 1_000)).toBe(0);
    const { clock: measuredClock, ledger: measuredLedger, room } = measured();
    const off = new ChatAdmission({
      maxRunning: 100,
      chatTimeoutMs: 60_000,
      enabled: false,
      room,
      meter: new LineMeter({ clock: measuredClock, maxAgeMs: 600_000 }),
      ledger: measuredLedger,
    });
    const now = measuredClock.now();
    expect(off.lateStartsDue([now + 3_000], 0, now, 1_000)).toBe(0);
  });
});

describe('the chat line starts due chats late, room or not', () => {
  function makeRun() {
    const run = new Run('c', 'u', 100);
    run.emit('run', { runId: run.id, conversationId: run.conversationId });
    run.signal.addEventListener('abort', () =>
      run.emit('error', (run.signal.reason as AppError).toBody().error),
    );
    return { run, start: jest.fn(async () => undefined) };
  }

  test('with no room at the provider, the chats whose chance runs out start late; one with time to spare waits', async () => {
    const { clock, ledger, room, admission } = measured();
    // Calls wait at the provider: no room for a new chat.
    room.update(5, 0);
    const line = new SseLimiter({
      clock,
      admission,
      maxConcurrent: 100,
      queueMax: 100,
      tokenGraceMs: 5_000,
      resumeGraceMs: 5_000,
    });
    const now = clock.now();
    const chats = [now + 4_200, now + 4_200, now + 4_200, now + 30_000].map((deadline) => {
      const chat = makeRun();
      line.admit(chat.run, chat.start, deadline);
      return chat;
    });
    expect(line.stats()).toMatchObject({ active: 0, waiting: 4 });
    // The check a second later: 3.2 s left. Late, the three need 2.4, 2.8 and 3.2 s: each fits
    // now and none would a second later. The fourth, 29 s left, can still wait for room.
    clock.advance(1_000);
    await flushMicrotasks();
    for (const chat of chats.slice(0, 3)) expect(chat.start).toHaveBeenCalled();
    expect(ledger.lateRunning()).toBe(3);
    expect(chats[3].start).not.toHaveBeenCalled();
    expect(line.stats()).toMatchObject({ active: 3, waiting: 1 });
    line.close();
  });
});
