import { SingleFlight } from '../../api/tools/single-flight';

describe('SingleFlight', () => {
  test('a caller arriving after every earlier caller left starts a fresh execution', async () => {
    const flights = new SingleFlight<string>();
    const signals: AbortSignal[] = [];
    const finish: Array<(value: string) => void> = [];
    const work = (signal: AbortSignal) =>
      new Promise<string>((resolve) => {
        signals.push(signal);
        finish.push(resolve);
      });

    const leaving = new AbortController();
    const first = flights.run('k', leaving.signal, work);
    leaving.abort();
    await expect(first).rejects.toMatchObject({ code: 'cancelled' });
    expect(signals[0].aborted).toBe(true);

    const second = flights.run('k', new AbortController().signal, work);
    expect(signals).toHaveLength(2);
    expect(signals[1].aborted).toBe(false);
    finish[1]('fresh');
    await expect(second).resolves.toBe('fresh');
  });
});
