import { estimatePromptTokens, estimateTokens } from '../provider';
import type { ChatMessage, CompletionRequest, ToolCall, Usage } from '../provider';
import { writeAnswer, writeBrief, writePlan, writeVerdict } from './sim-text';
import type { Language, Research } from './sim-text';

/**
 * The deterministic, role-aware simulated model shared by the in-process `sim` provider and the
 * sim-llm HTTP server. Same request in, same answer out: tests and benchmarks can rely on it.
 *
 * Decisions (documented so that tests and demos can steer them):
 * - Role: the system prompt's first sentence, "You are the Host|Planner|Critic|Reporter|Assistant
 *   of Troupe"; anything else answers as the Assistant.
 * - Language: Chinese when the user's request has at least two Han characters and at least as many
 *   Han characters as Latin words; English otherwise.
 * - Planner: a short request (under 8 words, Han characters counting half a word) gets a 2-step
 *   plan; a longer one, or any revision (a line starting "VERDICT: REVISE", a "revision requested"
 *   section or a previous plan in the input), gets 4 steps. Tool results add one step on the sources.
 * - Critic: "VERDICT: APPROVE" when the conversation already holds a revision request, otherwise
 *   "VERDICT: REVISE" when the plan has fewer than 3 numbered steps, or when the request asks for
 *   the plan to be "reviewed twice" (a steer for benchmarks: a search's sources step otherwise
 *   makes every plan long enough). So a short request, or one asking for two reviews, costs exactly
 *   one revision round and a long one none.
 * - Tools: when `search_web` is offered, the request asks for a search or for recent facts (search,
 *   look up, latest, news, recent, today, current, 搜索, 最新, 新闻, 今天 …) and no tool result
 *   follows the latest user message, the model calls `search_web` with a query derived from the
 *   request instead of writing text. Once results are there it answers with them, quoting titles.
 */

export type SimRole = 'host' | 'planner' | 'critic' | 'reporter' | 'assistant';

export const SEARCH_TOOL_NAME = 'search_web';

export interface SimOutput {
  role: SimRole;
  language: Language;
  text: string;
  toolCalls: ToolCall[];
  finishReason: 'stop' | 'length' | 'tool_calls';
  usage: Usage;
  /** The text split as it is streamed; joining them gives `text`. */
  chunks: string[];
}

/** Runs the simulated model on one request. Pure and synchronous. */
export function simulateCompletion(request: CompletionRequest): SimOutput {
  const messages = request.messages;
  const role = detectRole(messages);
  const latestUserIndex = findLastIndex(messages, (message) => message.role === 'user');
  const latestUser = latestUserIndex >= 0 ? messages[latestUserIndex].content : '';
  const sections = parseSections(latestUser);
  const requestText = (sections.request ?? latestUser).trim();
  const language = detectLanguage(requestText || latestUser);
  const promptTokens = estimatePromptTokens(request);

  const toolCall = decideToolCall(request, latestUserIndex, requestText);
  if (toolCall) {
    return {
      role,
      language,
      text: '',
      toolCalls: [toolCall],
      finishReason: 'tool_calls',
      usage: { promptTokens, completionTokens: estimateTokens(toolCall.name + toolCall.arguments) },
      chunks: [],
    };
  }

  const topic = summariseTopic(requestText);
  const research = collectResearch(messages, latestUserIndex, sections.research);
  const revision = isRevision(messages);
  let text: string;
  switch (role) {
    case 'host':
      text = writeBrief(language, topic, { needsFreshInformation: wantsSearch(requestText) });
      break;
    case 'planner':
      text = writePlan(language, topic, {
        steps: revision || !isShortRequest(requestText) ? 4 : 2,
        research,
      });
      break;
    case 'critic': {
      const steps = countPlanSteps(sections.plan ?? latestUser);
      const secondReview = !revision && steps >= 3 && asksForSecondReview(requestText);
      text = writeVerdict(language, topic, {
        steps,
        approve: revision || (steps >= 3 && !secondReview),
        ...(secondReview ? { reason: 'second review' as const } : {}),
      });
      break;
    }
    default:
      text = writeAnswer(language, topic, { planSteps: planStepTexts(sections.plan ?? ''), research });
  }

  const all = splitIntoChunks(text);
  const chunks: string[] = [];
  let finishReason: SimOutput['finishReason'] = 'stop';
  if (request.maxTokens !== undefined && estimateTokens(text) > request.maxTokens) {
    let kept = '';
    for (const chunk of all) {
      if (estimateTokens(kept + chunk) > request.maxTokens) break;
      kept += chunk;
      chunks.push(chunk);
    }
    text = kept;
    finishReason = 'length';
  } else {
    chunks.push(...all);
  }
  return {
    role,
    language,
    text,
    toolCalls: [],
    finishReason,
    usage: { promptTokens, completionTokens: estimateTokens(text) },
    chunks,
  };
}

