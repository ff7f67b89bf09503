/**
 * The simulated model's wording, in English and Chinese. sim-model decides what to say (role,
 * steps, verdict, sources); this module only phrases it, deterministically.
 */

export type Language = 'en' | 'zh';

export interface Source {
  title: string;
  snippet: string;
}

export interface Research {
  sources: Source[];
  /** A tool ran but returned an error (search down, rate limited): answer in degraded mode. */
  failed: boolean;
}

/** The Host's brief, in the five parts its prompt asks for. */
export function writeBrief(
  language: Language,
  topic: string,
  options: { needsFreshInformation: boolean },
): string {
  const constraints = detectConstraints(topic, language);
  if (language === 'zh') {
    return [
      `目标：为用户清楚、准确地回答「${topic}」。`,
      '受众与语气：普通读者；清晰、直接、友好。',
      `约束：${constraints}`,
      '待确认问题：无；按最常见的理解处理。',
      `需要最新信息：${options.needsFreshInformation ? '是' : '否'}`,
    ].join('\n');
  }
  return [
    `Goal: give the user a clear, accurate answer to "${topic}".`,
    'Audience and tone: a general reader; clear, direct and friendly.',
    `Constraints: ${constraints}`,
    'Open questions: none; assume the most common reading of the request.',
    `Needs fresh information: ${options.needsFreshInformation ? 'yes' : 'no'}`,
  ].join('\n');
}

/** A numbered plan: `steps` core steps (2 or 4), plus one on the sources when research exists. */
export function writePlan(
  language: Language,
  topic: string,
  options: { steps: number; research: Research },
): string {
  const zh = language === 'zh';
  const core = zh
    ? [
        `开门见山，用一两句话直接回答「${topic}」。`,
        '解释关键事实和背后的原因，并给出一个具体例子。',
        '说明主要的取舍、局限或常见误区。',
        '最后给出用户可以马上采取的下一步行动。',
      ]
    : [
        `Open with a direct answer to "${topic}" in one or two sentences.`,
        'Explain the key facts and the reasoning behind them, with one concrete example.',
        'Cover the main trade-offs, limits or common mistakes.',
        'Close with practical next steps the user can take.',
      ];
  const steps = core.slice(0, Math.max(1, Math.min(options.steps, core.length)));
  const sourceStep = describeResearchStep(language, options.research);
  if (sourceStep) steps.splice(1, 0, sourceStep);
  const lines = steps.map((step, index) => `${index + 1}. ${step}`);
  lines.push(
    zh
      ? '回答格式：简短的段落，必要时配一个简短列表。'
      : 'Answer format: short paragraphs, with a brief list where it helps.',
  );
  return lines.join('\n');
}

/** The Critic's verdict line, then its reasons as bullets. */
export function writeVerdict(
  language: Language,
  topic: string,
  options: { steps: number; approve: boolean; reason?: 'second review' },
): string {
  const { steps, approve } = options;
  if (!approve && options.reason === 'second review') {
    return language === 'zh'
      ? [
          'VERDICT: REVISE',
          `- 请求要求对计划审核两次：计划的 ${steps} 个步骤需要再修订一轮。`,
          '- 收紧每个步骤，并说明取舍与局限。',
        ].join('\n')
      : [
          'VERDICT: REVISE',
          `- The request asks for the plan to be reviewed twice: its ${steps} steps get one more revision.`,
          '- Tighten each step and say what it trades off.',
        ].join('\n');
  }
  if (language === 'zh') {
    return approve
      ? [
          'VERDICT: APPROVE',
          `- 计划用 ${steps} 个步骤覆盖了「${topic}」，并给出了清晰的回答格式。`,
          '- 撰写时保持聚焦；无法核实的信息请明确标注。',
        ].join('\n')
      : [
          'VERDICT: REVISE',
          `- 计划只有 ${steps} 个步骤，至少需要 3 个步骤才能完整回答这个请求。`,
          '- 增加一个步骤，说明取舍、局限或常见误区。',
          '- 增加一个收尾步骤，给出可执行的下一步建议。',
        ].join('\n');
  }
  return approve
    ? [
        'VERDICT: APPROVE',
        `- The plan covers "${topic}" in ${steps} steps and ends with a usable answer format.`,
        '- Keep the answer focused on the request; flag anything that could not be verified.',
      ].join('\n')
    : [
        'VERDICT: REVISE',
        `- The plan has only ${steps} step${steps === 1 ? '' : 's'}; it needs at least 3 to answer the request completely.`,
        '- Add a step on the trade-offs, limits or common mistakes.',
        '- Add a closing step with practical next steps for the user.',
      ].join('\n');
}

