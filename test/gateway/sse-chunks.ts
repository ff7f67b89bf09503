/** Reads an OpenAI-style SSE body (`data: {…}` blocks, `data: [DONE]`) into its parsed blocks. */
export function parseDataBlocks(text: string): Array<Record<string, unknown> | '[DONE]'> {
  const blocks: Array<Record<string, unknown> | '[DONE]'> = [];
  for (const block of text.split('\n\n')) {
    const data = block
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => line.slice(6))
      .join('\n');
    if (data === '') continue;
    blocks.push(data === '[DONE]' ? '[DONE]' : (JSON.parse(data) as Record<string, unknown>));
  }
  return blocks;
}

/** The text content of the choice deltas, in order. */
export function streamedContent(blocks: ReturnType<typeof parseDataBlocks>): string {
  let text = '';
  for (const block of blocks) {
    if (block === '[DONE]') continue;
    const choices = (block.choices ?? []) as Array<{ delta?: { content?: string } }>;
    for (const choice of choices) text += choice.delta?.content ?? '';
  }
  return text;
}
