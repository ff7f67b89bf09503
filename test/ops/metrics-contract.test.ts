import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { startTestTroupe, type TestTroupe } from '../helpers/test-server';

const ROOT = path.join(__dirname, '../..');
const RULES = path.join(ROOT, 'deploy/prometheus/alert-rules.yml');
const GRAFANA = path.join(ROOT, 'deploy/grafana/troupe-dashboard.json');

function promtool(): string | undefined {
  const found = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return found.status === 0 ? 'promtool' : undefined;
}

/** The metric names an expression uses: troupe_* words, histogram suffixes folded to the family. */
function metricNames(text: string): string[] {
  const names = text.match(/\btroupe_[a-z0-9_]+/g) ?? [];
  return [...new Set(names.map((name) => name.replace(/_(bucket|sum|count)$/, '')))];
}

describe('/metrics, the alert rules and the Grafana dashboard agree', () => {
  let troupe: TestTroupe;
  let scrape: string;

  beforeAll(async () => {
    // Redis runs on the CI machine; the gauge is exported (as 0 or 1) whenever REDIS_URL is set.
    troupe = await startTestTroupe({ REDIS_URL: 'redis://127.0.0.1:6379' });
    await request(troupe.url)
      .post('/api/chat')
      .set('Accept', 'application/json')
      .send({ message: 'fill the counters', mode: 'single' })
      .expect(200);
    scrape = (await request(troupe.url).get('/metrics').expect(200)).text;
  });
  afterAll(() => troupe.stop());

  test('every troupe_* series the rules and the dashboard query is exported', () => {
    const exported = new Set(
      [...scrape.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1].replace(/_total$/, '')),
    );
    const used = [
      ...metricNames(fs.readFileSync(RULES, 'utf8')),
      ...metricNames(fs.readFileSync(GRAFANA, 'utf8')),
    ];
    expect(used.length).toBeGreaterThan(10);
    const missing = used.filter((name) => !exported.has(name) && !exported.has(name.replace(/_total$/, '')));
    expect(missing).toEqual([]);
    expect(scrape).toMatch(/^troupe_chats_total\{outcome="done"\} 1$/m);
  });

  test('no gauge ends in _total (promtool rejects it)', () => {
    const gauges = [...scrape.matchAll(/^# TYPE (\S+) gauge$/gm)].map((match) => match[1]);
    expect(gauges.filter((name) => name.endsWith('_total'))).toEqual([]);
  });

  const tool = promtool();
  const withPromtool = tool ? test : test.skip;
  if (!tool) {
    process.stderr.write(
      'promtool not found: skipping `promtool check metrics/rules` (.ci/run installs it)\n',
    );
  }

  withPromtool('promtool check metrics passes on a live scrape', () => {
    const result = spawnSync(tool!, ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  withPromtool('promtool check rules passes on deploy/prometheus/alert-rules.yml', () => {
    const output = execFileSync(tool!, ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(output).toMatch(/SUCCESS: 9 rules found/);
  });

  withPromtool('promtool test rules: each alert fires on synthetic series as intended', () => {
    const output = execFileSync(tool!, ['test', 'rules', 'alert-rules.test.yml'], {
      cwd: path.dirname(RULES),
      encoding: 'utf8',
    });
    expect(output).toMatch(/SUCCESS/);
  });
});
