// Ad-hoc: drive an already running Troupe/Portkey with the cpu scenario's closed loop.
import { startClosedLoop } from './closed-loop';
import { troupeMultiAgent, troupeOneCall, portkeyCall } from './cpu-clients';
const [mode, url, seconds, simBase] = process.argv.slice(2);
const request =
  mode === 'single'
    ? troupeOneCall(url, 1)
    : mode === 'multi'
      ? troupeMultiAgent(url, 1, 120000)
      : portkeyCall(url, simBase, 1, mode === 'pk-stream');
const loop = startClosedLoop(50, request);
setTimeout(
  async () => {
    await loop.stop();
    console.log(JSON.stringify(loop.counters));
    process.exit(0);
  },
  Number(seconds) * 1000,
);
