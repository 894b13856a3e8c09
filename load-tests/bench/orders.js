// Benchmark of whole orders straight at the origin (used by `cargo xtask
// bench`, which creates the event): every iteration is a new buyer who
// takes a buyer session, holds one best-available seat in a random section
// and pays for it with the sandbox's test card.
//
// Environment: ORIGIN_URL, EVENT_ID (on sale, no waiting room), SECTIONS
// (comma-separated ids), VUS (16), SECONDS (10).
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';

const ORIGIN = __ENV.ORIGIN_URL;
const EVENT = __ENV.EVENT_ID;
const SECTIONS = (__ENV.SECTIONS || '').split(',');

// From the buyer session to the paid order.
const orderDuration = new Trend('order_duration', true);
const orders = new Counter('orders');

export const options = {
  scenarios: {
    orders: { executor: 'constant-vus', vus: Number(__ENV.VUS || 16), duration: `${__ENV.SECONDS || 10}s` },
  },
  summaryTrendStats: ['med', 'p(99)'],
  thresholds: {
    'http_req_failed{kind:commit}': ['rate<0.01'],
    'http_req_failed{kind:hold}': ['rate<0.01'],
    order_duration: ['p(99)<10000'],
    // Reported per step in the summary.
    'http_req_duration{kind:hold}': ['p(99)<10000'],
    'http_req_duration{kind:commit}': ['p(99)<10000'],
    'http_req_duration{kind:session}': ['p(99)<10000'],
  },
};

// Keys unique across runs on the same database.
const RUN = Date.now();

export default function () {
  const started = Date.now();
  const issued = http.post(`${ORIGIN}/api/v1/buyer-sessions`, null, { tags: { kind: 'session' } });
  if (issued.status !== 201) throw new Error(`no buyer session: ${issued.status}`);
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${issued.json().buyer_token}` };
  const held = http.post(
    `${ORIGIN}/api/v1/events/${EVENT}/reservations`,
    JSON.stringify({
      client_reservation_id: `${String(__VU).padStart(8, '0')}-0000-4000-8000-${String(__ITER).padStart(12, '0')}`,
      section_id: SECTIONS[Math.floor(Math.random() * SECTIONS.length)],
      quantity: 1,
    }),
    { headers, tags: { kind: 'hold' } },
  );
  if (held.status !== 201) return;
  const paid = http.post(
    `${ORIGIN}/api/v1/reservations/${held.json().reservation_id}/commit`,
    JSON.stringify({ payment_method_id: 'pm_card_visa', billing_details: { name: 'Bench Buyer', email: 'bench@example.com' } }),
    { headers: { ...headers, 'Idempotency-Key': `bench-${RUN}-${__VU}-${__ITER}` }, tags: { kind: 'commit' } },
  );
  if (paid.status === 200) {
    orders.add(1);
    orderDuration.add(Date.now() - started);
  }
}
