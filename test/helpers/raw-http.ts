import net from 'node:net';

export interface RawExchange {
  socket: net.Socket;
  /** Everything the server sent, resolved when it closes the connection. */
  closed: Promise<string>;
}

/** A raw TCP connection to `url`'s host and port, for requests no HTTP client would send. */
export function rawConnect(url: string): Promise<RawExchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      let received = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (received += chunk));
      const closed = new Promise<string>((done) => socket.once('close', () => done(received)));
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

/** The status line's code and the JSON body of a raw HTTP/1.1 response. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function parseRawResponse(text: string): { status: number; body: any } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const bodyText = text.slice(text.indexOf('\r\n\r\n') + 4);
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    body = bodyText;
  }
  return { status, body };
}
