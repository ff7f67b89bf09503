// The chat page: POST /api/chat as an SSE stream read with fetch (EventSource cannot POST), parsed
// by eventsource-parser, with one card per agent turn so each agent's part stays visible.
import { createParser } from '/vendor/eventsource-parser/index.js';

const form = document.getElementById('chat-form');
const messageInput = document.getElementById('message');
const modeSelect = document.getElementById('mode');
const apiKeyInput = document.getElementById('api-key');
const sendButton = document.getElementById('send');
const stopButton = document.getElementById('stop');
const statusLine = document.getElementById('status');
const turns = document.getElementById('turns');

let conversationId = sessionStorage.getItem('troupe.conversationId') ?? undefined;
let controller;
apiKeyInput.value = sessionStorage.getItem('troupe.apiKey') ?? '';

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(text, tone = 'muted') {
  statusLine.textContent = text;
  statusLine.className = tone;
}

/** One chat turn: the question, then a card per agent turn, then the outcome. */
function startTurn(question) {
  const turn = element('article', 'turn');
  turn.append(element('p', 'question', question));
  const agents = element('div', 'agents');
  turn.append(agents);
  turns.prepend(turn);
  const current = new Map();
  return {
    agentStart(agent) {
      // The same agent starting again while its card is open: the instance that continued the
      // chat made its step over (docs/DURABLE-CHATS.md); its text replaces what was shown.
      const open = current.get(agent);
      if (open?.card.classList.contains('streaming')) {
        open.text.textContent = '';
        return;
      }
      const card = element('div', 'card agent streaming');
      card.dataset.agent = agent;
      const heading = element('h3', '', agent);
      const meta = element('span', 'meta', 'working…');
      heading.append(meta);
      const text = element('p', 'agent-text');
      card.append(heading, text);
      agents.append(card);
      current.set(agent, { card, text, meta });
    },
    /** A thinking model's reasoning: folded in its own <details>, above the agent's answer. */
    reasoning(agent, chunk) {
      if (!current.has(agent)) this.agentStart(agent);
      const entry = current.get(agent);
      if (!entry.reasoning) {
        const details = element('details', 'reasoning');
        details.append(element('summary', '', 'reasoning'));
        entry.reasoning = element('p', 'reasoning-text');
        details.append(entry.reasoning);
        entry.card.insertBefore(details, entry.text);
      }
      entry.reasoning.textContent += chunk;
    },
    delta(agent, chunk) {
      if (!current.has(agent)) this.agentStart(agent);
      current.get(agent).text.textContent += chunk;
    },
    tool(agent, line) {
      const entry = current.get(agent);
      (entry ? entry.card : agents).append(element('p', 'tool', line));
    },
    agentEnd(data) {
      const entry = current.get(data.agent);
      if (!entry) return;
      entry.card.classList.remove('streaming');
      const tokens = data.usage.promptTokens + data.usage.completionTokens;
      entry.meta.textContent = `waited ${data.waitMs} ms · worked ${data.processMs} ms · ${tokens} tokens`;
    },
    done(data) {
      const line = element(
        'p',
        'done ok',
        `done in ${(data.timings.totalMs / 1000).toFixed(1)} s (queue wait ${data.timings.queueWaitMs} ms)`,
      );
      line.dataset.testid = 'done';
      turn.append(line);
    },
    error(data) {
      for (const entry of current.values()) entry.card.classList.remove('streaming');
      const retry = data.retryAfterMs ? ` — retry in ${Math.ceil(data.retryAfterMs / 1000)} s` : '';
      turn.append(element('p', 'error', `${data.code}: ${data.message}${retry}`));
    },
  };
}

/** Where the stream stands: enough to reconnect to the run after a dropped connection. */
function streamState() {
  return { runId: undefined, lastEventId: undefined, ended: false };
}