/** The final answer: several paragraphs built from the plan's steps and the research found. */
export function writeAnswer(
  language: Language,
  topic: string,
  options: { planSteps: string[]; research: Research },
): string {
  const { planSteps, research } = options;
  const zh = language === 'zh';
  const paragraphs: string[] = [];
  paragraphs.push(
    zh
      ? `关于「${topic}」，简短的回答是：先抓住最核心的要点，再根据你的具体情况补充细节。下面按重要性依次说明。`
      : `Here is a clear answer to "${topic}". In short: start from the essentials, then adapt the details to your situation. The points below go from most to least important.`,
  );
  if (research.sources.length > 0) {
    const quoted = research.sources.map((source) => (zh ? `《${source.title}》` : `"${source.title}"`));
    const snippet = firstSentence(research.sources[0].snippet);
    paragraphs.push(
      zh
        ? `根据检索到的资料（${quoted.join('、')}），${snippet ? `其中提到：“${snippet}”` : '这些来源给出了最新的相关信息'}。以上内容以来源原文为准，建议点开原文核对细节。`
        : `According to the sources found (${quoted.join(', ')}), ${snippet ? `the key point is: "${snippet}"` : 'there is recent information on this'}. Treat these as the latest available facts and check the originals for detail.`,
    );
  } else if (research.failed) {
    paragraphs.push(
      zh
        ? '实时搜索暂时不可用，因此这个回答基于通用知识，可能没有包含最新进展。'
        : 'Live search was unavailable, so this answer relies on general knowledge and may miss the latest developments.',
    );
  }
  if (planSteps.length > 0) {
    const list = planSteps.map((step) => `- ${step}`).join('\n');
    paragraphs.push(
      zh
        ? `具体来说，回答分为以下 ${planSteps.length} 点：\n${list}`
        : `Concretely, the answer covers ${planSteps.length} points:\n${list}`,
    );
  } else {
    paragraphs.push(
      zh
        ? '具体来说：先明确你的目标，再了解关键事实和背后的原因，然后权衡主要的取舍与常见误区。'
        : 'Concretely: be clear about the goal, understand the key facts and the reasons behind them, then weigh the main trade-offs and common mistakes.',
    );
  }
  paragraphs.push(
    zh
      ? '总之，从最重要的一步开始，边做边调整。如果需要更深入的某一部分，欢迎继续追问。'
      : 'In short, start with the most important step and adjust as you go. If you want more depth on any part, ask a follow-up question.',
  );
  return paragraphs.join('\n\n');
}

function describeResearchStep(language: Language, research: Research): string | undefined {
  if (research.sources.length > 0) {
    const titles = research.sources.map((source) =>
      language === 'zh' ? `《${source.title}》` : `"${source.title}"`,
    );
    return language === 'zh'
      ? `总结检索结果的要点，并注明来源：${titles.join('、')}。`
      : `Summarise what the sources say and name them: ${titles.join(', ')}.`;
  }
  if (research.failed) {
    return language === 'zh'
      ? '说明实时搜索不可用，最新信息未经核实（unverified）。'
      : 'Note that live search failed, so recent facts are unverified.';
  }
  return undefined;
}

function detectConstraints(topic: string, language: Language): string {
  const found: string[] = [];
  const words =
    /(?:under|in|within|at most)\s+(\d+)\s+(words|sentences|bullet points|bullets|paragraphs|lines)/i.exec(
      topic,
    );
  if (words) found.push(language === 'zh' ? `篇幅：${words[0]}` : `length: ${words[0]}`);
  if (/\b(short|brief|briefly|concise|tl;?dr)\b|简短|简要|简洁/i.test(topic))
    found.push(language === 'zh' ? '简短' : 'keep it short');
  if (/\b(table|checklist|list|code|steps)\b|表格|清单|代码|步骤/i.test(topic))
    found.push(language === 'zh' ? '注意指定的格式' : 'respect the requested format');
  if (found.length === 0) return language === 'zh' ? '未说明。' : 'none stated.';
  return `${found.join('; ')}${language === 'zh' ? '。' : '.'}`;
}

function firstSentence(text: string): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  const match = /^(.{20,200}?[.!?。！？])(?:\s|$)/.exec(clean);
  const sentence = match ? match[1] : clean.slice(0, 160);
  return sentence.replace(/[.。]$/, '');
}
