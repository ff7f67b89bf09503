import type { AgentResult } from './base-agent';

/** What the journal asks of the durable-run machinery around one run. */
export interface StepJournalHooks {
  /**
   * Before a new step: resolves true when the run was handed over to another instance here (a
   * draining instance stops at the agent boundary); the orchestrator then stops at once.
   */
  handOverHere(): Promise<boolean>;
  /** After each step: checkpoints the steps so far; false = another instance owns the run now. */
  checkpoint(steps: AgentResult[]): Promise<boolean>;
}

/** Thrown out of a step to stop the orchestration of a run handed over (or fenced off): no terminal event. */
export class RunHandedOver extends Error {
  constructor() {
    super('The run continues on another instance');
    this.name = 'RunHandedOver';
  }
}

/**
 * The agent steps of one durable run, in the order the orchestrator asks for them. Steps a
 * previous owner completed are answered from its checkpoint (their events are already in the run's
 * stream); each new step is checkpointed when it completes. The orchestrator's choices depend only
 * on the steps' outputs, so the same order of steps comes out again on the adopting instance.
 */
export class StepJournal {
  private cursor = 0;
  private readonly steps: AgentResult[];

  constructor(
    completed: readonly AgentResult[],
    private readonly hooks?: StepJournalHooks,
  ) {
    this.steps = [...completed];
  }

  /** Steps of a previous owner are still ahead: no speculative work (it would be thrown away). */
  get replaying(): boolean {
    return this.cursor < this.steps.length;
  }

  /** The next step: the recorded result, or `run`'s, checkpointed. Throws RunHandedOver to stop. */
  async step(run: () => Promise<AgentResult>): Promise<AgentResult> {
    if (this.cursor < this.steps.length) return this.steps[this.cursor++];
    if (this.hooks && (await this.hooks.handOverHere())) throw new RunHandedOver();
    const result = await run();
    this.steps.push(result);
    this.cursor++;
    if (this.hooks && !(await this.hooks.checkpoint([...this.steps]))) throw new RunHandedOver();
    return result;
  }
}
