import { criticInput, parseVerdict } from '../../api/agents/critic';
import { hostInput } from '../../api/agents/host';
import { plannerInput } from '../../api/agents/planner';
import {
  ASSISTANT_PROMPT,
  CRITIC_PROMPT,
  HOST_PROMPT,
  PLANNER_PROMPT,
  REPORTER_PROMPT,
} from '../../api/agents/prompts';
import { reporterInput } from '../../api/agents/reporter';
import type { ChatMessage, CompletionRequest, ToolDefinition } from '../../api/llm/provider';
import { estimatePromptTokens, estimateTokens } from '../../api/llm/provider';
import {
  countPlanSteps,
  deriveSearchQuery,
  detectLanguage,
  detectRole,
  simulateCompletion,
  splitIntoChunks,
  wantsSearch,
} from '../../api/llm/sim/sim-model';

const SEARCH_TOOL: ToolDefinition = {
  name: 'search_web',
  description: 'Search the web',
  parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
};

function ask(systemPrompt: string, content: string, extra: Partial<CompletionRequest> = {}) {
  return simulateCompletion({
    messages: [
      { role: 'system', content: systemPrompt },
      { role: 'user', content },
    ],
    ...extra,
  });
}

/** Runs host → planner → critic (→ planner → critic) as the orchestrator does, with the sim model. */
function runPlanning(request: string) {
  const brief = ask(HOST_PROMPT, hostInput(request)).text;
  let plan = ask(PLANNER_PROMPT, plannerInput(request, brief)).text;
  const verdicts: string[] = [];
  let critique = ask(CRITIC_PROMPT, criticInput(request, brief, plan)).text;
  verdicts.push(parseVerdict(critique));
  if (parseVerdict(critique) === 'revise') {
    plan = ask(PLANNER_PROMPT, plannerInput(request, brief, { previousPlan: plan, critique })).text;
    critique = ask(CRITIC_PROMPT, criticInput(request, brief, plan)).text;
    verdicts.push(parseVerdict(critique));
  }
  return { brief, plan, critique, verdicts };
}

describe('sim model: roles', () => {
  it('detects each role from the first sentence of the system prompt', () => {
    const roleOf = (content: string) => detectRole([{ role: 'system', content }]);
    expect(roleOf(HOST_PROMPT)).toBe('host');
    expect(roleOf(PLANNER_PROMPT)).toBe('planner');
    expect(roleOf(CRITIC_PROMPT)).toBe('critic');
    expect(roleOf(REPORTER_PROMPT)).toBe('reporter');
    expect(roleOf(ASSISTANT_PROMPT)).toBe('assistant');
    expect(detectRole([{ role: 'user', content: 'hi' }])).toBe('assistant');
  });

  it('Host frames the request: goal, audience, constraints', () => {
    const output = ask(HOST_PROMPT, 'Explain how TCP congestion control works in under 200 words');
    expect(output.role).toBe('host');
    expect(output.text).toMatch(/^Goal: .*TCP congestion control/m);
    expect(output.text).toMatch(/^Audience and tone: /m);
    expect(output.text).toMatch(/^Constraints: .*under 200 words/m);
    expect(output.text).toMatch(/^Needs fresh information: no$/m);
    expect(output.finishReason).toBe('stop');
  });

  it('Planner writes numbered steps; a short request gets 2, a long one 4', () => {
    const short = ask(PLANNER_PROMPT, plannerInput('What is Rust?', 'Goal: explain Rust'));
    expect(short.text).toMatch(/^1\. .*\n2\. /);
    expect(countPlanSteps(short.text)).toBe(2);
    const long = ask(
      PLANNER_PROMPT,
      plannerInput(
        'How should a small team choose between PostgreSQL and MongoDB for a new product?',
        'Goal: x',
      ),
    );
    expect(countPlanSteps(long.text)).toBe(4);
    expect(long.text).toMatch(/^Answer format: /m);
  });

  it('Critic asks for exactly one revision of a short request, then approves', () => {
    const { verdicts, plan, critique } = runPlanning('What is Rust?');
    expect(verdicts).toEqual(['revise', 'approve']);
    expect(countPlanSteps(plan)).toBeGreaterThanOrEqual(3);
    expect(critique.split('\n')[0]).toBe('VERDICT: APPROVE');
  });

  it('Critic approves a long request at once', () => {
    const { verdicts } = runPlanning(
      'How should a small team choose between PostgreSQL and MongoDB for a new product?',
    );
    expect(verdicts).toEqual(['approve']);
  });

  it('Critic revises a plan under 3 steps with reasons, and approves once a revision was requested', () => {
    const revise = ask(
      CRITIC_PROMPT,
      criticInput('What is Rust?', 'Goal: x', '1. Define it.\n2. Give an example.'),
    );
    expect(revise.text.split('\n')[0]).toBe('VERDICT: REVISE');
    expect(revise.text).toMatch(/only 2 steps/);
    const approve = simulateCompletion({
      messages: [
        { role: 'system', content: CRITIC_PROMPT },
        { role: 'assistant', content: 'VERDICT: REVISE\n- too short' },
        {
          role: 'user',
          content: criticInput('What is Rust?', 'Goal: x', '1. Define it.\n2. Give an example.'),
        },
      ],
    });
    expect(approve.text.split('\n')[0]).toBe('VERDICT: APPROVE');
  });

  it('Reporter writes several paragraphs that use the plan', () => {
    const plan =
      '1. Open with a direct answer.\n2. Explain ownership and borrowing.\n3. Close with next steps.';
    const output = ask(REPORTER_PROMPT, reporterInput('What is Rust?', 'Goal: x', plan, []));
    expect(output.role).toBe('reporter');
    expect(output.text.split('\n\n').length).toBeGreaterThanOrEqual(3);
    expect(output.text).toContain('Explain ownership and borrowing.');
    expect(output.text).toContain('"What is Rust?"');
  });

  it('answers in Chinese when the user writes Chinese; the verdict line stays English', () => {
    const request = '什么是向量数据库？';
    expect(detectLanguage(request)).toBe('zh');
    expect(detectLanguage('What does 你好 mean?')).toBe('en');
    const { brief, plan, critique, verdicts } = runPlanning(request);
    expect(brief).toMatch(/^目标：.*向量数据库/);
    expect(plan).toMatch(/^1\. 开门见山/);
    expect(verdicts).toEqual(['revise', 'approve']);
    expect(critique).toMatch(/^VERDICT: APPROVE\n- 计划用 \d 个步骤/);
    const answer = ask(ASSISTANT_PROMPT, request).text;
    expect(answer).toMatch(/^关于「什么是向量数据库？」/);
    expect(answer).not.toMatch(/Here is/);
  });
});

