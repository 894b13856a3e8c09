// The checkout page: pick seats (mouse or keyboard) or ask for the best
// available, hold them, pay. Talks to the same JSON API as apps do.
(() => {
  const config = JSON.parse(document.getElementById('checkout-config').textContent);
  const $ = (id) => document.getElementById(id);
  const selected = new Set();
  let reservation = null;
  let ticking = null;
  let paymentKey = null;

  async function api(method, path, body, headers = {}) {
    const response = await fetch(path, {
      method,
      credentials: 'same-origin',
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

  const problem = (message) => { $('problem').textContent = message || ''; };
  const seats = () => document.querySelectorAll('.seat');

  function markSeat(seat, status) {
    const free = status === 'AVAILABLE';
    seat.dataset.status = status;
    seat.setAttribute('fill', free ? seat.dataset.colour : '#c8c8cc');
    if (free) {
      seat.setAttribute('tabindex', '0');
      seat.removeAttribute('aria-disabled');
      seat.setAttribute('aria-checked', String(selected.has(seat.dataset.seat)));
    } else {
      selected.delete(seat.dataset.seat);
      seat.removeAttribute('tabindex');
      seat.setAttribute('aria-disabled', 'true');
      seat.setAttribute('aria-checked', 'false');
    }
  }

  function showSelection() {
    const places = [...seats()].filter((s) => selected.has(s.dataset.seat)).map((s) => s.dataset.place);
    $('selection').textContent = places.length
      ? `${places.length} selected: ${places.join('; ')}.`
      : `No seats selected. Pick up to ${config.limit} seats with the mouse, or with Tab and Space.`;
    $('hold-selected').disabled = places.length === 0 || reservation !== null;
  }

  function toggle(seat) {
    if (seat.dataset.status !== 'AVAILABLE' || reservation) return;
    const id = seat.dataset.seat;
    if (selected.has(id)) {
      selected.delete(id);
    } else if (selected.size >= config.limit) {
      problem(`You can choose at most ${config.limit} seats per order.`);
      return;
    } else {
      selected.add(id);
    }
    problem('');
    seat.setAttribute('aria-checked', String(selected.has(id)));
    showSelection();
  }

  // Live changes by seat id, numbered: a seat map fetched while one
  // arrives must not paint the older status over it.
  const liveChanges = new Map();
  let changesHeard = 0;

  async function refreshMap() {
    const since = changesHeard;
    const map = await api('GET', `/api/v1/events/${config.event}/seatmap`);
    const status = new Map();
    for (const section of map.sections) for (const row of section.rows) for (const seat of row.seats) {
      status.set(seat.id, seat.status);
    }
    for (const seat of seats()) {
      const live = liveChanges.get(seat.dataset.seat);
      markSeat(seat, live && live.heard > since ? live.status : status.get(seat.dataset.seat) || 'SOLD');
    }
    showSelection();
  }

  // Seats taken or freed by others change colour as it happens. Changes
  // made while no stream was open are not replayed, so every (re)connect
  // and every `resync` reloads the map.
  function watchSeats() {
    const byId = new Map([...seats()].map((seat) => [seat.dataset.seat, seat]));
    const stream = new EventSource(`/events/${config.event}/checkout/seat-changes`);
    const resync = () => refreshMap().catch(() => {});
    stream.addEventListener('open', resync);
    stream.addEventListener('resync', resync);
    stream.addEventListener('seat', (message) => {
      const [id, status] = message.data.split(' ');
      liveChanges.set(id, { status, heard: ++changesHeard });
      const seat = byId.get(id);
      if (!seat) return;
      markSeat(seat, status);
      showSelection();
    });
  }

  function countdown() {
    const left = Math.max(0, Math.round((Date.parse(reservation.expires_at) - Date.now()) / 1000));
    $('countdown').textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    if (left === 0) expired();
  }

  function showHold(held) {
    reservation = held;
    selected.clear();
    for (const seat of seats()) {
      if (held.seats.some((s) => s.seat_id === seat.dataset.seat)) markSeat(seat, 'HELD');
    }
    $('held').replaceChildren(...held.seats.map((s) => {
      const item = document.createElement('li');
      // The map's own wording: "row B, seat 4", or "standing place 12".
      const place = document.querySelector(`.seat[data-seat="${s.seat_id}"]`).dataset.place;
      item.textContent = `${place} · ${s.tier}`;
      return item;
    }));
    $('total').textContent = `${held.currency} ${held.total_price}`;
    $('extend').disabled = held.extended;
    $('hold').hidden = false;
    clearInterval(ticking);
    ticking = setInterval(countdown, 1000);
    countdown();
    showSelection();
  }

  function endHold(message) {
    clearInterval(ticking);
    reservation = null;
    paymentKey = null;
    $('hold').hidden = true;
    problem(message);
    refreshMap().catch((e) => problem(e.message));
  }

  const expired = () => endHold('Your hold expired and the seats were released. Please choose again.');

  async function hold(body) {
    problem('');
    try {
      showHold(await api('POST', `/api/v1/events/${config.event}/reservations`,
        { client_reservation_id: crypto.randomUUID(), ...body }));
      $('hold-title').focus();
    } catch (e) {
      problem(e.status === 409 ? `Those seats were just taken: ${e.message}` : e.message);
      refreshMap().catch(() => {});
    }
  }

  for (const seat of seats()) {
    seat.addEventListener('click', () => toggle(seat));
    seat.addEventListener('keydown', (event) => {
      if (event.key === ' ' || event.key === 'Enter') {
        event.preventDefault();
        toggle(seat);
      }
    });
  }
  $('hold-selected').addEventListener('click', () => hold({ seat_ids: [...selected] }));
  $('best').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const quantity = Number(form.get('quantity'));
    if (quantity > config.limit) {
      problem(`You can hold at most ${config.limit} seats per order.`);
      return;
    }
    hold({ section_id: form.get('section_id'), quantity });
  });
  $('extend').addEventListener('click', async () => {
    try {
      showHold(await api('PATCH', `/api/v1/reservations/${reservation.reservation_id}/extend`,
        { additional_seconds: 120 }));
    } catch (e) { problem(e.message); }
  });
  $('release').addEventListener('click', async () => {
    try {
      await api('DELETE', `/api/v1/reservations/${reservation.reservation_id}`);
      endHold('Your seats were released.');
    } catch (e) { problem(e.message); }
  });
  $('pay').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    // One key per attempt: a retry after a timeout must not charge twice.
    paymentKey = paymentKey || crypto.randomUUID();
    problem('');
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
        problem(`Payment declined: ${e.message}. Your seats are still held; try another card.`);
      } else if (e.status === 410) {
        expired();
      } else {
        problem(e.message);
      }
    }
  });
  showSelection();
  watchSeats();
})();
