import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { ToolCall } from '../provider';

type ToolCallDelta = NonNullable<ChatCompletionChunk.Choice.Delta['tool_calls']>[number];

/** Joins streamed tool-call fragments: the first fragment of a call has its id and name, later ones append arguments. */
export class ToolCallAssembler {
  private readonly calls: { id: string; name: string; arguments: string }[] = [];
  private readonly byIndex = new Map<number, number>();

  add(delta: ToolCallDelta): void {
    // Some compatible servers omit `index`; then a new id starts a new call and a missing one continues the last.
    let position = delta.index !== undefined ? this.byIndex.get(delta.index) : undefined;
    if (position === undefined && delta.index === undefined && !delta.id && this.calls.length > 0) {
      position = this.calls.length - 1;
    }
    if (position === undefined) {
      position = this.calls.push({ id: '', name: '', arguments: '' }) - 1;
      this.byIndex.set(delta.index ?? position, position);
    }
    const call = this.calls[position];
    if (delta.id) call.id = delta.id;
    if (delta.function?.name) call.name += delta.function.name;
    if (delta.function?.arguments) call.arguments += delta.function.arguments;
  }

  toolCalls(): ToolCall[] {
    return this.calls
      .filter((call) => call.name !== '')
      .map((call, index) => ({
        id: call.id || `call_${index}`,
        name: call.name,
        arguments: call.arguments || '{}',
      }));
  }
}
