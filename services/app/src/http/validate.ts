import type { z } from 'zod';
import { AppError } from '../errors.js';

/** Parses a request body with a zod schema; a failure is a 400 that names the field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('VALIDATION', 'The request body must be a JSON object.');
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join('.') || 'body';
  throw new AppError('VALIDATION', `${field}: ${issue.message}`);
}
