import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DeliveryRow, SubscriptionRow } from '../../webhooks/repo.ts';
import { WEBHOOK_EVENT_TYPES, type WebhookService } from '../../webhooks/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { errors, Nullable, Uuid } from '../schemas.ts';

export interface WebhookRouteDeps {
  webhooks: WebhookService;
  auth: ReturnType<typeof registerAuth>;
}

const EventType = Type.Union(
  WEBHOOK_EVENT_TYPES.map((t) => Type.Literal(t)),
  { description: 'An event type a webhook can carry.' },
);
const Url = Type.String({
  minLength: 8,
  maxLength: 2000,
  description: 'http(s) URL that receives the POSTs.',
});
const Events = Type.Array(EventType, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length });

const SubscriptionView = Type.Object({
  webhookId: Uuid,
  url: Type.String(),
  events: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  disabledReason: Nullable(Type.String()),
  failuresInRow: Type.Integer({ description: 'Deliveries given up in a row (reset by a success).' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
const CreatedView = Type.Intersect([
  SubscriptionView,
  Type.Object({
    secret: Type.String({ description: 'whsec_… signing secret (Standard Webhooks). Shown only here.' }),
  }),
]);
const DeliveryView = Type.Object({
  deliveryId: Uuid,
  webhookMessageId: Type.String({ description: 'The `webhook-id` header: the same on every attempt.' }),
  eventId: Type.String(),
  eventType: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
  attempts: Type.Integer(),
  responseStatus: Nullable(Type.Integer()),
  latencyMs: Nullable(Type.Integer()),
  lastError: Nullable(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  lastAttemptAt: Nullable(Type.String({ format: 'date-time' })),
  nextAttemptAt: Nullable(Type.String({ format: 'date-time' })),
  deliveredAt: Nullable(Type.String({ format: 'date-time' })),
});

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const toView = (s: SubscriptionRow): Static<typeof SubscriptionView> => ({
  webhookId: s.id,
  url: s.url,
  events: s.event_types,
  enabled: s.enabled,
  disabledReason: s.disabled_reason,
  failuresInRow: s.failures_in_row,
  createdAt: s.created_at.toISOString(),
  updatedAt: s.updated_at.toISOString(),
});
const toDeliveryView = (d: DeliveryRow): Static<typeof DeliveryView> => ({
  deliveryId: d.id,
  webhookMessageId: `msg_${d.id}`,
  eventId: String(d.event_id),
  eventType: d.event_type,
  status: d.status,
  attempts: d.attempts,
  responseStatus: d.response_status,
  latencyMs: d.latency_ms,
  lastError: d.last_error,
  createdAt: d.created_at.toISOString(),
  lastAttemptAt: iso(d.last_attempt_at),
  nextAttemptAt: iso(d.next_attempt_at),
  deliveredAt: iso(d.delivered_at),
});

const Params = Type.Object({ id: Uuid });
const tags = ['webhooks'];

/** Webhook subscriptions of the caller (a user, or a device for what it uploads itself). */
export const webhookRoutes: FastifyPluginAsyncTypebox<WebhookRouteDeps> = async (app, { webhooks, auth }) => {
  app.post(
    '/webhooks',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Subscribe a URL to events (the signing secret is in this answer only)',
        tags,
        operationId: 'createWebhook',
        body: Type.Object({ url: Url, events: Events }, { additionalProperties: false }),
        response: { 201: CreatedView, ...errors(400, 401, 422) },
      },
    },
    async (request, reply) => {
      const { row, secret } = await webhooks.create(principalOf(request), request.body);
      return reply.code(201).send({ ...toView(row), secret });
    },
  );
  app.get(
    '/webhooks',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Your webhook subscriptions',
        tags,
        operationId: 'listWebhooks',
        response: { 200: Type.Object({ items: Type.Array(SubscriptionView) }), ...errors(401) },
      },
    },
    async (request) => ({ items: (await webhooks.list(principalOf(request))).map(toView) }),
  );
  app.get(
    '/webhooks/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'One webhook subscription',
        tags,
        operationId: 'getWebhook',
        params: Params,
        response: { 200: SubscriptionView, ...errors(400, 401, 404) },
      },
    },
    async (request) => toView(await webhooks.get(principalOf(request), request.params.id)),
  );
  app.patch(
    '/webhooks/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Change the URL or events, or enable/disable (enabling resets the failure count)',
        tags,
        operationId: 'updateWebhook',
        params: Params,
        body: Type.Object(
          { url: Type.Optional(Url), events: Type.Optional(Events), enabled: Type.Optional(Type.Boolean()) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: SubscriptionView, ...errors(400, 401, 404, 422) },
      },
    },
    async (request) => toView(await webhooks.update(principalOf(request), request.params.id, request.body)),
  );
  app.delete(
    '/webhooks/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Unsubscribe (its delivery log goes too)',
        tags,
        operationId: 'deleteWebhook',
        params: Params,
        response: { 204: Type.Null({ description: 'Deleted.' }), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await webhooks.remove(principalOf(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
  app.get(
    '/webhooks/:id/deliveries',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Delivery log, newest first',
        tags,
        operationId: 'listWebhookDeliveries',
        params: Params,
        querystring: Type.Object(
          { limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ items: Type.Array(DeliveryView) }), ...errors(400, 401, 404) },
      },
    },
    async (request) => ({
      items: (await webhooks.deliveries(principalOf(request), request.params.id, request.query.limit)).map(
        toDeliveryView,
      ),
    }),
  );
  app.post(
    '/webhooks/:id/deliveries/:deliveryId/redeliver',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Send a delivery again (same webhook-id; attempts start afresh)',
        tags,
        operationId: 'redeliverWebhook',
        params: Type.Object({ id: Uuid, deliveryId: Uuid }),
        response: { 202: DeliveryView, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      const d = await webhooks.redeliver(principalOf(request), request.params.id, request.params.deliveryId);
      return reply.code(202).send(toDeliveryView(d));
    },
  );
};
