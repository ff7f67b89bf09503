import { TurnBudget } from '../../api/streaming/turn-budget';

describe('TurnBudget', () => {
  test('allows perTurn takes in a turn, then none until the next turn', async () => {
    const budget = new TurnBudget(2);
    expect([budget.take(), budget.take(), budget.take()]).toEqual([true, true, false]);
    await new Promise((resolve) => setImmediate(resolve));
    expect([budget.take(), budget.take(), budget.take()]).toEqual([true, true, false]);
  });
});
