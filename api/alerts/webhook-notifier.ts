import type { Clock } from '../clock';
import type { Logger } from '../logger';
import type { AlertNotice, AlertSink } from './alert-evaluator';

export type WebhookFormat = 'slack' | 'feishu' | 'dingtalk' | 'json';

/**
 * Posts alert notices to an incoming webhook in the shape its service accepts:
 * - feishu (Feishu / Lark custom bot): `{msg_type: 'text', content: {text}}`
 * - dingtalk (DingTalk custom robot): `{msgtype: 'text', text: {content}}`
 * - slack (Slack incoming webhook; Mattermost and Rocket.Chat take it too): `{text}`
 * - json: `{text, alert: AlertNotice}` for a receiver of your own
 * `auto` picks by the URL's host. Each post has a timeout, and at most `maxPerHour` go out in any
 * rolling hour: the rest are dropped and logged, so an alert storm cannot get the bot banned.
 */
export class WebhookNotifier implements AlertSink {
  readonly format: WebhookFormat;
  private readonly sentAt: number[] = [];
  private dropped = 0;

  constructor(
    private readonly options: {
      url: string;
      format: WebhookFormat | 'auto';
      timeoutMs: number;
      maxPerHour: number;
      clock: Clock;
      logger?: Logger;
      fetch?: typeof fetch;
    },
  ) {
    this.format = options.format === 'auto' ? detectFormat(options.url) : options.format;
  }

  async send(notice: AlertNotice): Promise<void> {
    const now = this.options.clock.now();
    while (this.sentAt.length > 0 && this.sentAt[0] <= now - 3_600_000) this.sentAt.shift();
    if (this.sentAt.length >= this.options.maxPerHour) {
      this.dropped++;
      this.options.logger?.warn(
        { alert: notice.name, state: notice.state, dropped: this.dropped },
        `alert not posted: ALERT_WEBHOOK_MAX_PER_HOUR=${this.options.maxPerHour} reached`,
      );
      return;
    }
    this.sentAt.push(now);
    const response = await (this.options.fetch ?? fetch)(this.options.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(webhookBody(this.format, notice)),
      signal: AbortSignal.timeout(this.options.timeoutMs),
    });
    // Feishu and DingTalk answer 200 with an error code in the body for a refused message.
    const text = await response.text();
    if (!response.ok || /"(code|errcode)"\s*:\s*[1-9]/.test(text)) {
      throw new Error(`webhook answered ${response.status}: ${text.slice(0, 200)}`);
    }
  }
}

export function detectFormat(url: string): WebhookFormat {
  const host = new URL(url).hostname;
  if (/(^|\.)(feishu\.cn|larksuite\.com|larkoffice\.com)$/.test(host)) return 'feishu';
  if (/(^|\.)dingtalk\.com$/.test(host)) return 'dingtalk';
  if (/(^|\.)slack\.com$/.test(host)) return 'slack';
  return 'json';
}

/** The message people read; it always contains "Troupe" (Feishu / DingTalk keyword security). */
export function alertText(notice: AlertNotice): string {
  const state = notice.state === 'firing' ? `[FIRING ${notice.severity}]` : '[RESOLVED]';
  const when = new Date(notice.endsAt ?? notice.startsAt).toISOString();
  return `${state} ${notice.name} on Troupe ${notice.instance}\n${notice.summary}\n${when}`;
}

export function webhookBody(format: WebhookFormat, notice: AlertNotice): Record<string, unknown> {
  const text = alertText(notice);
  switch (format) {
    case 'feishu':
      return { msg_type: 'text', content: { text } };
    case 'dingtalk':
      return { msgtype: 'text', text: { content: text } };
    case 'slack':
      return { text };
    case 'json':
      return { text, alert: notice };
  }
}
