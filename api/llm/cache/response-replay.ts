/** Characters per replayed delta, about: a few events per answer, each cut at a word boundary. */
const REPLAY_CHUNK_CHARS = 64;

/**
 * A cached answer's text as the `delta` chunks it is replayed in: cut after whitespace once a
 * chunk reaches REPLAY_CHUNK_CHARS, so a client renders it as it renders a live stream. Joining
 * the chunks gives back `text` exactly.
 */
export function replayChunks(text: string): string[] {
  const chunks: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + REPLAY_CHUNK_CHARS);
    if (end < text.length) {
      const space = text.slice(end).search(/\s/);
      end = space < 0 ? text.length : end + space + 1;
    }
    chunks.push(text.slice(start, end));
    start = end;
  }
  return chunks;
}
