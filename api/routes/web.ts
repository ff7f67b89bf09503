import path from 'node:path';
import express, { Router } from 'express';

/**
 * The pages Troupe serves itself (no CDN: the machines that run it may have no internet):
 * `/` the chat page, `/dashboard` the live operations view, their assets under `/assets/`, and the
 * two browser libraries they use straight from node_modules under `/vendor/`.
 */
export function webRouter(): Router {
  const router = Router();
  // api/web/public beside the sources; `npm run build` copies it beside dist/api/routes as well.
  const publicDir = path.join(__dirname, '../web/public');
  const page = (file: string) => path.join(publicDir, file);
  const noStore = { 'Cache-Control': 'no-cache' };

  router.get('/', (_req, res) => res.set(noStore).sendFile(page('chat.html')));
  router.get('/dashboard', (_req, res) => res.set(noStore).sendFile(page('dashboard.html')));
  router.use('/assets', express.static(publicDir, { index: false, maxAge: '5m' }));
  router.use('/vendor/uplot', express.static(packageDist('uplot'), { index: false, maxAge: '1h' }));
  router.use(
    '/vendor/eventsource-parser',
    express.static(packageDist('eventsource-parser'), { index: false, maxAge: '1h' }),
  );
  return router;
}

/** The folder of a package's main file (both keep their browser builds in dist/). */
function packageDist(name: string): string {
  return path.dirname(require.resolve(name));
}
