// Flash sale: an open-model crowd arrives at a queue-protected event, waits
// in the edge's waiting room, and once admitted holds 1–4 seats and pays.
//
//   k6 run --local-ips 127.1.0.0/16 -e BASE_URL=http://127.0.0.1:3000 -e EVENT_ID=<uuid> load-tests/scenarios/flash-sale.js
//
// `--local-ips` sends each virtual user from its own loopback address, so
// the edge's per-address join limit sees a crowd, not one address.
//
// Environment: BASE_URL, EVENT_ID (required); PEAK_RATE (arrivals per
// second at the peak, 50), RAMP (s, 10), HOLD (s at the peak, 20),
// MAX_WAIT (s a visitor waits in the queue before giving up, 120),
// HOT_SEATS (how many seats everyone fights over, 20), P95_MS (one p95
// latency bound for every request kind instead of the per-kind defaults),
// LATENCY=off (no latency thresholds: for smoke runs on a loaded machine;
// the correctness thresholds always apply), MIN_PAID_SHARE (0.95: of the
// admitted visitors who held seats and paid with a good card, the share
// that must end with an order), MAX_REFUSED_JOINS (0.01: the share of joins
// the per-address limit may refuse before the run fails).
//
// An admitted visitor refused at the gate (202, 401, 403) fails the run: a
// 2xx from the waiting room is not a success for checkout.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { randomIntBetween, uuidv4 } from './lib.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:3000';
const EVENT = __ENV.EVENT_ID;
const PEAK = Number(__ENV.PEAK_RATE || 50);
const RAMP = Number(__ENV.RAMP || 10);
const HOLD = Number(__ENV.HOLD || 20);
const MAX_WAIT = Number(__ENV.MAX_WAIT || 120);
const HOT_SEATS = Number(__ENV.HOT_SEATS || 20);
const P95 = __ENV.P95_MS ? Number(__ENV.P95_MS) : null;
const LATENCY = __ENV.LATENCY !== 'off';
const MIN_PAID_SHARE = Number(__ENV.MIN_PAID_SHARE || 0.95);
const MAX_REFUSED_JOINS = Number(__ENV.MAX_REFUSED_JOINS || 0.01);
const latency = (p95, p99) => [`p(95)<${P95 || p95}`, `p(99)<${P95 ? P95 * 2 : p99}`];

const ticketsSold = new Counter('tickets_sold');
const holdConflicts = new Counter('hold_conflicts');
const gaveUp = new Counter('gave_up_waiting');
const queueWait = new Trend('queue_wait_seconds');
// Checkout answers that say the admitted visitor was not let through.
const gateRefusals = new Counter('gate_refusals');
// Holds answered 201, or refused for a reason a sale expects (seat taken,
// not enough left: 409; a limit: 429). Anything else is a failure.
const holdsAsExpected = new Rate('holds_answered_as_expected');
// Of the visitors who paid with a good card, those who got their order.
const goodCardsPaid = new Rate('good_cards_paid');
// Joins the per-address limit refused (429): a crowd sent from one address
// would be refused from the 31st join a minute on.
const joinsRefused = new Rate('joins_refused');
// Status polls, so a run can be costed per poll.
const polls = new Counter('queue_polls');

export const options = {
  scenarios: {
    flash_sale: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      preAllocatedVUs: Math.max(10, PEAK * 4),
      maxVUs: Math.max(50, PEAK * 20),
      stages: [
        { target: PEAK, duration: `${RAMP}s` },
        { target: PEAK, duration: `${HOLD}s` },
        { target: 0, duration: `${Math.max(1, Math.round(RAMP / 2))}s` },
      ],
      gracefulStop: `${MAX_WAIT}s`,
    },
  },
  thresholds: Object.assign(
    {
      // 402 (declined), 409 (seat taken), 429 (limits) are expected answers.
      http_req_failed: ['rate<0.01'],
      'checks{kind:no_5xx}': ['rate==1'],
      gate_refusals: ['count==0'],
      holds_answered_as_expected: ['rate==1'],
      good_cards_paid: [`rate>=${MIN_PAID_SHARE}`],
      joins_refused: [`rate<=${MAX_REFUSED_JOINS}`],
      dropped_iterations: [`count<${Math.max(10, PEAK * 2)}`],
    },
    LATENCY
      ? {
          'http_req_duration{kind:join}': latency(500, 1000),
          'http_req_duration{kind:poll}': latency(500, 1000),
          'http_req_duration{kind:hold}': latency(1000, 2000),
          'http_req_duration{kind:commit}': latency(2000, 4000),
        }
      : {},
  ),
};

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 402, 409, 429));

function noServerError(response) {
  if (!check(response, { 'no 5xx': (r) => r.status < 500 }, { kind: 'no_5xx' })) {
    // In the run's log, so a failed threshold says which request and why.
    console.error(`${response.request.method} ${response.url}: ${response.status} ${String(response.body).slice(0, 300)}`);
  }
  return response;
}

