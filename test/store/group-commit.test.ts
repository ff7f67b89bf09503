import { GroupCommit } from '../../api/store/group-commit';

/** A fake database: jobs are numbers, a negative one fails; it records every transaction. */
function harness(maxBatch?: number) {
  const transactions: number[][] = [];
  const flushes: Array<() => void> = [];
  const commits = new GroupCommit<number, string>({
    writeAll: (jobs) => {
      if (jobs.some((job) => job < 0)) throw new Error('rolled back');
      transactions.push(jobs);
      return jobs.map((job) => `stored ${job}`);
    },
    writeOne: (job) => {
      if (job < 0) throw new Error(`job ${job} failed`);
      transactions.push([job]);
      return `stored ${job}`;
    },
    defer: (flush) => flushes.push(flush),
    maxBatch,
  });
  const runDeferred = () => flushes.splice(0).forEach((flush) => flush());
  return { commits, transactions, runDeferred, flushes };
}

describe('GroupCommit', () => {
  test('the writes of one turn share one transaction, and each caller gets its own result', async () => {
    const { commits, transactions, runDeferred, flushes } = harness();
    const results = [commits.submit(1), commits.submit(2), commits.submit(3)];
    expect(flushes).toHaveLength(1); // one flush scheduled for the turn
    expect(transactions).toEqual([]); // nothing written before the turn ends
    runDeferred();
    await expect(Promise.all(results)).resolves.toEqual(['stored 1', 'stored 2', 'stored 3']);
    expect(transactions).toEqual([[1, 2, 3]]);

    const next = commits.submit(4);
    runDeferred();
    await expect(next).resolves.toBe('stored 4');
    expect(transactions).toEqual([[1, 2, 3], [4]]);
  });

  test('a write that fails rejects alone: the others of its batch are written one by one', async () => {
    const { commits, transactions, runDeferred } = harness();
    const results = [commits.submit(1), commits.submit(-2), commits.submit(3)].map((promise) =>
      promise.then(
        (value) => ({ value }),
        (error: Error) => ({ error: error.message }),
      ),
    );
    runDeferred();
    await expect(Promise.all(results)).resolves.toEqual([
      { value: 'stored 1' },
      { error: 'job -2 failed' },
      { value: 'stored 3' },
    ]);
    expect(transactions).toEqual([[1], [3]]);
  });

  test('batches are bounded; flush() writes everything pending at once', async () => {
    const { commits, transactions, flushes } = harness(2);
    const results = [1, 2, 3, 4, 5].map((job) => commits.submit(job));
    expect(commits.size).toBe(5);
    commits.flush();
    expect(commits.size).toBe(0);
    await Promise.all(results);
    expect(transactions).toEqual([[1, 2], [3, 4], [5]]);
    flushes.splice(0).forEach((flush) => flush()); // the scheduled flush finds nothing left
    expect(transactions).toHaveLength(3);
  });
});
