import fs from 'node:fs';
import path from 'node:path';
import { troupeNodeFlags } from '../../scripts/troupe-node-flags';

/**
 * No Docker engine runs here, so the image is not built in CI; this keeps the Dockerfile's
 * promises checked: two stages, a non-root user, the liveness HEALTHCHECK, node as PID 1.
 */
const ROOT = path.join(__dirname, '../..');
const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'));

describe('Dockerfile', () => {
  test('is multi-stage and runs as a non-root user', () => {
    expect(instructions.filter((line) => /^FROM /.test(line))).toHaveLength(2);
    expect(instructions[0]).toMatch(/^FROM \S+ AS build$/);
    const runtime = instructions.slice(
      instructions.findIndex((line, index) => index > 0 && /^FROM /.test(line)),
    );
    expect(runtime.filter((line) => /^USER /.test(line))).toEqual(['USER node']);
    expect(runtime.some((line) => /^COPY --from=build .*\/app\/dist/.test(line))).toBe(true);
  });

  test('checks /api/health/live and starts node directly (exec form), so signals reach it', () => {
    expect(instructions.find((line) => line.startsWith('HEALTHCHECK'))).toMatch(/\/api\/health\/live/);
    expect(instructions.at(-1)).toBe('CMD ["node", "--max-semi-space-size=8", "dist/server.js"]');
    expect(instructions.some((line) => /^ENTRYPOINT/.test(line))).toBe(false);
  });

  test('the start command and the files it needs exist in the build', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    // `exec` so that npm's shell becomes node: a SIGTERM to `npm start` reaches the server (issue 13).
    expect(pkg.scripts.start).toBe('exec node --max-semi-space-size=8 dist/server.js');
    expect(fs.existsSync(path.join(ROOT, 'api/tools/plugins/search-corpus/corpus.json'))).toBe(true);
    const ignored = fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.env']));
  });

  test("node's flags are the same wherever Troupe is started: npm start, the image, PM2 and the benchmarks", () => {
    // package.json's start script is where they are written; the others repeat them.
    const flags = troupeNodeFlags(ROOT);
    expect(flags).toEqual(['--max-semi-space-size=8']);
    const cmd = JSON.parse(instructions.at(-1)!.replace(/^CMD /, '')) as string[];
    expect(cmd).toEqual(['node', ...flags, 'dist/server.js']);
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the PM2 file is CommonJS
    const pm2 = require(path.join(ROOT, 'ecosystem.config.cjs')) as { apps: { node_args?: string }[] };
    expect(pm2.apps.map((app) => app.node_args)).toEqual([flags.join(' ')]);
  });
});
