import { estimateTokens } from '../llm/provider';

/**
 * Turns a tool result into the content a prompt receives, within `maxTokens`. For objects with a
 * list (search results and the like) whole items are dropped from the end first, so the model
 * sees fewer complete results rather than a cut-off JSON; anything else is cut with a marker.
 */
export function renderToolContent(result: unknown, maxTokens: number): string {
  if (typeof result === 'string') return truncateText(result, maxTokens);
  if (result === undefined) return '';
  let content = JSON.stringify(result) ?? '';
  if (estimateTokens(content) <= maxTokens) return content;

  const listKey = largestArrayKey(result);
  if (listKey) {
    const record = { ...(result as Record<string, unknown>) };
    const items = [...(record[listKey] as unknown[])];
    let omitted = 0;
    while (items.length > 1 && estimateTokens(content) > maxTokens) {
      items.pop();
      omitted++;
      content = JSON.stringify({ ...record, [listKey]: items, omitted });
    }
    if (estimateTokens(content) <= maxTokens) return content;
  }
  return truncateText(content, maxTokens);
}

const MARKER = ' …[truncated to fit the token budget]';

export function truncateText(text: string, maxTokens: number): string {
  if (estimateTokens(text) <= maxTokens) return text;
  // estimateTokens is roughly chars/4 (CJK one each), so shrink until it fits.
  let length = Math.max(0, Math.min(text.length, maxTokens * 4) - MARKER.length);
  let cut = text.slice(0, length);
  while (length > 0 && estimateTokens(cut + MARKER) > maxTokens) {
    length = Math.floor(length * 0.9);
    cut = text.slice(0, length);
  }
  return cut + MARKER;
}

function largestArrayKey(value: unknown): string | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  let best: string | undefined;
  let bestLength = 0;
  for (const [key, child] of Object.entries(value)) {
    if (Array.isArray(child) && child.length > bestLength) {
      best = key;
      bestLength = child.length;
    }
  }
  return best;
}
