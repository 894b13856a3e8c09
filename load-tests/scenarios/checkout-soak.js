// Checkout soak: buyers arrive at a steady rate for several minutes, pass
// the waiting room, hold seats with the shortest TTL, and pay, release, or
// walk away so holds keep expiring under load (the origin's sweeper frees
// them). Run the sales invariants afterwards: `origin-inventory check`.
//
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e EVENT_ID=<uuid> load-tests/scenarios/checkout-soak.js
//
// Environment: BASE_URL, EVENT_ID (required); RATE (buyers per second, 5),
// DURATION (s, 300), P95_MS (p95 bound of holds and commits, 1000),
// LATENCY=off (no latency thresholds, for smoke runs). An admitted buyer
// refused at the gate (202, 401, 403), a hold answered other than 201, 409
// or 429, or a paid hold without its order fails the run.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import { randomIntBetween, uuidv4 } from './lib.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:3000';
const EVENT = __ENV.EVENT_ID;
const RATE = Number(__ENV.RATE || 5);
const DURATION = Number(__ENV.DURATION || 300);
const P95 = Number(__ENV.P95_MS || 1000);
const LATENCY = __ENV.LATENCY !== 'off';

const ticketsSold = new Counter('tickets_sold');
const holdConflicts = new Counter('hold_conflicts');
const holdsLeftToExpire = new Counter('holds_left_to_expire');
const gateRefusals = new Counter('gate_refusals');
const holdsAsExpected = new Rate('holds_answered_as_expected');
const paid = new Rate('good_cards_paid');

export const options = {
  scenarios: {
    checkout_soak: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${DURATION}s`,
      preAllocatedVUs: Math.max(10, RATE * 10),
      maxVUs: Math.max(50, RATE * 40),
    },
  },
  thresholds: Object.assign(
    {
      http_req_failed: ['rate<0.01'],
      'checks{kind:no_5xx}': ['rate==1'],
      gate_refusals: ['count==0'],
      holds_answered_as_expected: ['rate==1'],
      good_cards_paid: ['rate>=0.95'],
    },
    LATENCY
      ? {
          'http_req_duration{kind:hold}': [`p(95)<${P95}`],
          'http_req_duration{kind:commit}': [`p(95)<${P95 * 2}`],
        }
      : {},
  ),
};

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 402, 409, 429));

function call(response) {
  check(response, { 'no 5xx': (r) => r.status < 500 }, { kind: 'no_5xx' });
  if (response.request.url.indexOf('/queue/') < 0 && [202, 401, 403].includes(response.status)) gateRefusals.add(1);
  try {
    return [response.status, response.json()];
  } catch (_) {
    return [response.status, {}];
  }
}

export default function () {
  http.cookieJar().clear(BASE);
  let [, state] = call(http.post(`${BASE}/api/v1/events/${EVENT}/queue/join`));
  const auth = { Authorization: `Bearer ${state.queue_token}` };
  for (let polls = 0; state.state !== 'admitted'; polls++) {
    if (polls > 60 || ['sold_out', 'closed'].includes(state.state)) return;
    sleep(Math.min(state.refresh_after_seconds || 1, 5));
    [, state] = call(http.get(`${BASE}/api/v1/events/${EVENT}/queue/status`, { headers: auth }));
  }
  const access = { Authorization: `Bearer ${state.access_token}`, 'Content-Type': 'application/json' };
  const [, map] = call(http.get(`${BASE}/api/v1/events/${EVENT}/seatmap`, { headers: access }));
  const sections = map.sections || [];
  if (sections.length === 0) return;
  const section = sections[randomIntBetween(0, sections.length - 1)];
  const hold = { client_reservation_id: uuidv4(), section_id: section.id, quantity: randomIntBetween(1, 2), ttl_seconds: 60 };
  const [status, reservation] = call(
    http.post(`${BASE}/api/v1/events/${EVENT}/reservations`, JSON.stringify(hold), { headers: access, tags: { kind: 'hold' } }),
  );
  holdsAsExpected.add([201, 409, 429].includes(status));
  if (status === 409) holdConflicts.add(1);
  if (status !== 201) return;
  const roll = Math.random();
  if (roll < 0.3) {
    holdsLeftToExpire.add(1);
    return;
  }
  if (roll < 0.4) {
    call(http.del(`${BASE}/api/v1/reservations/${reservation.reservation_id}`, null, { headers: access }));
    return;
  }
  const body = JSON.stringify({ payment_method_id: 'pm_card_visa', billing_details: { name: 'Soak', email: 'soak@example.com' } });
  const [committed, order] = call(
    http.post(`${BASE}/api/v1/reservations/${reservation.reservation_id}/commit`, body, {
      headers: Object.assign({ 'Idempotency-Key': uuidv4() }, access),
      tags: { kind: 'commit' },
    }),
  );
  paid.add(committed === 200);
  if (committed === 200) ticketsSold.add((order.tickets || []).length);
}
