import { troupeScripts } from '../../api/redis/redis-commands';

/** The one commands folder: bullmq's names, headers, and includes put in place by the one loader. */
describe('the Lua commands', () => {
  const scripts = troupeScripts();

  test('every file is <command>-<number of keys | n>.lua with an Input/Output header', () => {
    expect(scripts.map((script) => script.name).sort()).toEqual(
      expect.arrayContaining([
        'tryStart',
        'release',
        'renew',
        'heartbeat',
        'instanceAlive',
        'appendRunEvents',
      ]),
    );
    for (const script of scripts) {
      expect(script.lua).toMatch(/Input:/);
      expect(script.lua).toMatch(/Output:/);
      // A fixed number of keys, or (undefined) the caller's: only the run log's batch, two per run.
      if (script.numberOfKeys === undefined) expect(script.name).toBe('appendRunEvents');
      else expect(script.numberOfKeys).toBeGreaterThan(0);
    }
  });

  test('includes are put in place: the AIMD recovery rule is written once and used by both scripts that read the limits', () => {
    for (const script of scripts) expect(script.lua).not.toMatch(/@include/);
    const users = scripts.filter((script) => /aimdRecovery\(/.test(script.lua));
    expect(users.map((script) => script.name).sort()).toEqual(['rateLimited', 'tryStart']);
    for (const script of users) expect(script.lua.match(/local function aimdRecovery/g)).toHaveLength(1);
  });
});
