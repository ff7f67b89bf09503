// The live dashboard: one snapshot a second from GET /api/dashboard/events (EventSource), kept
// for the last five minutes and drawn with uPlot (served from node_modules, no CDN).
import uPlot from '/vendor/uplot/uPlot.esm.js';

const HISTORY = 300;
const AGENTS = ['host', 'planner', 'critic', 'reporter'];
const COLORS = { host: '#3157d5', planner: '#2f9e8f', critic: '#c2410c', reporter: '#7c3aed' };
const LIMIT = '#9aa1b1';

const times = [];
const series = {};
function column(name) {
  return (series[name] ??= []);
}

function chart(id, lines) {
  const target = document.getElementById(id);
  const options = {
    width: Math.max(300, target.clientWidth),
    height: 180,
    legend: { live: false },
    scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{}, { size: 50 }],
    series: [
      {},
      ...lines.map((line) => ({
        label: line.label,
        stroke: line.color,
        width: 2,
        dash: line.dash,
        points: { show: false },
      })),
    ],
  };
  const plot = new uPlot(options, [[], ...lines.map(() => [])], target);
  return { plot, lines };
}

const charts = [
  chart(
    'chart-queue',
    AGENTS.map((agent) => ({ key: `queue.${agent}`, label: agent, color: COLORS[agent] })),
  ),
  chart('chart-in-flight', [
    { key: 'inFlight', label: 'in flight', color: '#3157d5' },
    { key: 'inFlightLimit', label: 'limit', color: LIMIT, dash: [6, 4] },
  ]),
  chart('chart-rate', [
    { key: 'rpm', label: 'RPM', color: '#3157d5' },
    { key: 'rpmLimit', label: 'RPM limit', color: LIMIT, dash: [6, 4] },
    { key: 'tpmK', label: 'TPM ÷ 1000', color: '#2f9e8f' },
    { key: 'tpmLimitK', label: 'TPM limit ÷ 1000', color: '#8fd3c9', dash: [6, 4] },
  ]),
  chart(
    'chart-wait',
    AGENTS.map((agent) => ({ key: `wait.${agent}`, label: agent, color: COLORS[agent] })),
  ),
  chart('chart-errors', [
    { key: 'rate429', label: '429s', color: '#c53030' },
    { key: 'rateRetries', label: 'retries', color: '#b7791f' },
    { key: 'rateRefused', label: 'refusals', color: '#7c3aed' },
  ]),
  chart('chart-sse', [
    { key: 'sseActive', label: 'streaming', color: '#3157d5' },
    { key: 'sseMax', label: 'slots', color: LIMIT, dash: [6, 4] },
    { key: 'sseWaiting', label: 'waiting', color: '#c2410c' },
  ]),
];

function tile(id, value, sub = '', tone = '') {
  const node = document.getElementById(id);
  const valueNode = node.querySelector('.value');
  valueNode.textContent = value;
  valueNode.className = `value ${tone}`;
  node.querySelector('.sub').textContent = sub;
}

let previous;
function perSecond(now, before, field) {
  if (!before) return 0;
  const seconds = Math.max(0.001, (now.timestamp - before.timestamp) / 1000);
  return Math.max(0, (field(now) - field(before)) / seconds);
}

function record(snapshot) {
  times.push(snapshot.timestamp / 1000);
  for (const agent of AGENTS) {
    column(`queue.${agent}`).push(snapshot.queue.byAgent[agent]);
    column(`wait.${agent}`).push(snapshot.waitP95Ms.byAgent[agent]);
  }
  column('inFlight').push(snapshot.inFlight.active);
  column('inFlightLimit').push(snapshot.inFlight.limit);
  column('rpm').push(snapshot.rpm.current);
  column('rpmLimit').push(snapshot.rpm.limit);
  column('tpmK').push(snapshot.tpm.current / 1000);
  column('tpmLimitK').push(snapshot.tpm.limit ? snapshot.tpm.limit / 1000 : null);
  column('rate429').push(perSecond(snapshot, previous, (s) => s.provider.rateLimited));
  column('rateRetries').push(perSecond(snapshot, previous, (s) => s.provider.retries));
  column('rateRefused').push(perSecond(snapshot, previous, (s) => s.admission.refused + s.sse.refused));
  column('sseActive').push(snapshot.sse.active);
  column('sseMax').push(snapshot.sse.max);
  column('sseWaiting').push(snapshot.sse.waiting);
  if (times.length > HISTORY) {
    times.shift();
    for (const values of Object.values(series)) values.shift();
  }
  for (const { plot, lines } of charts) plot.setData([times, ...lines.map((line) => column(line.key))]);
}

function breakerTone(state) {
  return state === 'closed' ? 'ok' : state === 'open' ? 'bad' : 'warn';
}