const HAN = /[\u3400-\u9fff\uf900-\ufaff]/g;
const CJK_CHUNK = '\\u3000-\\u303f\\u3400-\\u9fff\\uf900-\\ufaff\\uff00-\\uffef';
const CHUNK_PATTERN = new RegExp(`\\s*(?:[${CJK_CHUNK}]|[^\\s${CJK_CHUNK}]+)|\\s+`, 'g');

/**
 * Word-sized stream chunks: a Latin word with the whitespace before it, or one CJK character.
 * Joining the chunks always gives back `text` exactly.
 */
/**
 * A thinking model's reasoning before its answer (the sim's thinking mode): a few deterministic
 * sentences in the answer's language, streamed as `reasoning_content` and never part of the text.
 */
export function simulateReasoning(output: Pick<SimOutput, 'role' | 'language' | 'toolCalls'>): string[] {
  const next = output.toolCalls.length > 0 ? 'search first' : 'write the answer';
  const text =
    output.language === 'zh'
      ? `先想一想。我是${output.role},要先弄清用户的问题,再${next === 'search first' ? '搜索资料' : '写出回答'}。`
      : `Let me think. As the ${output.role}, I should understand the request, then ${next}.`;
  return splitIntoChunks(text);
}

export function splitIntoChunks(text: string): string[] {
  return text.match(CHUNK_PATTERN) ?? [];
}

const ROLE_PATTERN = /You are the (Host|Planner|Critic|Reporter|Assistant) of Troupe/i;

/** The role named in the first system message; the Assistant when none is named. */
export function detectRole(messages: ChatMessage[]): SimRole {
  const system = messages.find((message) => message.role === 'system');
  const match = system ? ROLE_PATTERN.exec(system.content) : null;
  return match ? (match[1].toLowerCase() as SimRole) : 'assistant';
}

/** Chinese when Han characters dominate the Latin words (see the module comment). */
export function detectLanguage(text: string): Language {
  const han = text.match(HAN)?.length ?? 0;
  const latinWords = text.match(/[A-Za-z]+/g)?.length ?? 0;
  return han >= 2 && han >= latinWords ? 'zh' : 'en';
}

const SEARCH_WORDS =
  /\b(search|searching|look\s*up|google|latest|news|recent|recently|today|tonight|current|currently|this (?:week|month|year))\b|搜索|搜一下|查一下|查找|查询|最新|新闻|今天|今日|近期|最近|当前|目前|现在/i;

/** Whether a request asks for a search or for recent facts. */
export function wantsSearch(text: string): boolean {
  return SEARCH_WORDS.test(text);
}

const SECOND_REVIEW = /\breview(?:ed)?\s+(?:it\s+|the\s+plan\s+)?twice\b|审核两次|审查两次/i;

/** Whether a request asks for its plan to be reviewed twice (one revision round whatever the plan). */
export function asksForSecondReview(text: string): boolean {
  return SECOND_REVIEW.test(text);
}

/** A search query from a request: its subject, without the request's verbs and follow-up asks. */
export function deriveSearchQuery(text: string): string {
  let query = text.replace(/\s+/g, ' ').trim();
  query = query.replace(
    /^(?:(?:please|pls|hey|hi|can you|could you|would you|help me|i want you to)[\s,]+)+/i,
    '',
  );
  query = query.replace(
    /^(?:search(?: the (?:web|internet))?(?: for)?|look\s*up|google|find(?: out)?|tell me)\s+/i,
    '',
  );
  query = query.replace(
    /\s+(?:and|then)\s+(?:summari[sz]e|explain|tell|write|give|list|compare|report)\b.*$/i,
    '',
  );
  query = query.replace(/^(?:请|麻烦)?(?:帮我|帮忙)?(?:搜索|搜一下|查一下|查找|查询)(?:一下)?/, '');
  query = query.replace(/[，,]?\s*(?:并|然后|再)(?:总结|概括|说明|解释|列出|比较).*$/, '');
  query = query.replace(/[\s?？!！.。,，;；:：]+$/, '').trim();
  const words = query.split(' ');
  if (words.length > 12) query = words.slice(0, 12).join(' ');
  if (query.length > 100) query = query.slice(0, 100).trim();
  return query || text.trim().slice(0, 100);
}

const NUMBERED_LINE = /^\s*(\d{1,2})[.)、．]\s*\S/;

/** Steps of the last numbered list in a text (counting from its last "1."). */
export function countPlanSteps(text: string): number {
  return planStepTexts(text).length;
}

function planStepTexts(text: string): string[] {
  let steps: string[] = [];
  for (const line of text.split('\n')) {
    const match = NUMBERED_LINE.exec(line);
    if (!match) continue;
    if (match[1] === '1') steps = [];
    steps.push(line.replace(/^\s*\d{1,2}[.)、．]\s*/, '').trim());
  }
  return steps;
}

