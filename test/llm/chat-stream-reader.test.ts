import { APIError } from 'openai';
import { EventStreamParser, readChatStream } from '../../api/llm/providers/chat-stream-reader';

// The provider's own reader of OpenAI-compatible streams: pure parsing, no sockets.

function parse(pieces: string[]): unknown[] {
  const chunks: unknown[] = [];
  const parser = new EventStreamParser(undefined, (chunk) => chunks.push(chunk));
  for (const piece of pieces) parser.feed(piece);
  parser.end();
  return chunks;
}

describe('EventStreamParser', () => {
  test('one chunk per data event, whatever the pieces the socket delivers', () => {
    const text = 'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n';
    const whole = parse([text]);
    const byCharacter = parse(text.split(''));
    expect(whole).toEqual([{ a: 1 }, { a: 2 }]);
    expect(byCharacter).toEqual(whole);
  });

  test('CRLF line ends, comments, multi-line data and a missing space after the colon', () => {
    expect(parse([': keep-alive\r\n\r\ndata:{"a":\r\ndata: 1}\r\n\r\n'])).toEqual([{ a: 1 }]);
  });

  test('nothing after [DONE] is data', () => {
    expect(parse(['data: {"a":1}\n\ndata: [DONE]\n\ndata: {"a":2}\n\n'])).toEqual([{ a: 1 }]);
  });

  test('an event not closed by a blank line still counts when the body ends', () => {
    expect(parse(['data: {"a":1}'])).toEqual([{ a: 1 }]);
  });

  test('a chunk carrying an error throws the SDK error, as the SDK stream would', () => {
    expect(() => parse(['data: {"error":{"message":"boom","type":"server_error"}}\n\n'])).toThrow(APIError);
  });

  test('malformed JSON is a SyntaxError (the provider maps it to a server failure)', () => {
    expect(() => parse(['data: {not json}\n\n'])).toThrow(SyntaxError);
  });
});

describe('readChatStream', () => {
  test('reads Node-style async iterables of bytes, with characters split across pieces', async () => {
    const bytes = Buffer.from('data: {"text":"héllo"}\n\ndata: [DONE]\n\n');
    const cut = bytes.indexOf(0xc3) + 1; // inside the two bytes of "é"
    async function* body() {
      yield bytes.subarray(0, cut);
      yield bytes.subarray(cut);
    }
    const chunks: unknown[] = [];
    await readChatStream(body(), new Headers(), (chunk) => chunks.push(chunk));
    expect(chunks).toEqual([{ text: 'héllo' }]);
  });

  test('reads WHATWG streams too (a custom fetch)', async () => {
    const chunks: unknown[] = [];
    await readChatStream(new Response('data: {"a":1}\n\n').body, new Headers(), (chunk) =>
      chunks.push(chunk),
    );
    expect(chunks).toEqual([{ a: 1 }]);
  });
});
