import * as grpc from '@grpc/grpc-js';
import { isDatabaseUnavailable, isDataException } from '../db/pool.ts';
import { AppError, ERRORS, type ErrorCode } from '../errors.ts';
import { isStoreUnavailable } from '../storage/errors.ts';

/**
 * gRPC status of each HTTP status in our error table: one mapping, so every code of the table has
 * exactly one gRPC status (a test walks the table). The code itself travels in the
 * `mediary-error-code` trailer, its details as JSON in `mediary-error-details`.
 */
export const GRPC_STATUS_OF_HTTP: Readonly<Record<number, grpc.status>> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  405: grpc.status.UNIMPLEMENTED,
  408: grpc.status.DEADLINE_EXCEEDED,
  409: grpc.status.FAILED_PRECONDITION,
  410: grpc.status.FAILED_PRECONDITION,
  412: grpc.status.FAILED_PRECONDITION,
  413: grpc.status.INVALID_ARGUMENT,
  415: grpc.status.INVALID_ARGUMENT,
  416: grpc.status.OUT_OF_RANGE,
  422: grpc.status.INVALID_ARGUMENT,
  423: grpc.status.ABORTED,
  429: grpc.status.RESOURCE_EXHAUSTED,
  431: grpc.status.INVALID_ARGUMENT,
  460: grpc.status.INVALID_ARGUMENT,
  500: grpc.status.INTERNAL,
  503: grpc.status.UNAVAILABLE,
  507: grpc.status.RESOURCE_EXHAUSTED,
};

export function grpcStatusOf(code: ErrorCode): grpc.status {
  return GRPC_STATUS_OF_HTTP[ERRORS[code].status] ?? grpc.status.UNKNOWN;
}

/** Any thrown value as a gRPC error; Postgres' data exceptions (class 22) are the caller's. */
export function toGrpcError(err: unknown): Partial<grpc.StatusObject> {
  let app: AppError;
  if (err instanceof AppError) app = err;
  else if (isDataException(err))
    app = new AppError('validation_failed', 'A value is out of range or not storable text.');
  else if (isDatabaseUnavailable(err) || isStoreUnavailable(err)) app = new AppError('service_unavailable');
  else app = new AppError('internal');
  const metadata = new grpc.Metadata();
  metadata.set('mediary-error-code', app.code);
  if (app.details !== undefined) metadata.set('mediary-error-details', JSON.stringify(app.details));
  return { code: grpcStatusOf(app.code), details: app.message, metadata };
}