function render(snapshot) {
  const byAgent = AGENTS.map((agent) => `${agent[0].toUpperCase()} ${snapshot.queue.byAgent[agent]}`).join(
    ' · ',
  );
  // Everything waiting: chats in the line (not started: admission waits for room at the provider)
  // and calls of running chats in the LLM queue.
  tile(
    'tile-queue',
    String(snapshot.queue.length + snapshot.sse.waiting),
    `${snapshot.queue.paused ? 'PAUSED · ' : ''}${snapshot.sse.waiting} chats to start · ` +
      `${snapshot.queue.length} calls: ${byAgent}`,
    snapshot.queue.paused ? 'warn' : '',
  );
  tile(
    'tile-in-flight',
    `${snapshot.inFlight.active} / ${snapshot.inFlight.limit}`,
    `configured ${snapshot.inFlight.configured}`,
  );
  tile(
    'tile-rpm',
    `${snapshot.rpm.current} / ${snapshot.rpm.limit}`,
    `configured ${snapshot.rpm.configured}`,
  );
  tile(
    'tile-tpm',
    snapshot.tpm.limit ? `${snapshot.tpm.current} / ${snapshot.tpm.limit}` : String(snapshot.tpm.current),
    snapshot.tpm.limit ? '' : 'no TPM limit set',
  );
  tile(
    'tile-wait',
    `${snapshot.waitP95Ms.overall} ms`,
    AGENTS.map((agent) => `${agent[0].toUpperCase()} ${snapshot.waitP95Ms.byAgent[agent]}`).join(' · '),
  );
  tile(
    'tile-breaker',
    snapshot.provider.breaker,
    `${snapshot.provider.breakerRejections} calls refused while open`,
    breakerTone(snapshot.provider.breaker),
  );
  tile(
    'tile-429',
    String(snapshot.provider.rateLimited),
    'since start',
    snapshot.provider.rateLimited > 0 ? 'warn' : '',
  );
  tile('tile-retries', String(snapshot.provider.retries), 'since start');
  tile(
    'tile-refused',
    String(snapshot.admission.refused),
    `+ ${snapshot.sse.refused} refused by the SSE line`,
  );
  tile('tile-sse', `${snapshot.sse.active} / ${snapshot.sse.max}`, `${snapshot.sse.waiting} waiting`);
  tile(
    'tile-cache',
    snapshot.cache ? snapshot.cache.hitRate : 'n/a',
    snapshot.cache ? '' : 'no LLM cache reports yet',
  );
  tile(
    'tile-instances',
    String(snapshot.instances.length),
    snapshot.instances.length === 1 ? 'single instance' : 'cluster',
  );

  const tools = document.querySelector('#tools tbody');
  tools.replaceChildren(
    ...snapshot.tools.map((tool) =>
      row(
        [tool.name, tool.status, tool.circuit, tool.cacheHitRate, tool.errorRate],
        [null, null, breakerTone(tool.circuit)],
      ),
    ),
  );
  const endpoints = document.querySelector('#endpoints tbody');
  endpoints.replaceChildren(
    ...(snapshot.endpoints ?? []).map((endpoint) =>
      row(
        [
          endpoint.name,
          endpoint.model,
          endpoint.breaker,
          endpoint.queued,
          `${endpoint.inFlight} / ${endpoint.maxConcurrency}`,
          `${endpoint.rpm} / ${endpoint.maxRPM}`,
          endpoint.rateLimited,
          `${endpoint.fallbacksLeft} / ${endpoint.fallbacksServed}`,
        ],
        [
          null,
          null,
          breakerTone(endpoint.breaker),
          null,
          null,
          null,
          endpoint.rateLimited > 0 ? 'warn' : null,
        ],
      ),
    ),
  );
  const instances = document.querySelector('#instances tbody');
  instances.replaceChildren(
    ...snapshot.instances.map((instance) =>
      row([
        instance.id,
        instance.status,
        instance.queueLength,
        instance.inFlight,
        instance.sseActive,
        `${instance.uptimeSeconds} s`,
      ]),
    ),
  );
  document.getElementById('updated').textContent =
    `updated ${new Date(snapshot.timestamp).toLocaleTimeString()}`;
  document.getElementById('updated').dataset.timestamp = String(snapshot.timestamp);
}

function row(cells, tones = []) {
  const tr = document.createElement('tr');
  cells.forEach((cell, index) => {
    const td = document.createElement('td');
    td.textContent = String(cell);
    if (tones[index]) td.className = tones[index];
    tr.append(td);
  });
  return tr;
}

const connection = document.getElementById('connection');
const events = new EventSource('/api/dashboard/events');
events.addEventListener('open', () => {
  connection.textContent = '● live';
  connection.className = 'ok';
});
events.addEventListener('error', () => {
  connection.textContent = '● reconnecting…';
  connection.className = 'warn';
});
events.addEventListener('snapshot', (event) => {
  const snapshot = JSON.parse(event.data);
  record(snapshot);
  render(snapshot);
  previous = snapshot;
});

// Pause / resume / clear: the existing admin endpoints, with the token asked once per tab.
const adminResult = document.getElementById('admin-result');
async function admin(method, path, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return;
  let token = sessionStorage.getItem('troupe.adminToken');
  if (!token) {
    token = window.prompt('Admin token (ADMIN_TOKEN)');
    if (!token) return;
  }
  const response = await fetch(path, { method, headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    sessionStorage.setItem('troupe.adminToken', token);
    adminResult.className = 'ok';
    adminResult.textContent = `${method} ${path}: ${body.status}${body.cleared !== undefined ? `, ${body.cleared} calls cleared` : ''}`;
  } else {
    if (response.status === 401) sessionStorage.removeItem('troupe.adminToken');
    adminResult.className = 'bad';
    adminResult.textContent = `${method} ${path}: ${body.error?.code ?? response.status} — ${body.error?.message ?? ''}`;
  }
}
document.getElementById('pause').addEventListener('click', () => admin('POST', '/api/queue/pause'));
document.getElementById('resume').addEventListener('click', () => admin('POST', '/api/queue/resume'));
document
  .getElementById('clear')
  .addEventListener('click', () =>
    admin('DELETE', '/api/queue/clear', 'Clear the queue? Every queued call ends with queue_cleared.'),
  );
window.addEventListener('resize', () => {
  for (const { plot } of charts)
    plot.setSize({ width: plot.root.parentElement.clientWidth - 2, height: 180 });
});
