// `npm start`'s prestart and `npm install`'s prepare: build dist/ only when it is missing or older
// than the sources, so a start (or a supervisor's restart) runs the compiled server at once instead
// of compiling TypeScript every time. Fresh means dist/server.js is newer than every file the build
// reads: the TypeScript under server.ts, api/, config/ and scripts/, the pages under api/web/public
// (copied into dist/) and the tsconfig files. tsc rewrites every output on a build, so
// dist/server.js's mtime is the time of the last successful build (noEmitOnError: a failed build
// writes nothing and stays stale).
//
//   node scripts/build-if-stale.mjs              build when stale (fails when the build fails)
//   node scripts/build-if-stale.mjs --if-possible  the same, but skip quietly where no build can run:
//                                                the Dockerfile's `npm ci` before the sources are
//                                                copied, or an install without the dev dependencies
// The package root is the working directory (npm runs scripts there).
import { spawnSync } from 'node:child_process';
import process from 'node:process';
import fs from 'node:fs';
import path from 'node:path';

const SOURCE_DIRECTORIES = ['api', 'config', 'scripts'];
const SOURCE_FILES = ['server.ts', 'tsconfig.json', 'tsconfig.build.json'];
const PUBLIC_DIRECTORY = path.join('api', 'web', 'public');
const ENTRY = path.join('dist', 'server.js');

/** The newest mtime (ms) among the files the build reads, or 0 when there are none. */
function newestSourceMtime(root) {
  let newest = 0;
  const consider = (file) => {
    const stat = fs.statSync(file, { throwIfNoEntry: false });
    if (stat && stat.mtimeMs > newest) newest = stat.mtimeMs;
  };
  for (const file of SOURCE_FILES) consider(path.join(root, file));
  const walk = (directory, everyFile) => {
    let entries;
    try {
      entries = fs.readdirSync(directory, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(directory, entry.name);
      if (entry.isDirectory()) walk(full, everyFile || full === path.join(root, PUBLIC_DIRECTORY));
      else if (everyFile || (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))) consider(full);
    }
  };
  for (const directory of SOURCE_DIRECTORIES) walk(path.join(root, directory), false);
  return newest;
}

/** Why dist/ must be built, or undefined when it is fresh. */
function staleReason(root) {
  const entry = fs.statSync(path.join(root, ENTRY), { throwIfNoEntry: false });
  if (!entry) return `${ENTRY} is missing`;
  if (newestSourceMtime(root) > entry.mtimeMs) return `the sources changed since ${ENTRY} was built`;
  return undefined;
}

function canBuild(root) {
  return (
    fs.existsSync(path.join(root, 'server.ts')) &&
    fs.existsSync(path.join(root, 'node_modules', 'typescript', 'package.json'))
  );
}

function main() {
  const root = process.cwd();
  const ifPossible = process.argv.includes('--if-possible');
  if (ifPossible && !canBuild(root)) {
    process.stdout.write('build-if-stale: no sources or no TypeScript here; not building\n');
    return;
  }
  // Several `npm start` at once (the README's three instances) must not compile into dist/ side by
  // side: one builds, the others wait for it and then find dist/ fresh.
  const lock = path.join(root, '.build-lock');
  const release = acquire(lock);
  try {
    const reason = staleReason(root);
    if (!reason) {
      process.stdout.write(`build-if-stale: ${ENTRY} is up to date\n`);
      return;
    }
    process.stdout.write(`build-if-stale: ${reason}; building (npm run build)\n`);
    const npm = process.env.npm_execpath
      ? [process.execPath, [process.env.npm_execpath, 'run', 'build']]
      : ['npm', ['run', 'build']];
    const result = spawnSync(npm[0], npm[1], { cwd: root, stdio: 'inherit' });
    if (result.error) throw result.error;
    process.exitCode = result.status ?? 1;
  } finally {
    release();
  }
}

/** Takes the lock file (waiting while another build holds it; one older than 10 min is stale). */
function acquire(lock) {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let told = false;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx'));
      return () => fs.rmSync(lock, { force: true });
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      const held = fs.statSync(lock, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > 10 * 60_000) fs.rmSync(lock, { force: true });
      else {
        if (!told) process.stdout.write('build-if-stale: another build is running; waiting for it\n');
        told = true;
        Atomics.wait(pause, 0, 0, 200);
      }
    }
  }
}

main();
