// Benchmark of whole orders straight at the origin (used by `cargo xtask
// bench`): every iteration is a new buyer who takes a buyer session, holds
// one best-available seat in a random section and pays for it with the
// sandbox's test card. `setup` builds a venue large enough that the run
// never sells out, and an event without a waiting room.
//
// Environment: ORIGIN_URL, API_KEY (an organizer's), VUS (16), SECONDS (20),
// SECTIONS (40 sections of 40 rows × 50 seats).
import http from 'k6/http';
import { Counter, Trend } from 'k6/metrics';

const ORIGIN = __ENV.ORIGIN_URL;
const SECTION_COUNT = Number(__ENV.SECTIONS || 40);

// From the buyer session to the paid order.
const orderDuration = new Trend('order_duration', true);
const orders = new Counter('orders');

export const options = {
  scenarios: {
    orders: { executor: 'constant-vus', vus: Number(__ENV.VUS || 16), duration: `${__ENV.SECONDS || 20}s` },
  },
  summaryTrendStats: ['med', 'p(99)'],
  setupTimeout: '120s',
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

function organizer(method, path, body) {
  const response = http.request(method, `${ORIGIN}${path}`, body === undefined ? null : JSON.stringify(body), {
    headers: { Authorization: `Bearer ${__ENV.API_KEY}`, 'Content-Type': 'application/json' },
    tags: { kind: 'setup' },
  });
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${response.body}`);
  return response.status === 204 ? null : response.json();
}

export function setup() {
  const rows = Array.from({ length: 40 }, (_, i) => ({ label: `R${i + 1}`, seats: 50 }));
  const venue = organizer('POST', '/api/v1/organizer/venues', {
    name: 'Bench Stadium',
    city: 'Berlin',
    timezone: 'Europe/Berlin',
    tiers: [{ name: 'Standard', price_cents: 5000, currency: 'EUR' }],
    sections: Array.from({ length: SECTION_COUNT }, (_, i) => ({ name: `S${i + 1}`, tier: 'Standard', rows })),
  });
  const now = Date.now();
  const event = organizer('POST', '/api/v1/organizer/events', {
    venue_id: venue.id,
    title: 'Bench orders',
    category: 'music',
    starts_at: new Date(now + 30 * 86400e3).toISOString(),
    sale_starts_at: new Date(now - 60e3).toISOString(),
    sale_ends_at: new Date(now + 86400e3).toISOString(),
  });
  organizer('POST', `/api/v1/organizer/events/${event.id}/publish`);
  return { event: event.id, sections: venue.sections.map((s) => s.id) };
}

export default function (sale) {
  const started = Date.now();
  const issued = http.post(`${ORIGIN}/api/v1/buyer-sessions`, null, { tags: { kind: 'session' } });
  if (issued.status !== 201) throw new Error(`no buyer session: ${issued.status}`);
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${issued.json().buyer_token}` };
  const held = http.post(
    `${ORIGIN}/api/v1/events/${sale.event}/reservations`,
    JSON.stringify({
      client_reservation_id: `${String(__VU).padStart(8, '0')}-0000-4000-8000-${String(__ITER).padStart(12, '0')}`,
      section_id: sale.sections[Math.floor(Math.random() * sale.sections.length)],
      quantity: 1,
    }),
    { headers, tags: { kind: 'hold' } },
  );
  if (held.status !== 201) return;
  const paid = http.post(
    `${ORIGIN}/api/v1/reservations/${held.json().reservation_id}/commit`,
    JSON.stringify({ payment_method_id: 'pm_card_visa', billing_details: { name: 'Bench Buyer', email: 'bench@example.com' } }),
    { headers: { ...headers, 'Idempotency-Key': `bench-${__VU}-${__ITER}` }, tags: { kind: 'commit' } },
  );
  if (paid.status === 200) {
    orders.add(1);
    orderDuration.add(Date.now() - started);
  }
}
