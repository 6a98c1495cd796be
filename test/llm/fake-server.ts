/**
 * A local HTTP server that answers with scripted responses, for what the client tests are
 * about: how the client reacts to failures. It records every request it receives.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface ScriptedResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (to exercise timeouts). */
  hang?: boolean;
}

export type Handler = (request: RecordedRequest, index: number) => ScriptedResponse;

export interface FakeServer {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startFakeServer(handler: Handler): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : null };
      requests.push(recorded);
      const response = handler(recorded, requests.length - 1);
      if (response.hang) return;
      res.writeHead(response.status, { 'content-type': 'application/json', ...response.headers });
      res.end(JSON.stringify(response.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A valid chat completion with one choice per text. */
export function completion(texts: string[], finishReason = 'stop', completionTokens = 10 * texts.length) {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 0,
    model: 'test-model',
    choices: texts.map((content, index) => ({ index, message: { role: 'assistant', content }, finish_reason: finishReason })),
    usage: { prompt_tokens: 7, completion_tokens: completionTokens, total_tokens: 7 + completionTokens },
  };
}

export function apiError(status: number, message: string): ScriptedResponse {
  return { status, body: { error: { message, type: 'error', code: null } } };
}