function handle(view, event, state) {
  const data = JSON.parse(event.data);
  if (event.id) state.lastEventId = event.id;
  if (event.event === 'done' || event.event === 'error') state.ended = true;
  switch (event.event) {
    case 'run':
      state.runId = data.runId;
      conversationId = data.conversationId;
      sessionStorage.setItem('troupe.conversationId', conversationId);
      setStatus('Streaming…');
      break;
    case 'queued':
      setStatus(
        data.estimatedWaitMs === null
          ? `Waiting to start: position ${data.position}`
          : `Waiting to start: position ${data.position}, about ${Math.ceil(data.estimatedWaitMs / 1000)} s`,
        'warn',
      );
      break;
    case 'agent_start':
      setStatus(`${data.agent} is working…`);
      view.agentStart(data.agent);
      break;
    case 'delta':
      view.delta(data.agent, data.text);
      break;
    case 'reasoning':
      view.reasoning(data.agent, data.text);
      break;
    case 'tool_call':
      view.tool(data.agent, `🔎 ${data.tool}(${JSON.stringify(data.args)})`);
      break;
    case 'tool_result':
      break;
    case 'agent_end':
      view.agentEnd(data);
      break;
    case 'done':
      view.done(data);
      setStatus('done', 'ok');
      break;
    case 'error':
      view.error(data);
      setStatus(`error: ${data.code}`, 'bad');
      break;
  }
}

async function send(message) {
  const view = startTurn(message);
  controller = new AbortController();
  sendButton.disabled = true;
  stopButton.disabled = false;
  setStatus('Sending…');
  const headers = { 'Content-Type': 'application/json', Accept: 'text/event-stream' };
  const apiKey = apiKeyInput.value.trim();
  sessionStorage.setItem('troupe.apiKey', apiKey);
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  try {
    const response = await fetch('/api/chat', {
      method: 'POST',
      headers,
      body: JSON.stringify({
        message,
        mode: modeSelect.value,
        ...(conversationId ? { conversationId } : {}),
      }),
      signal: controller.signal,
    });
    if (!response.ok || !response.body) {
      // Refusals come before any stream: JSON {error:{code,message}} with Retry-After.
      const body = await response
        .json()
        .catch(() => ({ error: { code: 'http_' + response.status, message: response.statusText } }));
      const retry = response.headers.get('Retry-After');
      view.error({ ...body.error, retryAfterMs: retry ? Number(retry) * 1000 : undefined });
      setStatus(`error: ${body.error.code}`, 'bad');
      return;
    }
    const state = streamState();
    try {
      await readEvents(response, view, state);
    } catch (error) {
      if (error.name === 'AbortError' || !state.runId) throw error;
    }
    // The stream dropped before the chat ended (a restart, a network blip): follow the same run
    // again with Last-Event-ID, on whichever instance answers.
    if (!state.ended && state.runId) await reconnect(view, state, headers);
  } catch (error) {
    if (error.name === 'AbortError') {
      view.error({ code: 'cancelled', message: 'You stopped this chat' });
      setStatus('stopped', 'warn');
    } else {
      view.error({ code: 'network', message: String(error.message ?? error) });
      setStatus('error: network', 'bad');
    }
  } finally {
    sendButton.disabled = false;
    stopButton.disabled = true;
  }
}

async function readEvents(response, view, state) {
  const parser = createParser({ onEvent: (event) => handle(view, event, state) });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.feed(value);
  }
}

/** Reconnects to the run until it ends: a few tries, a little longer apart each time. */
async function reconnect(view, state, headers) {
  for (let attempt = 1; attempt <= 8 && !state.ended; attempt++) {
    setStatus('reconnecting…', 'warn');
    await new Promise((resolve) => window.setTimeout(resolve, Math.min(500 * attempt, 3000)));
    try {
      const response = await fetch(`/api/runs/${encodeURIComponent(state.runId)}/events`, {
        headers: { ...headers, ...(state.lastEventId ? { 'Last-Event-ID': state.lastEventId } : {}) },
        signal: controller.signal,
      });
      // 204: the run has nothing more to send (it ended and everything was read).
      if (response.status === 204) return;
      if (!response.ok || !response.body) continue;
      setStatus('Streaming…');
      await readEvents(response, view, state);
    } catch (error) {
      if (error.name === 'AbortError') throw error;
    }
  }
  if (!state.ended) {
    view.error({ code: 'network', message: 'The connection was lost and could not be resumed' });
    setStatus('error: network', 'bad');
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const message = messageInput.value.trim();
  if (!message) return;
  messageInput.value = '';
  void send(message);
});
// Enter sends and Shift+Enter adds a line, as chat apps do; Enter that confirms an input method's
// composition (Chinese, Japanese…) is the IME's, not a send.
messageInput.addEventListener('keydown', (event) => {
  if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
  event.preventDefault();
  if (!sendButton.disabled) form.requestSubmit();
});
stopButton.addEventListener('click', () => controller?.abort());
document.getElementById('new-conversation').addEventListener('click', () => {
  conversationId = undefined;
  sessionStorage.removeItem('troupe.conversationId');
  turns.replaceChildren();
  setStatus('New conversation.');
});
