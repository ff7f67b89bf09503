// PM2: `pm2 start ecosystem.config.cjs` runs Troupe as N processes (cluster mode, one port shared)
// from dist/, which `npm install` builds (run `npm run build` after changing the sources); a restart
// starts the compiled server and never compiles. Every instance must see the same REDIS_URL: run
// events, tool limits and the tool cache are shared through it; without it N instances would each
// enforce the whole quota.
module.exports = {
  apps: [
    {
      name: 'troupe',
      script: 'dist/server.js',
      // Node's flags as in package.json's start script (docs/CONFIGURATION.md, "Memory and the young generation").
      node_args: '--max-semi-space-size=8',
      exec_mode: 'cluster',
      // One per core; a number pins it.
      instances: 'max',
      // PM2 sends SIGINT, then SIGKILL after kill_timeout: above Troupe's own drain on a signal
      // (open chats end, then the HTTP server and the store close; SHUTDOWN_GRACE_MS where set).
      kill_timeout: 45000,
      // A process that crashes is restarted, backing off while it keeps crashing.
      exp_backoff_restart_delay: 200,
      max_memory_restart: '2G',
      env: {
        NODE_ENV: 'production',
        PORT: '3000',
        REDIS_URL: 'redis://127.0.0.1:6379',
        REDIS_KEY_PREFIX: 'troupe:',
      },
    },
  ],
};
