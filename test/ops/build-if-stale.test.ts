import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * `npm start`'s prestart (and `npm install`'s prepare) build dist/ only when it is missing or older
 * than the sources. Run against a scratch package whose `build` script only leaves a mark, so the
 * test sees whether a build ran without compiling anything.
 */
const SCRIPT = path.join(__dirname, '../../scripts/build-if-stale.mjs');

function scratchPackage(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-build-if-stale-'));
  const build =
    "require('fs').mkdirSync('dist',{recursive:true});require('fs').writeFileSync('dist/server.js','');require('fs').writeFileSync('built','')";
  fs.writeFileSync(
    path.join(root, 'package.json'),
    JSON.stringify({ name: 'scratch', private: true, scripts: { build: `node -e "${build}"` } }),
  );
  fs.mkdirSync(path.join(root, 'api/web/public'), { recursive: true });
  fs.writeFileSync(path.join(root, 'server.ts'), '');
  fs.writeFileSync(path.join(root, 'api/app.ts'), '');
  fs.writeFileSync(path.join(root, 'api/web/public/index.html'), '');
  return root;
}

/** Sets a file's mtime `secondsAgo` in the past (no waiting on the clock). */
function age(file: string, secondsAgo: number): void {
  const when = new Date(Date.now() - secondsAgo * 1000);
  fs.utimesSync(file, when, when);
}

function runCheck(
  root: string,
  ...args: string[]
): { built: boolean; output: string; status: number | null } {
  fs.rmSync(path.join(root, 'built'), { force: true });
  const result = spawnSync(process.execPath, [SCRIPT, ...args], { cwd: root, encoding: 'utf8' });
  return {
    built: fs.existsSync(path.join(root, 'built')),
    output: result.stdout + result.stderr,
    status: result.status,
  };
}

describe('scripts/build-if-stale.mjs', () => {
  let root: string;
  beforeEach(() => {
    root = scratchPackage();
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test('builds when dist/server.js is missing', () => {
    const result = runCheck(root);
    expect(result).toMatchObject({ built: true, status: 0 });
    expect(result.output).toContain('dist/server.js is missing');
  });

  test('skips the build when dist is newer than every source', () => {
    fs.mkdirSync(path.join(root, 'dist'));
    fs.writeFileSync(path.join(root, 'dist/server.js'), '');
    for (const file of ['server.ts', 'api/app.ts', 'api/web/public/index.html'])
      age(path.join(root, file), 60);
    const result = runCheck(root);
    expect(result).toMatchObject({ built: false, status: 0 });
    expect(result.output).toContain('up to date');
  });

  test('builds again when a TypeScript source or a page changed after the build', () => {
    fs.mkdirSync(path.join(root, 'dist'));
    fs.writeFileSync(path.join(root, 'dist/server.js'), '');
    age(path.join(root, 'dist/server.js'), 60);
    for (const file of ['server.ts', 'api/app.ts', 'api/web/public/index.html'])
      age(path.join(root, file), 120);
    age(path.join(root, 'api/web/public/index.html'), 0);
    expect(runCheck(root)).toMatchObject({ built: true, status: 0 });
  });

  test('two starts at once build once: the second waits for the first and finds dist fresh', async () => {
    const build =
      "require('fs').appendFileSync('builds','x');setTimeout(()=>{require('fs').mkdirSync('dist',{recursive:true});require('fs').writeFileSync('dist/server.js','')},300)";
    fs.writeFileSync(
      path.join(root, 'package.json'),
      JSON.stringify({ name: 'scratch', private: true, scripts: { build: `node -e "${build}"` } }),
    );
    for (const file of ['server.ts', 'api/app.ts', 'api/web/public/index.html'])
      age(path.join(root, file), 60);
    const run = () =>
      new Promise<number | null>((resolve) =>
        spawn(process.execPath, [SCRIPT], { cwd: root, stdio: 'ignore' }).once('exit', resolve),
      );
    expect(await Promise.all([run(), run()])).toEqual([0, 0]);
    expect(fs.readFileSync(path.join(root, 'builds'), 'utf8')).toBe('x');
    expect(fs.existsSync(path.join(root, '.build-lock'))).toBe(false);
  });

  test('--if-possible skips quietly where nothing can be built (no TypeScript installed)', () => {
    const result = runCheck(root, '--if-possible');
    expect(result).toMatchObject({ built: false, status: 0 });
    expect(result.output).toContain('not building');
  });
});