type SectionKey = 'request' | 'brief' | 'plan' | 'previousPlan' | 'critique' | 'research';

const SECTION_LABELS: Record<string, SectionKey> = {
  'user request': 'request',
  request: 'request',
  "host's brief": 'brief',
  brief: 'brief',
  "planner's plan": 'plan',
  'approved plan': 'plan',
  plan: 'plan',
  'your previous plan': 'previousPlan',
  'previous plan': 'previousPlan',
  "critic's feedback": 'critique',
  "critic's notes": 'critique',
  'research notes': 'research',
  用户请求: 'request',
  主持人简报: 'brief',
  计划: 'plan',
  研究资料: 'research',
};

/** The labelled sections the orchestrator puts in an agent's input ("User request:\n…"). */
export function parseSections(content: string): Partial<Record<SectionKey, string>> {
  const sections: Partial<Record<SectionKey, string[]>> = {};
  let current: string[] | undefined;
  for (const line of content.split('\n')) {
    const label = /^\s*([^:：\n]{1,40}?)\s*(?:\([^)\n]*\))?\s*[:：]\s*$/.exec(line);
    const key = label ? SECTION_LABELS[label[1].toLowerCase()] : undefined;
    if (key) {
      current = sections[key] ??= [];
      continue;
    }
    current?.push(line);
  }
  const result: Partial<Record<SectionKey, string>> = {};
  for (const [key, lines] of Object.entries(sections)) result[key as SectionKey] = lines.join('\n').trim();
  return result;
}

function isRevision(messages: ChatMessage[]): boolean {
  return messages.some(
    (message) =>
      message.role !== 'system' &&
      (/^\s*VERDICT\s*[:：]\s*REVISE\b/im.test(message.content) ||
        /revision requested|previous plan\s*:/i.test(message.content)),
  );
}

function isShortRequest(text: string): boolean {
  const latinWords = text.match(/[A-Za-z0-9]+/g)?.length ?? 0;
  const han = text.match(HAN)?.length ?? 0;
  return latinWords + han / 2 < 8;
}

function summariseTopic(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  if (line.length <= 120) return line;
  const cut = line.slice(0, 120);
  const space = cut.lastIndexOf(' ');
  return `${space > 60 ? cut.slice(0, space) : cut}…`;
}

function decideToolCall(
  request: CompletionRequest,
  latestUserIndex: number,
  requestText: string,
): ToolCall | undefined {
  if (!request.tools?.some((tool) => tool.name === SEARCH_TOOL_NAME)) return undefined;
  if (latestUserIndex < 0 || !wantsSearch(requestText)) return undefined;
  const after = request.messages.slice(latestUserIndex + 1);
  if (after.some((message) => message.role === 'tool')) return undefined;
  const query = deriveSearchQuery(requestText);
  const argumentsText = JSON.stringify({ query });
  return {
    id: `call_sim_${hash(`${query}|${latestUserIndex}`)}`,
    name: SEARCH_TOOL_NAME,
    arguments: argumentsText,
  };
}

/** Results from tool messages after the latest user message, and from a "Research notes" section. */
function collectResearch(
  messages: ChatMessage[],
  latestUserIndex: number,
  notes: string | undefined,
): Research {
  const contents = messages
    .slice(Math.max(0, latestUserIndex))
    .filter((message) => message.role === 'tool')
    .map((message) => message.content);
  if (notes) contents.push(notes);
  const research: Research = { sources: [], failed: false };
  for (const content of contents) {
    const titles = [...content.matchAll(/"title"\s*:\s*"((?:[^"\\]|\\.)*)"/g)].map((match) =>
      unescapeJson(match[1]),
    );
    const snippets = [
      ...content.matchAll(/"(?:snippet|content|description)"\s*:\s*"((?:[^"\\]|\\.)*)"/g),
    ].map((match) => unescapeJson(match[1]));
    if (titles.length === 0) {
      for (const match of content.matchAll(/^\s*(?:title|标题)\s*[:：]\s*(.+)$/gim))
        titles.push(match[1].trim());
    }
    titles.forEach((title, index) => research.sources.push({ title, snippet: snippets[index] ?? '' }));
    if (titles.length === 0 && /^\s*\{\s*"error"/.test(content)) research.failed = true;
  }
  research.sources = research.sources.slice(0, 3);
  return research;
}

function unescapeJson(text: string): string {
  try {
    return JSON.parse(`"${text}"`) as string;
  } catch {
    return text;
  }
}

function findLastIndex<T>(items: T[], predicate: (item: T) => boolean): number {
  for (let index = items.length - 1; index >= 0; index--) if (predicate(items[index])) return index;
  return -1;
}

/** FNV-1a, for stable tool-call ids. */
function hash(text: string): string {
  let value = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    value ^= text.charCodeAt(index);
    value = Math.imul(value, 0x01000193);
  }
  return (value >>> 0).toString(16).padStart(8, '0');
}