describe('sim model: tool use', () => {
  const request = 'search the latest news about Volcengine Ark rate limits and summarise them';

  it('asks for search_web when the request wants recent facts and the tool is offered', () => {
    const output = ask(PLANNER_PROMPT, plannerInput(request, 'Goal: x'), { tools: [SEARCH_TOOL] });
    expect(output.finishReason).toBe('tool_calls');
    expect(output.text).toBe('');
    expect(output.toolCalls).toHaveLength(1);
    expect(output.toolCalls[0].name).toBe('search_web');
    expect(JSON.parse(output.toolCalls[0].arguments)).toEqual({
      query: 'the latest news about Volcengine Ark rate limits',
    });
    expect(output.toolCalls[0].id).toMatch(/^call_sim_[0-9a-f]{8}$/);
    // Deterministic: the same request gives the same call id.
    expect(
      ask(PLANNER_PROMPT, plannerInput(request, 'Goal: x'), { tools: [SEARCH_TOOL] }).toolCalls[0].id,
    ).toBe(output.toolCalls[0].id);
  });

  it('does not call tools when none are offered, or for requests that need no fresh facts', () => {
    expect(ask(PLANNER_PROMPT, plannerInput(request, 'Goal: x')).toolCalls).toEqual([]);
    expect(
      ask(PLANNER_PROMPT, plannerInput('Explain recursion', 'Goal: x'), { tools: [SEARCH_TOOL] }).toolCalls,
    ).toEqual([]);
  });

  it('answers with the tool results once they are present, quoting titles', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: ASSISTANT_PROMPT },
      { role: 'user', content: request },
    ];
    const first = simulateCompletion({ messages, tools: [SEARCH_TOOL] });
    const call = first.toolCalls[0];
    messages.push({ role: 'assistant', content: '', toolCalls: [call] });
    messages.push({
      role: 'tool',
      toolCallId: call.id,
      content: JSON.stringify({
        results: [
          {
            title: 'Ark rate limits: RPM and TPM per endpoint',
            url: 'https://example.com/a',
            snippet: 'Each endpoint has its own RPM and TPM quota. Requests past it get HTTP 429.',
          },
          { title: 'Handling 429 errors', url: 'https://example.com/b', snippet: 'Back off and retry.' },
        ],
      }),
    });
    const second = simulateCompletion({ messages, tools: [SEARCH_TOOL] });
    expect(second.finishReason).toBe('stop');
    expect(second.toolCalls).toEqual([]);
    expect(second.text).toContain('"Ark rate limits: RPM and TPM per endpoint"');
    expect(second.text).toContain('"Handling 429 errors"');
    expect(second.text).toContain('Each endpoint has its own RPM and TPM quota');
  });

  it('plans with the sources, and the reporter uses research notes from its input', () => {
    const notes = JSON.stringify({
      results: [{ title: '火山方舟限流说明', snippet: '每个接入点都有 RPM 和 TPM 限制。' }],
    });
    const messages: ChatMessage[] = [
      { role: 'system', content: PLANNER_PROMPT },
      { role: 'user', content: plannerInput('搜索火山方舟最新的限流规则', '目标：x') },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'c1', name: 'search_web', arguments: '{"query":"x"}' }],
      },
      { role: 'tool', toolCallId: 'c1', content: notes },
    ];
    const plan = simulateCompletion({ messages, tools: [SEARCH_TOOL] });
    expect(plan.toolCalls).toEqual([]);
    expect(plan.text).toContain('《火山方舟限流说明》');
    const report = ask(
      REPORTER_PROMPT,
      reporterInput('搜索火山方舟最新的限流规则', '目标：x', plan.text, [
        { callId: 'c1', tool: 'search_web', ok: true, cached: false, latencyMs: 5, content: notes },
      ]),
    );
    expect(report.language).toBe('zh');
    expect(report.text).toContain('《火山方舟限流说明》');
    expect(report.text).toContain('每个接入点都有 RPM 和 TPM 限制');
  });

  it('answers in degraded mode when the tool failed', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: ASSISTANT_PROMPT },
      { role: 'user', content: 'what is the latest Node.js release?' },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'c1', name: 'search_web', arguments: '{"query":"x"}' }],
      },
      { role: 'tool', toolCallId: 'c1', content: '{"error":"tool_unavailable","message":"circuit open"}' },
    ];
    const output = simulateCompletion({ messages, tools: [SEARCH_TOOL] });
    expect(output.toolCalls).toEqual([]);
    expect(output.text).toMatch(/Live search was unavailable/);
  });

  it('recognises search intent in English and Chinese and derives queries', () => {
    for (const text of [
      'search for rust async runtimes',
      'latest TypeScript version',
      'news today',
      '搜索 Rust',
      '最新的新闻',
    ]) {
      expect(wantsSearch(text)).toBe(true);
    }
    expect(wantsSearch('Explain recursion to me')).toBe(false);
    expect(deriveSearchQuery('Please search the web for Rust async runtimes and compare them.')).toBe(
      'Rust async runtimes',
    );
    expect(deriveSearchQuery('请帮我搜索火山方舟的限流规则，并总结一下')).toBe('火山方舟的限流规则');
  });
});

