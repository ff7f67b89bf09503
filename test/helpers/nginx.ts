/** The nginx the deploy tests run: the benchmark's own helper (one implementation for both). */
export {
  findNginx,
  freePort,
  nginxConfig,
  startNginx,
  type RunningNginx,
} from '../../scripts/bench/nginx-process';
