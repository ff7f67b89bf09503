import fs from 'node:fs';
import path from 'node:path';

/**
 * The flags Troupe's node runs with, read from `root`/package.json's start script (`exec node FLAGS
 * dist/server.js`): the one place they are written. The benchmarks and measure-store start the
 * server with them too, so they measure what `npm start` runs; the Dockerfile and the PM2 file
 * repeat them, and test/ops/dockerfile.test.ts keeps those equal.
 */
export function troupeNodeFlags(root: string): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const words = pkg.scripts.start.trim().split(/\s+/);
  const node = words.indexOf('node');
  const entry = words.indexOf('dist/server.js');
  if (node < 0 || entry < node)
    throw new Error(`package.json's start script is not "… node [flags] dist/server.js"`);
  return words.slice(node + 1, entry);
}
