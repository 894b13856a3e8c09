// Benchmark of the origin's seat holds (used by `cargo xtask bench`): each
// iteration holds one best-available seat in a random section, then
// releases it, so the event never runs out. Each virtual user is one buyer
// with a session from the origin.
//
// Environment: ORIGIN_URL, EVENT_ID, SECTIONS (comma-separated ids),
// VUS (32), SECONDS (10).
import http from 'k6/http';

const ORIGIN = __ENV.ORIGIN_URL;
const EVENT = __ENV.EVENT_ID;
const SECTIONS = (__ENV.SECTIONS || '').split(',');

export const options = {
  scenarios: {
    holds: { executor: 'constant-vus', vus: Number(__ENV.VUS || 32), duration: `${__ENV.SECONDS || 10}s` },
  },
  summaryTrendStats: ['med', 'p(99)'],
  // A threshold per tagged metric makes k6 report it in the summary.
  thresholds: { 'http_req_failed{kind:hold}': ['rate<0.01'], 'http_req_duration{kind:hold}': ['p(99)<10000'] },
};

let session = null;

export default function () {
  if (session === null) {
    const issued = http.post(`${ORIGIN}/api/v1/buyer-sessions`, null, { tags: { kind: 'session' } });
    if (issued.status !== 201) throw new Error(`no buyer session: ${issued.status}`);
    session = issued.json().buyer_token;
  }
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${session}` };
  const body = JSON.stringify({
    client_reservation_id: `${String(__VU).padStart(8, '0')}-0000-4000-8000-${String(__ITER).padStart(12, '0')}`,
    section_id: SECTIONS[Math.floor(Math.random() * SECTIONS.length)],
    quantity: 1,
  });
  const held = http.post(`${ORIGIN}/api/v1/events/${EVENT}/reservations`, body, { headers, tags: { kind: 'hold' } });
  if (held.status === 201) {
    http.del(`${ORIGIN}/api/v1/reservations/${held.json().reservation_id}`, null, { headers, tags: { kind: 'release' } });
  }
}
