import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { ManualClock } from '../../api/clock';
import { ALERT_CONDITIONS, type AlertSample } from '../../api/alerts/alert-conditions';
import { AlertEvaluator, type AlertNotice } from '../../api/alerts/alert-evaluator';
import { WebhookNotifier, detectFormat } from '../../api/alerts/webhook-notifier';
import { startTestTroupe } from '../helpers/test-server';

/** A local incoming-webhook receiver that records every JSON body posted to it. */
async function startReceiver(options: { answer?: 'ok' | 'hang' } = {}) {
  const bodies: unknown[] = [];
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      bodies.push(JSON.parse(text));
      for (const waiter of waiters.splice(0)) waiter();
      if (options.answer === 'hang') return;
      res.setHeader('Content-Type', 'application/json');
      res.end('{"code":0,"msg":"success"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    bodies,
    /** Resolves once `count` bodies have arrived. */
    async received(count: number, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (bodies.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${bodies.length} of ${count} posts arrived`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const quiet: AlertSample = {
  rateLimited: 0,
  queueLength: 0,
  providerBreaker: 'closed',
  openToolCircuits: [],
  p95WaitMs: 0,
  chatsEnded: 0,
  chatsFailed: 0,
  chatsCancelled: 0,
  chatsRefused: 0,
};

describe('webhook alerts', () => {
  test('the format follows the host, and each shape is what that service accepts', () => {
    expect(detectFormat('https://open.feishu.cn/open-apis/bot/v2/hook/x')).toBe('feishu');
    expect(detectFormat('https://open.larksuite.com/open-apis/bot/v2/hook/x')).toBe('feishu');
    expect(detectFormat('https://oapi.dingtalk.com/robot/send?access_token=x')).toBe('dingtalk');
    expect(detectFormat('https://hooks.slack.com/services/T/B/x')).toBe('slack');
    expect(detectFormat('http://127.0.0.1:9000/alerts')).toBe('json');
  });

  test('fires after ALERT_FOR_MS, posts once, and resolves after the same hold — on the injected clock', async () => {
    const receiver = await startReceiver();
    const clock = new ManualClock();
    let sample = { ...quiet };
    const notifier = new WebhookNotifier({
      url: receiver.url,
      format: 'feishu',
      timeoutMs: 2000,
      maxPerHour: 30,
      clock,
    });
    const sent: AlertNotice[] = [];
    const evaluator = new AlertEvaluator({
      clock,
      sample: () => sample,
      sink: { send: (notice) => (sent.push(notice), notifier.send(notice)) },
      instance: 'test:1',
      intervalMs: 15_000,
      forMs: 60_000,
      waitTargetMs: 10_000,
      wallNow: () => 1_700_000_000_000 + clock.now(),
    });
    try {
      // The evaluator's own loop runs on the clock: every 15 s of advanced time is one evaluation.
      evaluator.start();
      const run = (ms: number) => clock.advance(ms);
      run(30_000);
      expect(sent).toEqual([]);

      sample = { ...sample, providerBreaker: 'open', rateLimited: 3 };
      run(45_000); // held for 30 s: still pending
      expect(sent).toEqual([]);
      run(30_000); // held for 60 s: fires, both conditions
      expect(sent.map((notice) => `${notice.state} ${notice.name}`).sort()).toEqual([
        'firing TroupeProvider429',
        'firing TroupeProviderBreakerOpen',
      ]);
      run(120_000); // still holding: nothing new
      expect(sent).toHaveLength(2);

      sample = { ...sample, providerBreaker: 'closed' };
      run(75_000);
      const resolved = sent.filter((notice) => notice.state === 'resolved');
      expect(resolved.map((notice) => notice.name)).toEqual(['TroupeProviderBreakerOpen']);
      expect(resolved[0].endsAt! - resolved[0].startsAt).toBeGreaterThanOrEqual(180_000);

      await receiver.received(3);
      const texts = receiver.bodies.map((body) => {
        expect(body).toEqual({
          msg_type: 'text',
          content: { text: expect.stringContaining('Troupe test:1') },
        });
        return (body as { content: { text: string } }).content.text;
      });
      expect(texts.some((text) => /^\[FIRING critical\] TroupeProviderBreakerOpen/.test(text))).toBe(true);
      expect(
        texts.some((text) => /^\[FIRING warning\] TroupeProvider429 .*\n.*answered 429 3 times/.test(text)),
      ).toBe(true);
      expect(texts.some((text) => /^\[RESOLVED\] TroupeProviderBreakerOpen/.test(text))).toBe(true);
    } finally {
      evaluator.stop();
      await receiver.close();
    }
  });

  test('the conditions mirror alert-rules.yml: queue growth over 0.1/s past 10 calls, errors over 1 % of chats', () => {
    const condition = (name: string) => ALERT_CONDITIONS.find((entry) => entry.name === name)!;
    const at = (ms: number, sample: Partial<AlertSample>) => ({ at: ms, sample: { ...quiet, ...sample } });
    const growing = condition('TroupeQueueGrowing');
    expect(growing.check(at(300_000, { queueLength: 60 }), at(0, { queueLength: 20 }), 0)).toMatch(
      /from 20 to 60/,
    );
    expect(growing.check(at(300_000, { queueLength: 40 }), at(0, { queueLength: 20 }), 0)).toBeUndefined();
    expect(growing.check(at(300_000, { queueLength: 9 }), at(0, { queueLength: 0 }), 0)).toBeUndefined();

    const errors = condition('TroupeErrorRateHigh');
    const start = at(0, { chatsEnded: 100, chatsFailed: 1 });
    // 200 chats ended, 2 failed → 1 %: not over.
    expect(errors.check(at(60_000, { chatsEnded: 300, chatsFailed: 3 }), start, 0)).toBeUndefined();
    // Refusals count as failures for the user; cancellations count for neither side.
    expect(
      errors.check(
        at(60_000, { chatsEnded: 300, chatsFailed: 3, chatsRefused: 2, chatsCancelled: 50 }),
        start,
        0,
      ),
    ).toMatch(/4 of 152 chats/);
    expect(condition('TroupeRedisDown').check(at(0, { redisUp: false }), at(0, {}), 0)).toMatch(/Redis/);
    expect(condition('TroupeRedisDown').check(at(0, {}), at(0, {}), 0)).toBeUndefined();
  });

  test('at most ALERT_WEBHOOK_MAX_PER_HOUR posts in a rolling hour; a hung receiver times out', async () => {
    const receiver = await startReceiver({ answer: 'hang' });
    const clock = new ManualClock();
    const warnings: string[] = [];
    const logger = { warn: (_object: unknown, message: string) => warnings.push(message) };
    const notifier = new WebhookNotifier({
      url: receiver.url,
      format: 'dingtalk',
      timeoutMs: 300,
      maxPerHour: 2,
      clock,
      logger: logger as never,
    });
    const notice: AlertNotice = {
      name: 'TroupeQueueGrowing',
      severity: 'warning',
      state: 'firing',
      summary: 'grew',
      instance: 'test:1',
      startsAt: Date.now(),
    };
    try {
      const first = notifier.send(notice);
      await expect(first).rejects.toThrow(/abort|timeout/i);
      await expect(notifier.send(notice)).rejects.toThrow(/abort|timeout/i);
      await notifier.send(notice); // the third in the hour: dropped, not posted
      expect(warnings).toEqual([expect.stringMatching(/ALERT_WEBHOOK_MAX_PER_HOUR=2/)]);
      expect(receiver.bodies).toHaveLength(2);
      expect(receiver.bodies[0]).toEqual({
        msgtype: 'text',
        text: { content: expect.stringMatching(/TroupeQueueGrowing/) },
      });
      clock.advance(3_600_001);
      await expect(notifier.send(notice)).rejects.toThrow(/abort|timeout/i);
      expect(receiver.bodies).toHaveLength(3);
    } finally {
      await receiver.close();
    }
  });

  test('a real server posts an alert when the p95 wait passes ALERT_WAIT_P95_MS', async () => {
    const receiver = await startReceiver();
    const troupe = await startTestTroupe({
      ALERT_WEBHOOK_URL: receiver.url,
      ALERT_WEBHOOK_FORMAT: 'slack',
      ALERT_EVAL_INTERVAL_MS: '100',
      ALERT_FOR_MS: '0',
      ALERT_WAIT_P95_MS: '1',
      LLM_MAX_CONCURRENT: '1',
      SIM_LATENCY_MS: '30',
      // All three start at once, so their calls wait in the LLM queue (admission would line them up).
      LLM_ADMISSION: 'off',
    });
    try {
      await Promise.all(
        [1, 2, 3].map((index) =>
          request(troupe.url)
            .post('/api/chat')
            .set('Accept', 'application/json')
            .send({ message: `queue me ${index}`, mode: 'single' }),
        ),
      );
      await receiver.received(1);
      expect(receiver.bodies[0]).toEqual({
        text: expect.stringMatching(
          /^\[FIRING warning\] TroupeWaitP95OverTarget on Troupe .*\n.*over ALERT_WAIT_P95_MS=1/,
        ),
      });
    } finally {
      await troupe.stop();
      await receiver.close();
    }
  });
});
