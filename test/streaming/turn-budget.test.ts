import { systemClock } from '../../api/clock';
import { TurnBudget } from '../../api/streaming/turn-budget';

describe('TurnBudget', () => {
  test('allows perTurn takes in a turn, then none until the next turn', async () => {
    const budget = new TurnBudget(2, systemClock);
    expect([budget.take(), budget.take(), budget.take()]).toEqual([true, true, false]);
    await new Promise((resolve) => setImmediate(resolve));
    expect([budget.take(), budget.take(), budget.take()]).toEqual([true, true, false]);
  });

  test('the next turn is the clock’s: a clock that defers elsewhere decides when the count starts again', () => {
    const deferred: Array<() => void> = [];
    const budget = new TurnBudget(1, { defer: (callback) => deferred.push(callback) });
    expect([budget.take(), budget.take()]).toEqual([true, false]);
    expect(deferred).toHaveLength(1);
    deferred.shift()!();
    expect(budget.take()).toBe(true);
  });
});
