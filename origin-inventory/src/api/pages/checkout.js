// The checkout page: an overview of sections, one section's seats at a
// time (mouse, touch or arrow keys), best available in one tap, hold, pay.
// Talks to the same JSON API as apps do.
(() => {
  const config = JSON.parse(document.getElementById('checkout-config').textContent);
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const PITCH = 28;
  const LABEL_WIDTH = 44;
  const SEATS_PER_LINE = 30;

  // Every seat of the event by id: {id, section, row, number, status, tier,
  // price_cents, accessible, place}. Filled from the seat-map API.
  const seatsById = new Map();
  // Free seats per section: counted at each map load, then moved by each
  // change (setStatus), so a live change costs no pass over the arena.
  const free = new Map();
  let sections = [];
  let openSection = null;
  const selected = new Set();
  let reservation = null;
  let ticking = null;
  let paymentKey = null;
  let zoom = 1;

  async function api(method, path, body, headers = {}) {
    const response = await fetch(path, {
      method,
      credentials: 'same-origin',
      // The seat map revalidates with its ETag: a 304 reuses the copy.
      cache: 'no-cache',
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const message = (data && data.message) || `the server answered ${response.status}`;
      throw Object.assign(new Error(message), { status: response.status, code: data && data.error });
    }
    return data;
  }

  // One sentence, one full stop, whatever the server's message ends with.
  const sentence = (text) => text.replace(/[.\s]+$/, '') + '.';
  const problem = (message) => { $('problem').textContent = message || ''; };
  const payProblem = (message) => { $('pay-problem').textContent = message || ''; };
  // Prices as the pages and emails write them (wire::money): €1,234.50.
  const priceFormat = new Intl.NumberFormat('en', { style: 'currency', currency: config.currency });
  const money = (cents) => priceFormat.format(cents / 100);
  const seatElement = (id) => $('seat-map').querySelector(`.seat[data-seat="${id}"]`);

  function placeOf(seat, section) {
    return section.general_admission
      ? `${section.name}, standing place ${seat.number}`
      : `${section.name}, row ${seat.row}, seat ${seat.number}`;
  }

  function loadMap(map) {
    sections = map.sections;
    for (const section of sections) {
      for (const row of section.rows) for (const seat of row.seats) {
        const known = seatsById.get(seat.id);
        const entry = known || { ...seat, section: section.id, row: row.label, place: placeOf({ ...seat, row: row.label }, section) };
        entry.status = seat.status;
        seatsById.set(seat.id, entry);
      }
    }
    free.clear();
    for (const seat of seatsById.values()) {
      if (seat.status === 'AVAILABLE') free.set(seat.section, (free.get(seat.section) || 0) + 1);
    }
  }

  // --- the overview: free seats per section, kept live ---------------------
  function showCounts() {
    for (const button of document.querySelectorAll('.section-pick')) {
      const count = free.get(button.dataset.section) || 0;
      button.querySelector('[data-free]').textContent = count;
      button.classList.toggle('sold-out', count === 0);
    }
    return free;
  }

  // --- one section's seats -------------------------------------------------
  function seatLabel(seat) {
    const free = seat.status === 'AVAILABLE';
    return `${seat.place}${seat.accessible ? ', wheelchair space' : ''}, ${seat.tier}, ${money(seat.price_cents)}`
      + (free ? '' : ', taken');
  }

  function paint(element) {
    const seat = seatsById.get(element.dataset.seat);
    const free = seat.status === 'AVAILABLE';
    if (!free) selected.delete(seat.id);
    element.dataset.status = seat.status;
    element.setAttribute('aria-checked', String(selected.has(seat.id)));
    element.setAttribute('aria-disabled', String(!free));
    element.setAttribute('aria-label', seatLabel(seat));
    element.querySelector('title').textContent = seatLabel(seat);
  }

  function drawSection(id) {
    const section = sections.find((s) => s.id === id);
    if (!section) return;
    openSection = section;
    const map = $('seat-map');
    const ring = $('focus-ring');
    ring.classList.remove('shown');
    map.replaceChildren(ring);
    let y = 0;
    let widest = 0;
    for (const row of section.rows) {
      // A long row (a standing area is one) wraps onto several lines.
      for (let start = 0; start < row.seats.length; start += SEATS_PER_LINE) {
        y += PITCH;
        const line = document.createElementNS(SVG, 'g');
        line.setAttribute('role', 'group');
        line.setAttribute('aria-label', section.general_admission ? `Places ${start + 1} on` : `Row ${row.label}`);
        line.classList.add('line');
        if (start === 0 && !section.general_admission) {
          const label = document.createElementNS(SVG, 'text');
          label.setAttribute('x', '0');
          label.setAttribute('y', String(y + 4));
          label.textContent = row.label;
          label.setAttribute('aria-hidden', 'true');
          map.append(label);
        }
        const places = row.seats.slice(start, start + SEATS_PER_LINE);
        widest = Math.max(widest, places.length);
        places.forEach((s, i) => {
          const seat = seatsById.get(s.id);
          const x = LABEL_WIDTH + i * PITCH;
          const element = document.createElementNS(SVG, seat.accessible ? 'rect' : 'circle');
          if (seat.accessible) {
            for (const [k, v] of [['x', x - 11], ['y', y - 11], ['width', 22], ['height', 22], ['rx', 4]]) {
              element.setAttribute(k, String(v));
            }
          } else {
            for (const [k, v] of [['cx', x], ['cy', y], ['r', 11]]) element.setAttribute(k, String(v));
          }
          element.classList.add('seat');
          element.setAttribute('role', 'checkbox');
          element.setAttribute('tabindex', '-1');
          element.dataset.seat = seat.id;
          element.dataset.place = seat.place;
          element.style.setProperty('--tier', config.tiers[seat.tier] || '#4338ca');
          element.append(document.createElementNS(SVG, 'title'));
          const tick = document.createElementNS(SVG, 'path');
          tick.classList.add('tick');
          tick.setAttribute('d', `M${x - 5} ${y}l3.5 3.5 6.5-7`);
          tick.setAttribute('aria-hidden', 'true');
          line.append(element, tick);
          paint(element);
        });
        map.append(line);
      }
    }
    const width = LABEL_WIDTH + widest * PITCH;
    const height = y + PITCH / 2 + 4;
    map.setAttribute('viewBox', `0 0 ${width} ${height}`);
    map.dataset.width = String(width);
    map.dataset.height = String(height);
    $('section-view').hidden = false;
    // Fill a wide box; on a narrow one keep seats a finger can hit (22 px)
    // and let the box pan.
    zoom = Math.max(1, Math.min(1.5, $('map-box').clientWidth / width));
    applyZoom();
    const first = map.querySelector('.seat[data-status=AVAILABLE]') || map.querySelector('.seat');
    if (first) first.tabIndex = 0;
    for (const button of document.querySelectorAll('.section-pick')) {
      button.setAttribute('aria-pressed', String(button.dataset.section === id));
    }
    $('section-title').textContent = section.name;
    $('best').elements.section_id.value = id;
  }

  function applyZoom() {
    const map = $('seat-map');
    map.setAttribute('width', String(Math.round(Number(map.dataset.width) * zoom)));
    map.setAttribute('height', String(Math.round(Number(map.dataset.height) * zoom)));
  }

  function showSelection() {
    const seats = [...selected].map((id) => seatsById.get(id)).filter(Boolean);
    const total = seats.reduce((sum, seat) => sum + seat.price_cents, 0);
    const summary = document.createElement('strong');
    const places = document.createElement('span');
    places.className = 'places';
    if (seats.length) {
      summary.textContent = `${seats.length} selected · ${money(total)}`;
      places.textContent = `: ${seats.map((s) => s.place).join('; ')}.`;
    } else {
      places.textContent = `No seats selected. Open a section and pick up to ${config.limit} seats, `
        + 'or ask for the best available.';
    }
    $('selection').replaceChildren(summary, places);
    $('hold-selected').disabled = seats.length === 0 || reservation !== null;
    $('hold-selected').textContent = seats.length ? `Hold ${seats.length} · ${money(total)}` : 'Hold selected seats';
  }

  function toggle(element) {
    const seat = seatsById.get(element.dataset.seat);
    if (!seat || seat.status !== 'AVAILABLE' || reservation) return;
    if (selected.has(seat.id)) {
      selected.delete(seat.id);
    } else if (selected.size >= config.limit) {
      problem(`You can choose at most ${config.limit} seats per order.`);
      return;
    } else {
      selected.add(seat.id);
    }
    problem('');
    paint(element);
    showSelection();
  }

  // Roving focus: one seat of the map is in the tab order; arrows move it.
  function moveFocus(from, key) {
    const lines = [...$('seat-map').querySelectorAll('.line')].map((line) => [...line.querySelectorAll('.seat')]);
    const row = lines.findIndex((line) => line.includes(from));
    const column = lines[row].indexOf(from);
    const at = (r, c) => lines[r] && lines[r][Math.min(c, lines[r].length - 1)];
    const next = {
      ArrowLeft: at(row, Math.max(0, column - 1)),
      ArrowRight: at(row, column + 1),
      ArrowUp: at(row - 1, column),
      ArrowDown: at(row + 1, column),
      Home: at(row, 0),
      End: at(row, Infinity),
    }[key];
    if (!next) return false;
    from.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
    return true;
  }

  $('seat-map').addEventListener('click', (event) => {
    const element = event.target.closest('.seat');
    if (element) toggle(element);
  });
  $('seat-map').addEventListener('keydown', (event) => {
    const element = event.target.closest('.seat');
    if (!element) return;
    if (event.key === ' ' || event.key === 'Enter') {
      event.preventDefault();
      toggle(element);
    } else if (moveFocus(element, event.key)) {
      event.preventDefault();
    }
  });
  // The focus ring is its own shape, a gap away from the seat, so it never
  // looks like a selected seat and contrasts with the page around it.
  $('seat-map').addEventListener('focusin', (event) => {
    const element = event.target.closest('.seat');
    if (!element) return;
    for (const seat of $('seat-map').querySelectorAll('.seat[tabindex="0"]')) seat.tabIndex = -1;
    element.tabIndex = 0;
    const box = element.getBBox();
    const ring = $('focus-ring');
    ring.setAttribute('cx', String(box.x + box.width / 2));
    ring.setAttribute('cy', String(box.y + box.height / 2));
    $('seat-map').append(ring);
    ring.classList.add('shown');
  });
  $('seat-map').addEventListener('focusout', () => $('focus-ring').classList.remove('shown'));
  $('zoom-in').addEventListener('click', () => { zoom = Math.min(3, zoom * 1.25); applyZoom(); });
  $('zoom-out').addEventListener('click', () => { zoom = Math.max(0.5, zoom / 1.25); applyZoom(); });
  for (const button of document.querySelectorAll('.section-pick')) {
    button.addEventListener('click', () => {
      drawSection(button.dataset.section);
      $('section-view').scrollIntoView({ block: 'start' });
      $('section-title').focus({ preventScroll: true });
    });
  }

  // --- live changes ----------------------------------------------------------
  // Live changes by seat id, numbered: a seat map fetched while one arrives
  // must not paint the older status over it.
  const liveChanges = new Map();
  let changesHeard = 0;

  function setStatus(id, status) {
    const seat = seatsById.get(id);
    if (!seat) return;
    const change = (status === 'AVAILABLE') - (seat.status === 'AVAILABLE');
    free.set(seat.section, (free.get(seat.section) || 0) + change);
    seat.status = status;
    const element = seatElement(id);
    if (element) paint(element);
  }

  async function refreshMap() {
    const since = changesHeard;
    const map = await api('GET', `/api/v1/events/${config.event}/seatmap`);
    loadMap(map);
    for (const [id, live] of liveChanges) {
      if (live.heard > since) setStatus(id, live.status);
    }
    for (const element of $('seat-map').querySelectorAll('.seat')) paint(element);
    showCounts();
    showSelection();
  }

  // Changes made while no stream was open are not replayed, so every
  // (re)connect and every `resync` revalidates the map (a 304 when nothing
  // changed).
  function watchSeats() {
    const stream = new EventSource(`/events/${config.event}/checkout/seat-changes`);
    const resync = () => refreshMap().catch(() => {});
    stream.addEventListener('open', resync);
    stream.addEventListener('resync', resync);
    stream.addEventListener('seat', (message) => {
      const [id, status] = message.data.split(' ');
      liveChanges.set(id, { status, heard: ++changesHeard });
      setStatus(id, status);
      showCounts();
      showSelection();
    });
  }

  // --- the hold and the payment ---------------------------------------------
  function countdown() {
    const left = Math.max(0, Math.round((Date.parse(reservation.expires_at) - Date.now()) / 1000));
    $('countdown').textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    if (left === 0) expired();
  }

  function showHold(held) {
    reservation = held;
    selected.clear();
    for (const s of held.seats) setStatus(s.seat_id, 'HELD');
    $('held').replaceChildren(...held.seats.map((s) => {
      const item = document.createElement('li');
      const seat = seatsById.get(s.seat_id);
      const place = seat ? seat.place : placeOf(s, { name: s.section, general_admission: s.general_admission });
      item.textContent = `${place} · ${s.tier}`;
      return item;
    }));
    $('total').textContent = money(held.total_cents);
    $('extend').disabled = held.extended;
    $('hold').hidden = false;
    $('action-bar').hidden = true;
    clearInterval(ticking);
    ticking = setInterval(countdown, 1000);
    countdown();
    showCounts();
    showSelection();
  }

  function endHold(message) {
    clearInterval(ticking);
    reservation = null;
    paymentKey = null;
    $('hold').hidden = true;
    $('action-bar').hidden = false;
    payProblem('');
    problem(message);
    refreshMap().catch((e) => problem(e.message));
  }

  const expired = () => endHold('Your hold expired and the seats were released. Please choose again.');

  async function hold(body) {
    problem('');
    try {
      showHold(await api('POST', `/api/v1/events/${config.event}/reservations`,
        { client_reservation_id: crypto.randomUUID(), ...body }));
      $('hold').scrollIntoView({ block: 'start' });
      $('hold-title').focus({ preventScroll: true });
    } catch (e) {
      problem(e.status === 409 ? `Those seats were just taken: ${sentence(e.message)} Please choose again.` : sentence(e.message));
      refreshMap().catch(() => {});
    }
  }

  $('hold-selected').addEventListener('click', () => hold({ seat_ids: [...selected] }));
  $('best').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const quantity = Number(form.get('quantity'));
    if (!(quantity >= 1 && quantity <= config.limit)) {
      problem(`You can hold at most ${config.limit} seats per order.`);
      return;
    }
    // "Most seats free": the section with the most free seats right now.
    let section = form.get('section_id');
    if (!section) {
      const free = [...showCounts()].sort((a, b) => b[1] - a[1]);
      section = free.length ? free[0][0] : (sections[0] && sections[0].id);
    }
    hold({ section_id: section, quantity });
  });
  $('extend').addEventListener('click', async () => {
    try {
      showHold(await api('PATCH', `/api/v1/reservations/${reservation.reservation_id}/extend`,
        { additional_seconds: 120 }));
    } catch (e) { payProblem(sentence(e.message)); }
  });
  $('release').addEventListener('click', async () => {
    try {
      await api('DELETE', `/api/v1/reservations/${reservation.reservation_id}`);
      endHold('Your seats were released.');
    } catch (e) { payProblem(sentence(e.message)); }
  });
  $('pay').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    // One key per attempt: a retry after a timeout must not charge twice.
    paymentKey = paymentKey || crypto.randomUUID();
    payProblem('');
    try {
      const order = await api('POST', `/api/v1/reservations/${reservation.reservation_id}/commit`, {
        payment_method_id: form.get('payment_method_id'),
        billing_details: { name: form.get('name'), email: form.get('email') },
      }, { 'idempotency-key': paymentKey });
      // The order's secret link: it opens the tickets from any browser, later too.
      location.assign(order.order_url);
    } catch (e) {
      if (e.status === 402) {
        paymentKey = null;
        payProblem(`Payment declined: ${sentence(e.message)} Your seats are still held; try another card.`);
      } else if (e.status === 410) {
        expired();
      } else {
        payProblem(sentence(e.message));
      }
    }
  });

  showSelection();
  refreshMap()
    .then(() => {
      // One section needs no overview step.
      if (sections.length === 1) {
        $('overview').hidden = true;
        drawSection(sections[0].id);
      }
      if (config.hold) showHold(config.hold);
    })
    .catch((e) => problem(sentence(e.message)))
    .finally(watchSeats);
})();
