// Browse: the catalog list and event pages at a ramping arrival rate, as a
// crowd reloading the event page before a sale does.
//
//   k6 run -e BASE_URL=http://127.0.0.1:3000 -e EVENT_ID=<uuid> load-tests/scenarios/browse.js
//
// Environment: BASE_URL, EVENT_ID (required); PEAK_RATE (requests per second
// at the peak, 200), RAMP (s, 10), HOLD (s, 30), P95_MS (p95 bound, 200),
// LATENCY=off (no latency thresholds, for smoke runs).
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:3000';
const EVENT = __ENV.EVENT_ID;
const PEAK = Number(__ENV.PEAK_RATE || 200);
const RAMP = Number(__ENV.RAMP || 10);
const HOLD = Number(__ENV.HOLD || 30);
const P95 = Number(__ENV.P95_MS || 200);
const LATENCY = __ENV.LATENCY !== 'off';

export const options = {
  scenarios: {
    browse: {
      executor: 'ramping-arrival-rate',
      startRate: 0,
      timeUnit: '1s',
      preAllocatedVUs: Math.max(10, PEAK / 2),
      maxVUs: Math.max(50, PEAK * 2),
      stages: [
        { target: PEAK, duration: `${RAMP}s` },
        { target: PEAK, duration: `${HOLD}s` },
      ],
    },
  },
  thresholds: Object.assign({
    http_req_failed: ['rate<0.01'],
    dropped_iterations: [`count<${Math.max(10, PEAK)}`],
    // Every page is served: a cached page, or a fresh one.
    'checks{page:event}': ['rate==1'],
    'checks{page:list}': ['rate==1'],
  }, LATENCY ? {
    'http_req_duration{page:event}': [`p(95)<${P95}`],
    'http_req_duration{page:list}': [`p(95)<${P95}`],
  } : {}),
};

export default function () {
  const event = Math.random() < 0.8;
  const response = event
    ? http.get(`${BASE}/events/${EVENT}`, { headers: { Accept: 'text/html' }, tags: { page: 'event' } })
    : http.get(`${BASE}/events?city=Berlin`, { headers: { Accept: 'text/html' }, tags: { page: 'list' } });
  check(response, { 'page served': (r) => r.status === 200 }, { page: event ? 'event' : 'list' });
}
