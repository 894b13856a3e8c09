// The organizer's pages: the API key from the sign-in form (kept in this
// tab's sessionStorage), then the events list or one event's live
// dashboard, polled every five seconds. Everything shown is set as text.
(() => {
  const KEY = 'stampede-organizer-key';
  const POLL_MS = 5000;
  const HISTORY = 60;
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const page = document.querySelector('[data-page]');
  const problem = (text) => { $('problem').textContent = text || ''; };

  class SignInNeeded extends Error {}

  async function api(method, path, body) {
    const key = sessionStorage.getItem(KEY);
    if (!key) throw new SignInNeeded();
    const response = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      throw new SignInNeeded('That key was not accepted.');
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw Object.assign(new Error((data && data.message) || `the server answered ${response.status}`),
        { status: response.status });
    }
    return data;
  }

  function signIn(message) {
    $('content').hidden = true;
    $('sign-in').hidden = false;
    problem(message);
    $('sign-in-form').elements.key.focus();
  }

  $('sign-in-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, event.target.elements.key.value.trim());
    event.target.reset();
    $('sign-in').hidden = true;
    problem('');
    start();
  });

  // Prices as the pages and emails write them (wire::money): €1,234.50.
  const money = (cents, currency) =>
    new Intl.NumberFormat('en', { style: 'currency', currency: currency || 'EUR' }).format(cents / 100);
  const when = (iso) => new Date(iso).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });

  // --- the events list --------------------------------------------------------
  async function showEvents() {
    const { data } = await api('GET', '/api/v1/organizer/events');
    $('events').replaceChildren(...data.map((event) => {
      const row = document.createElement('tr');
      const link = document.createElement('a');
      link.href = `/organizer/events/${event.id}`;
      link.textContent = 'Dashboard';
      for (const text of [event.title, when(event.starts_at), event.status.replace('_', ' ')]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      const cell = document.createElement('td');
      cell.append(link);
      row.append(cell);
      return row;
    }));
    $('content').hidden = false;
    $('sign-out').onclick = () => { sessionStorage.removeItem(KEY); signIn(''); };
  }

  // --- charts: inline SVG, no library -------------------------------------------
  function draw(svg, series, { bars = false } = {}) {
    const width = 320;
    const height = 120;
    const top = 14;
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const shapes = [];
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', '2');
    label.setAttribute('y', '10');
    label.textContent = String(Math.round(max));
    shapes.push(label);
    const axis = document.createElementNS(SVG, 'line');
    for (const [k, v] of [['x1', 0], ['y1', height - 1], ['x2', width], ['y2', height - 1]]) axis.setAttribute(k, v);
    axis.setAttribute('class', 'axis');
    shapes.push(axis);
    for (const s of series) {
      const n = Math.max(s.values.length, 2);
      const x = (i) => (bars ? (i + 0.5) * (width / s.values.length) : (i * width) / (n - 1));
      const y = (v) => height - 1 - ((height - 1 - top) * v) / max;
      if (bars) {
        const w = Math.max(1, width / s.values.length - 2);
        s.values.forEach((v, i) => {
          const bar = document.createElementNS(SVG, 'rect');
          for (const [k, value] of [['x', x(i) - w / 2], ['y', y(v)], ['width', w], ['height', height - 1 - y(v)]]) {
            bar.setAttribute(k, value);
          }
          bar.setAttribute('class', s.kind);
          shapes.push(bar);
        });
      } else {
        const line = document.createElementNS(SVG, 'polyline');
        line.setAttribute('points', s.values.map((v, i) => `${x(i)},${y(v)}`).join(' '));
        line.setAttribute('class', s.kind);
        shapes.push(line);
      }
    }
    svg.replaceChildren(...shapes);
  }

  // --- the dashboard -------------------------------------------------------------
  const history = { admitting: [], configured: [], waiting: [], active: [], cap: [] };
  const remember = (name, value) => {
    history[name].push(value);
    if (history[name].length > HISTORY) history[name].shift();
  };
  let event = null;

  async function showDashboard() {
    const id = page.dataset.event;
    const [details, sales] = await Promise.all([
      api('GET', `/api/v1/organizer/events/${id}`),
      api('GET', `/api/v1/organizer/events/${id}/sales`),
    ]);
    event = details;
    // The waiting room's figures live at the edge, beside its Redis.
    const stats = details.queue.enabled
      ? await api('GET', `/api/v1/events/${id}/queue/stats`).catch(() => null)
      : null;
    $('title').textContent = details.title;
    $('subtitle').textContent = `${when(details.starts_at)} · ${details.status.replace('_', ' ')}`;
    const queue = details.queue;
    $('room-state').textContent = !queue.enabled
      ? 'No waiting room: buyers go straight to checkout.'
      : queue.paused ? 'Paused: nobody new is admitted; people in line keep their place.'
        : `Admitting up to ${queue.new_users_per_minute} per minute, at most ${queue.total_active_users} at checkout.`;
    $('pause').textContent = queue.paused ? 'Resume the sale' : 'Pause the sale';
    $('pause').disabled = !queue.enabled;
    const form = $('rate').elements;
    if (document.activeElement !== form.rate && document.activeElement !== form.cap) {
      form.rate.value = queue.new_users_per_minute;
      form.cap.value = queue.total_active_users;
    }

    if (stats) {
      remember('admitting', stats.admission_rate_per_minute);
      remember('configured', stats.configured_rate_per_minute);
      remember('waiting', stats.waiting);
      remember('active', stats.active_sessions);
      remember('cap', stats.total_active_users);
      $('waiting').textContent = stats.waiting;
      $('admitting').textContent = stats.admission_rate_per_minute;
      $('admit-goal').textContent = `of ${stats.configured_rate_per_minute}`;
      $('active').textContent = stats.active_sessions;
      $('cap').textContent = `of ${stats.total_active_users}`;
      $('queue-note').textContent = '';
    } else {
      $('queue-note').textContent = queue.enabled
        ? 'Queue figures come from the edge: open this dashboard through the site\'s public address.'
        : '';
    }
    draw($('chart-admissions'), [
      { values: history.admitting, kind: 'measured' }, { values: history.configured, kind: 'goal' }]);
    draw($('chart-waiting'), [{ values: history.waiting, kind: 'measured' }]);
    draw($('chart-active'), [{ values: history.active, kind: 'measured' }, { values: history.cap, kind: 'goal' }]);

    // Orders per minute over the last 30 minutes, minutes without orders as zero.
    const now = Math.floor(Date.now() / 60000);
    const perMinute = new Map(sales.per_minute.map((m) => [Math.floor(Date.parse(m.minute) / 60000), m.orders]));
    const minutes = Array.from({ length: 30 }, (_, i) => perMinute.get(now - 29 + i) || 0);
    draw($('chart-sales'), [{ values: minutes, kind: 'bar' }], { bars: true });
    $('sales-rate').textContent = `${minutes[29] || minutes[28] || 0} orders`;
    $('sold').textContent = sales.tickets_sold;
    $('capacity').textContent = `of ${sales.seats_total}`;
    $('revenue').textContent = money(sales.revenue_cents, sales.currency);

    $('sections').replaceChildren(...sales.sections.map((s) => {
      const item = document.createElement('li');
      const name = document.createElement('span');
      name.textContent = `${s.name}: ${s.booked} sold, ${s.held} held, ${s.available} free of ${s.total}`;
      const bar = document.createElement('span');
      bar.className = 'bar';
      for (const [kind, count] of [['sold', s.booked], ['held', s.held], ['free', s.available]]) {
        const part = document.createElement('span');
        part.className = kind;
        part.style.width = `${(100 * count) / Math.max(1, s.total)}%`;
        bar.append(part);
      }
      item.append(name, bar);
      return item;
    }));
    $('content').hidden = false;
  }

  async function changeQueue(change, said) {
    try {
      await api('PATCH', `/api/v1/organizer/events/${page.dataset.event}/queue`, change);
      // Said once the dashboard shows the new state, not before.
      await showDashboard();
      $('saved').textContent = said;
    } catch (e) {
      if (e instanceof SignInNeeded) signIn(e.message); else problem(e.message);
    }
  }

  if (page.dataset.page === 'dashboard') {
    $('pause').addEventListener('click', () => {
      const paused = !event.queue.paused;
      changeQueue({ paused }, paused ? 'The sale is paused.' : 'The sale runs again.');
    });
    $('rate').addEventListener('submit', (e) => {
      e.preventDefault();
      const form = e.target.elements;
      changeQueue({ new_users_per_minute: Number(form.rate.value), total_active_users: Number(form.cap.value) },
        'Saved: the waiting room follows within seconds.');
    });
  }

  let polling = null;
  async function start() {
    clearTimeout(polling);
    try {
      await (page.dataset.page === 'events' ? showEvents() : showDashboard());
      problem('');
      if (page.dataset.page === 'dashboard') polling = setTimeout(start, POLL_MS);
    } catch (e) {
      if (e instanceof SignInNeeded) {
        signIn(e.message);
      } else {
        problem(e.message);
        polling = setTimeout(start, POLL_MS);
      }
    }
  }
  start();
})();
