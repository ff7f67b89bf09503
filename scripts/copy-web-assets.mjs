// `npm run build` step: tsc compiles only TypeScript, so the pages under api/web/public are copied
// beside the compiled routes (dist/api/web/public), where api/routes/web.ts looks for them.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
fs.cpSync(path.join(root, 'api/web/public'), path.join(root, 'dist/api/web/public'), { recursive: true });
