/**
 * Admission control (src/processing/admission.ts) on the routes that open upload sessions: the
 * gate runs before authentication, so a refusal under overload (503 processing_backlog +
 * Retry-After) costs one cached comparison and no database statement.
 */
import type { onRequestAsyncHookHandler } from 'fastify';
import type { Admission } from '../processing/admission.ts';

export function admittedThen(
  admission: Admission | undefined,
  auth: onRequestAsyncHookHandler,
): onRequestAsyncHookHandler | onRequestAsyncHookHandler[] {
  return admission ? [async () => admission.check(), auth] : auth;
}
