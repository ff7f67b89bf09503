import type { Response } from 'express';

/** An error as OpenAI-compatible providers (Ark included) send it. */
export interface WireError {
  code: string;
  message: string;
  type: string;
}

export function sendError(response: Response, status: number, error: WireError): void {
  response
    .status(status)
    .json({ error: { code: error.code, message: error.message, param: '', type: error.type } });
}