describe('sim model: chunks and usage', () => {
  it('splits text into word-sized chunks that join back exactly', () => {
    const text = 'Hello, world!  Two spaces\nand a line.\n\n你好，世界 mixed 中文 text ';
    const chunks = splitIntoChunks(text);
    expect(chunks.join('')).toBe(text);
    expect(chunks.slice(0, 3)).toEqual(['Hello,', ' world!', '  Two']);
    expect(chunks).toContain('好');
    expect(chunks).toContain('，');
    expect(splitIntoChunks('')).toEqual([]);
  });

  it('counts prompt tokens from the input and completion tokens from the output', () => {
    const request: CompletionRequest = {
      messages: [
        { role: 'system', content: REPORTER_PROMPT },
        { role: 'user', content: 'What is Rust?' },
      ],
    };
    const output = simulateCompletion(request);
    expect(output.usage.promptTokens).toBe(estimatePromptTokens(request));
    expect(output.usage.completionTokens).toBe(estimateTokens(output.text));
    expect(output.chunks.join('')).toBe(output.text);
  });

  it('stops at maxTokens with finishReason length', () => {
    const output = simulateCompletion({
      messages: [{ role: 'user', content: 'What is Rust?' }],
      maxTokens: 16,
    });
    expect(output.finishReason).toBe('length');
    expect(output.usage.completionTokens).toBeLessThanOrEqual(16);
    expect(output.text.length).toBeGreaterThan(0);
  });

  it('is deterministic', () => {
    const request: CompletionRequest = { messages: [{ role: 'user', content: 'Tell me about jest' }] };
    expect(simulateCompletion(request)).toEqual(simulateCompletion(request));
  });
});