// A checkout request of an admitted visitor: the gate must let it through.
function passedGate(response) {
  if ([202, 401, 403].includes(response.status)) gateRefusals.add(1);
  return noServerError(response);
}

function json(response) {
  try {
    return response.json();
  } catch (_) {
    return {};
  }
}

// The seat map of a big venue is large (a 5,300-seat arena is ~800 KB):
// setup() enters through the waiting room once and keeps what visitors
// need, section ids and the hot seats, for every VU.
export function setup() {
  if (!EVENT) throw new Error('set EVENT_ID');
  let state = json(http.post(`${BASE}/api/v1/events/${EVENT}/queue/join`));
  for (let polls = 0; state.state !== 'admitted' && polls < 120; polls++) {
    sleep(Math.min(state.refresh_after_seconds || 1, 5));
    state = json(http.get(`${BASE}/api/v1/events/${EVENT}/queue/status`, { headers: { Authorization: `Bearer ${state.queue_token}` } }));
  }
  const access = { Authorization: `Bearer ${state.access_token}` };
  const map = json(http.get(`${BASE}/api/v1/events/${EVENT}/seatmap`, { headers: access }));
  const sections = (map.sections || []).map((s) => s.id);
  const hotSeats = (map.sections || []).flatMap((s) => s.rows.flatMap((r) => r.seats)).slice(0, HOT_SEATS).map((seat) => seat.id);
  if (sections.length === 0) throw new Error('no seat map: is the event on sale and queue-protected?');
  http.post(`${BASE}/api/v1/events/${EVENT}/queue/leave`, null, { headers: access });
  return { sections, hotSeats };
}

export default function (map) {
  // Every iteration is a new visitor: no cookies from the last one.
  http.cookieJar().clear(BASE);
  const started = Date.now();
  const joined = noServerError(http.post(`${BASE}/api/v1/events/${EVENT}/queue/join`, null, { tags: { kind: 'join' } }));
  joinsRefused.add(joined.status === 429);
  if (joined.status === 429) return;
  let state = json(joined);
  const auth = { Authorization: `Bearer ${state.queue_token}` };
  while (state.state !== 'admitted') {
    if (['sold_out', 'closed'].includes(state.state) || (Date.now() - started) / 1000 > MAX_WAIT) {
      gaveUp.add(1);
      return;
    }
    sleep(Math.min(state.refresh_after_seconds || 1, 5));
    polls.add(1);
    state = json(noServerError(http.get(`${BASE}/api/v1/events/${EVENT}/queue/status`, { headers: auth, tags: { kind: 'poll' } })));
  }
  queueWait.add((Date.now() - started) / 1000);
  const access = { Authorization: `Bearer ${state.access_token}`, 'Content-Type': 'application/json' };

  const quantity = randomIntBetween(1, 4);
  let hold;
  if (Math.random() < 0.3) {
    // Explicit seats from a small hot set: conflicts on purpose.
    const wanted = Array.from({ length: quantity }, () => map.hotSeats[randomIntBetween(0, map.hotSeats.length - 1)]);
    hold = { client_reservation_id: uuidv4(), seat_ids: [...new Set(wanted)] };
  } else {
    const section = map.sections[randomIntBetween(0, map.sections.length - 1)];
    hold = { client_reservation_id: uuidv4(), section_id: section, quantity };
  }
  const held = passedGate(http.post(`${BASE}/api/v1/events/${EVENT}/reservations`, JSON.stringify(hold), { headers: access, tags: { kind: 'hold' } }));
  holdsAsExpected.add([201, 409, 429].includes(held.status));
  if (held.status === 409) {
    holdConflicts.add(1);
    return;
  }
  if (held.status !== 201) return;
  const reservation = json(held);

  const roll = Math.random();
  if (roll < 0.1) {
    passedGate(http.del(`${BASE}/api/v1/reservations/${reservation.reservation_id}`, null, { headers: access, tags: { kind: 'release' } }));
    return;
  }
  if (roll < 0.15) return; // abandoned: the hold lapses
  const card = Math.random() < 0.1 ? 'pm_card_chargeDeclined' : 'pm_card_visa';
  const body = JSON.stringify({ payment_method_id: card, billing_details: { name: 'Load Test', email: 'load@example.com' } });
  const key = uuidv4();
  const commit = () =>
    passedGate(http.post(`${BASE}/api/v1/reservations/${reservation.reservation_id}/commit`, body, {
      headers: Object.assign({ 'Idempotency-Key': key }, access),
      tags: { kind: 'commit' },
    }));
  let paid = commit();
  if (Math.random() < 0.2) paid = commit(); // a retry with the same key changes nothing
  if (card === 'pm_card_visa') goodCardsPaid.add(paid.status === 200);
  if (card === 'pm_card_visa' && paid.status !== 200) console.error(`a good card was not charged: ${paid.status} ${paid.body}`);
  if (paid.status === 200) {
    ticketsSold.add((json(paid).tickets || []).length);
  }
}
