// The live dashboard: one snapshot a second from GET /api/dashboard/events (EventSource), kept
// for the last five minutes and drawn with uPlot (served from node_modules, no CDN). A snapshot
// carries the status endpoints' bodies unchanged; the HTML names the field each figure shows.
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

let previous;
function perSecond(now, before, field) {
  if (!before) return 0;
  const seconds = Math.max(0.001, (now.timestamp - before.timestamp) / 1000);
  return Math.max(0, (field(now) - field(before)) / seconds);
}

function record(snapshot) {
  const queue = snapshot.queueStatus.queue;
  const sse = snapshot.sseStatus;
  times.push(snapshot.timestamp / 1000);
  for (const agent of AGENTS) {
    column(`queue.${agent}`).push(queue.byAgent[agent].queued);
    column(`wait.${agent}`).push(queue.byAgent[agent].p95WaitTime);
  }
  column('inFlight').push(queue.activeRequests);
  column('inFlightLimit').push(queue.effective.maxConcurrency);
  column('rpm').push(queue.currentRPM);
  column('rpmLimit').push(queue.effective.maxRPM);
  column('tpmK').push(queue.tokensLastMinute / 1000);
  column('tpmLimitK').push(queue.effective.maxTPM ? queue.effective.maxTPM / 1000 : null);
  column('rate429').push(perSecond(snapshot, previous, (s) => s.queueStatus.queue.counters.rateLimited));
  column('rateRetries').push(perSecond(snapshot, previous, (s) => s.queueStatus.queue.counters.retries));
  column('rateRefused').push(
    perSecond(snapshot, previous, (s) => s.sseStatus.refused + s.sseStatus.refusedWaiting),
  );
  column('sseActive').push(sse.active);
  column('sseMax').push(sse.max);
  column('sseWaiting').push(sse.waiting);
  if (times.length > HISTORY) {
    times.shift();
    for (const values of Object.values(series)) values.shift();
  }
  for (const { plot, lines } of charts) plot.setData([times, ...lines.map((line) => column(line.key))]);
}

// The endpoint bodies the snapshot carries unchanged, by the endpoint's path (data-api).
const SOURCES = {
  '/api/queue/status': (snapshot) => snapshot.queueStatus,
  '/api/sse/status': (snapshot) => snapshot.sseStatus,
  '/api/tool-system/status': (snapshot) => snapshot.toolSystemStatus,
  '/api/dashboard/snapshot': (snapshot) => snapshot,
};

/** The value at a dotted path (`queue.cache.cacheHitRate`, `instances.length`); undefined if absent. */
function at(object, path) {
  return path.split('.').reduce((value, key) => (value == null ? undefined : value[key]), object);
}

/** The body an element's figures come from: its nearest data-api, else the snapshot itself. */
function sourceOf(element, snapshot) {
  const api = element.closest('[data-api]')?.dataset.api ?? '/api/dashboard/snapshot';
  return SOURCES[api](snapshot);
}

/** How a figure reads: null or absent → n/a (not reported), booleans → yes / no. */
function text(value) {
  if (value === undefined || value === null) return 'n/a';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function fillFields(snapshot) {
  for (const element of document.querySelectorAll('[data-field]')) {
    element.textContent = text(at(sourceOf(element, snapshot), element.dataset.field));
  }
}

function breakerTone(state) {
  return state === 'closed' ? 'ok' : state === 'open' ? 'bad' : 'warn';
}
/** Cell colours by column name, for any table. */
const TONES = { circuit: breakerTone, paused: (paused) => (paused ? 'warn' : '') };

/**
 * Every table with data-rows: one row per item at that path (an object's entries become
 * {[data-key]: name, value}), one cell per th[data-column]. A new table needs HTML only.
 */
function fillTables(snapshot) {
  for (const table of document.querySelectorAll('table[data-rows]')) {
    let rows = at(sourceOf(table, snapshot), table.dataset.rows) ?? [];
    const key = table.dataset.key;
    if (!Array.isArray(rows)) rows = Object.entries(rows).map(([name, value]) => ({ [key]: name, value }));
    const columns = [...table.querySelectorAll('th[data-column]')].map((th) => th.dataset.column);
    table.querySelector('tbody').replaceChildren(
      ...rows.map((item) => {
        const tr = document.createElement('tr');
        tr.dataset.key = String(item[key]);
        for (const name of columns) {
          const td = document.createElement('td');
          td.dataset.column = name;
          td.textContent = text(item[name]);
          const cellTone = TONES[name]?.(item[name]);
          if (cellTone) td.className = cellTone;
          tr.append(td);
        }
        return tr;
      }),
    );
  }
}

function tone(selector, value) {
  const node = document.querySelector(selector);
  node.classList.remove('ok', 'warn', 'bad');
  if (value) node.classList.add(value);
}

function render(snapshot) {
  fillFields(snapshot);
  fillTables(snapshot);
  const queue = snapshot.queueStatus.queue;
  document.querySelector('#tile-queue .paused-flag').textContent = queue.paused ? 'PAUSED · ' : '';
  tone('#tile-queue .value', queue.paused ? 'warn' : '');
  tone('#tile-breaker .value', breakerTone(queue.breaker));
  tone('#tile-429 .value', queue.counters.rateLimited > 0 ? 'warn' : '');
  tone('#wait-reasons .wait-now', queue.waitReasons.now ? 'warn' : 'ok');
  document.querySelector('#tile-instances .instances-kind').textContent =
    snapshot.instances.length === 1 ? 'single instance' : 'cluster';
  document.getElementById('updated').textContent =
    `updated ${new Date(snapshot.timestamp).toLocaleTimeString()}`;
  document.getElementById('updated').dataset.timestamp = String(snapshot.timestamp);
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
