/**
 * The reply to an HTTP trigger, as the runtime decides it:
 *
 *   OPTIONS no trigger names      → 204 with Allow (+ the preflight's CORS headers), nothing fired
 *   an event with "response"      → that worker's response once it is done, or:
 *                                     error / malformed → 500, timeout → 504,
 *                                     queue full / stopping → 503 (+ Retry-After),
 *                                     body over the limit → 500 naming it; each with the activation id
 *   otherwise                     → 202 at once, or 200 with the outcomes (`?wait=true`)
 *   any of them for an event with "cors" carries its CORS headers.
 *
 * The error bodies say what went wrong in general terms only: the worker's message and stack
 * stay in the activation record, which admins read.
 */
import { LivelyError } from '../shared/errors.ts';
import type { WorkerOutcome } from '../shared/message.ts';
import type { HttpTriggerReply, HttpTriggerRequest } from '../server/firer.ts';
import { corsHeaders, preflightHeaders } from '../server/cors.ts';
import { redactOutcome } from './activation-sink.ts';
import type { Fired } from './firing.ts';
import type { OptionsAnswer } from './options.ts';
import { responseOf, responseTooLargeReason } from './response.ts';

function header(headers: HttpTriggerRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function optionsReply(answer: OptionsAnswer, req: HttpTriggerRequest): HttpTriggerReply {
  const headers: Record<string, string> = { allow: answer.allow.join(', ') };
  if (answer.cors) {
    const origin = header(req.headers, 'origin');
    const preflight = header(req.headers, 'access-control-request-method') !== undefined;
    const cors = preflight
      ? preflightHeaders(answer.cors, origin, answer.allow, header(req.headers, 'access-control-request-headers'))
      : corsHeaders(answer.cors, origin);
    if (cors) Object.assign(headers, cors);
  }
  return { activation: '', events: [], workers: [], response: { status: 204, headers, body: '', length: 0 } };
}

/** At once, or once the outcomes (or the responding worker's) are in. */
export function firedReply(fired: Fired, req: HttpTriggerRequest, responseLimit: number): HttpTriggerReply | Promise<HttpTriggerReply> {
  const reply: HttpTriggerReply = { activation: fired.activation, events: fired.events, workers: fired.workers };
  if (fired.cors !== undefined) {
    const h = corsHeaders(fired.cors, header(req.headers, 'origin'));
    if (h) reply.headers = h;
  }
  const at = fired.responder;
  if (at !== undefined) {
    return fired.done.then((outcomes) => {
      reply.response = endpointResponse(outcomes[at]!, fired.activation, responseLimit);
      return reply;
    });
  }
  if (!req.wait) return reply;
  return fired.done.then((outcomes) => {
    reply.outcomes = outcomes.map(redactOutcome);
    return reply;
  });
}

function endpointResponse(outcome: WorkerOutcome, activation: string, limit: number): HttpTriggerReply['response'] {
  if (outcome.status === 'ok') {
    try {
      return responseOf(outcome, limit);
    } catch (err) {
      return failure((err as LivelyError).code, activation, limit);
    }
  }
  return failure(outcome.status === 'timeout' ? 'LC_WORKER_TIMEOUT' : outcome.error?.code, activation, limit);
}

function failure(code: string | undefined, activation: string, limit: number): LivelyError {
  const details = { activation };
  switch (code) {
    case 'LC_WORKER_TIMEOUT': return new LivelyError('LC_WORKER_TIMEOUT', 'the worker answering this request did not answer in time', details);
    case 'LC_QUEUE_FULL': return new LivelyError('LC_QUEUE_FULL', undefined, details);
    case 'LC_SHUTTING_DOWN': return new LivelyError('LC_SHUTTING_DOWN', undefined, details);
    case 'LC_RESPONSE_TOO_LARGE': return new LivelyError('LC_RESPONSE_TOO_LARGE', responseTooLargeReason(limit), details);
    case 'LC_BAD_RESPONSE': return new LivelyError('LC_BAD_RESPONSE', "the worker's response is malformed; its activation record says how", details);
    default: return new LivelyError('LC_WORKER_ERROR', 'the worker answering this request failed; its activation record says why', details);
  }
}
