import type { AgentName } from './agent-name';
import type { EmitEvent, RunEvent, RunEventMap, RunEventName } from '../streaming/run-events';

/** What a client already saw of the step that was in flight when its instance died. */
type Shown =
  | { kind: 'start'; agent: AgentName }
  | { kind: 'text'; agent: AgentName; text: string }
  | { kind: 'tool_call'; callId: string }
  | { kind: 'tool_result'; callId: string }
  | { kind: 'end'; agent: AgentName };

/**
 * The emit of an adopted run (durable chats). The step that was in flight when the previous owner
 * died is made again, and its first events were already shown: while the new events repeat them
 * (the same agent, the same text — a deterministic model or a response-cache hit), they are not
 * sent again, and only what is new goes out. If the new output departs from what was shown, the
 * agent starts over visibly: a second `agent_start` for the same agent (a client replaces that
 * agent's text), then the text so far, then the rest. Either way no output is shown twice.
 */
export class ReplayFilter {
  private readonly shown: Shown[];
  private index = 0;
  /** Characters of the current shown text already matched. */
  private offset = 0;
  private agent?: AgentName;
  /** The re-made step's text matched so far (re-sent after a visible restart). */
  private matchedText = '';
  private active: boolean;

  constructor(
    tail: readonly RunEvent[],
    private readonly inner: EmitEvent,
  ) {
    this.shown = shownOf(tail);
    this.active = this.shown.length > 0;
  }

  readonly emit: EmitEvent = <K extends RunEventName>(event: K, data: RunEventMap[K]): void => {
    if (!this.active || event === 'queued') {
      this.inner(event, data);
      return;
    }
    const expected = this.shown[this.index];
    if (event === 'agent_start') {
      const { agent } = data as RunEventMap['agent_start'];
      if (expected.kind === 'start' && expected.agent === agent) {
        this.matchedText = '';
        return this.advance(agent);
      }
    } else if (event === 'delta') {
      const { agent, text } = data as RunEventMap['delta'];
      if (expected.kind === 'text' && expected.agent === agent) {
        const rest = expected.text.slice(this.offset);
        if (rest.startsWith(text)) {
          this.offset += text.length;
          this.matchedText += text;
          if (this.offset >= expected.text.length) this.advance(agent);
          return;
        }
        if (text.startsWith(rest) && this.index === this.shown.length - 1) {
          // The shown text ends inside this delta: only its new part goes out.
          this.active = false;
          this.inner('delta', { agent, text: text.slice(rest.length) });
          return;
        }
      }
    } else if (event === 'tool_call' || event === 'tool_result') {
      const { callId } = data as { callId: string };
      if (expected.kind === event && expected.callId === callId) return this.advance(this.agent);
    } else if (event === 'agent_end') {
      const { agent } = data as RunEventMap['agent_end'];
      if (expected.kind === 'end' && expected.agent === agent) return this.advance(agent);
    }
    this.diverge();
    this.inner(event, data);
  };

  private advance(agent: AgentName | undefined): void {
    if (agent !== this.agent) this.matchedText = '';
    this.agent = agent;
    this.index++;
    this.offset = 0;
    if (this.index >= this.shown.length) this.active = false;
  }

  /** The new output departs from what was shown: the agent starts over, visibly. */
  private diverge(): void {
    this.active = false;
    if (!this.agent) return;
    this.inner('agent_start', { agent: this.agent });
    if (this.matchedText) this.inner('delta', { agent: this.agent, text: this.matchedText });
  }
}

/** The shown events that a re-made step repeats, consecutive deltas of one agent as one text. */
function shownOf(tail: readonly RunEvent[]): Shown[] {
  const shown: Shown[] = [];
  for (const record of tail) {
    const last = shown.at(-1);
    switch (record.event) {
      case 'agent_start':
        shown.push({ kind: 'start', agent: record.data.agent });
        break;
      case 'delta':
        if (last?.kind === 'text' && last.agent === record.data.agent) last.text += record.data.text;
        else shown.push({ kind: 'text', agent: record.data.agent, text: record.data.text });
        break;
      case 'tool_call':
      case 'tool_result':
        shown.push({ kind: record.event, callId: record.data.callId });
        break;
      case 'agent_end':
        shown.push({ kind: 'end', agent: record.data.agent });
        break;
      default:
        break;
    }
  }
  return shown;
}
