-- Organizers, venues and their seat maps, events and per-event inventory.
--
-- Seat holds never lock an event: every seat of an event is its own
-- `inventory` row, taken by a conditional UPDATE (compare-and-swap on
-- `status`/`held_until`, bumping `version`). Throughput therefore scales
-- with seats, not with events.

CREATE TABLE organizers (
    id            uuid PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- SHA-256 of the API key; the key itself is shown once and never stored.
    api_key_hash  bytea NOT NULL UNIQUE,
    webhook_url   text,
    webhook_secret text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE venues (
    id            uuid PRIMARY KEY,
    organizer_id  uuid NOT NULL REFERENCES organizers (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    city          text NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    timezone      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX venues_organizer ON venues (organizer_id);

CREATE TABLE price_tiers (
    id            uuid PRIMARY KEY,
    venue_id      uuid NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    price_cents   bigint NOT NULL CHECK (price_cents >= 0),
    currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    UNIQUE (venue_id, name)
);

CREATE TABLE sections (
    id                uuid PRIMARY KEY,
    venue_id          uuid NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    position          int NOT NULL,
    -- General admission: unnumbered places, still one inventory row each.
    general_admission boolean NOT NULL DEFAULT false,
    UNIQUE (venue_id, name)
);

CREATE TABLE seats (
    id          uuid PRIMARY KEY,
    venue_id    uuid NOT NULL REFERENCES venues (id) ON DELETE CASCADE,
    section_id  uuid NOT NULL REFERENCES sections (id) ON DELETE CASCADE,
    tier_id     uuid NOT NULL REFERENCES price_tiers (id),
    row_label   text NOT NULL,
    number      int NOT NULL CHECK (number > 0),
    accessible  boolean NOT NULL DEFAULT false,
    UNIQUE (section_id, row_label, number)
);
CREATE INDEX seats_venue ON seats (venue_id);

CREATE TABLE events (
    id                       uuid PRIMARY KEY,
    organizer_id             uuid NOT NULL REFERENCES organizers (id),
    venue_id                 uuid NOT NULL REFERENCES venues (id),
    title                    text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
    description              text NOT NULL DEFAULT '' CHECK (length(description) <= 20000),
    category                 text NOT NULL CHECK (length(category) BETWEEN 1 AND 50),
    starts_at                timestamptz NOT NULL,
    status                   text NOT NULL DEFAULT 'draft'
                             CHECK (status IN ('draft', 'on_sale', 'sold_out', 'closed', 'cancelled')),
    sale_starts_at           timestamptz,
    sale_ends_at             timestamptz,
    hold_ttl_seconds         int NOT NULL DEFAULT 600 CHECK (hold_ttl_seconds BETWEEN 60 AND 900),
    max_tickets_per_order    int NOT NULL DEFAULT 4 CHECK (max_tickets_per_order BETWEEN 1 AND 50),
    max_tickets_per_buyer    int NOT NULL DEFAULT 8 CHECK (max_tickets_per_buyer BETWEEN 1 AND 200),
    queue_enabled            boolean NOT NULL DEFAULT false,
    new_users_per_minute     int NOT NULL DEFAULT 600 CHECK (new_users_per_minute > 0),
    total_active_users       int NOT NULL DEFAULT 1000 CHECK (total_active_users > 0),
    session_duration_seconds int NOT NULL DEFAULT 900 CHECK (session_duration_seconds BETWEEN 60 AND 7200),
    prequeue_starts_at       timestamptz,
    queue_paused             boolean NOT NULL DEFAULT false,
    -- Bumped on every change the catalog shows, so edge caches can key on it.
    catalog_version          bigint NOT NULL DEFAULT 1,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CHECK (sale_ends_at IS NULL OR sale_starts_at IS NULL OR sale_ends_at > sale_starts_at),
    CHECK (prequeue_starts_at IS NULL OR sale_starts_at IS NULL OR prequeue_starts_at <= sale_starts_at)
);
CREATE INDEX events_listing ON events (starts_at) WHERE status <> 'draft';
CREATE INDEX events_organizer ON events (organizer_id);

CREATE TABLE inventory (
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seat_id     uuid NOT NULL REFERENCES seats (id),
    section_id  uuid NOT NULL,
    tier_id     uuid NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    -- Best-available order within the section: front rows, then seat number.
    sort_key    int NOT NULL,
    status      text NOT NULL DEFAULT 'AVAILABLE'
                CHECK (status IN ('AVAILABLE', 'HELD', 'BOOKED', 'BLOCKED')),
    version     bigint NOT NULL DEFAULT 0,
    hold_id     uuid,
    held_until  timestamptz,
    PRIMARY KEY (event_id, seat_id),
    CHECK ((status = 'HELD') = (hold_id IS NOT NULL AND held_until IS NOT NULL) OR status = 'BOOKED')
);
CREATE INDEX inventory_hold ON inventory (hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX inventory_expiring ON inventory (held_until) WHERE status = 'HELD';
CREATE INDEX inventory_free_by_section ON inventory (event_id, section_id, sort_key) WHERE status IN ('AVAILABLE', 'HELD');
CREATE INDEX inventory_free_by_tier ON inventory (event_id, tier_id, sort_key) WHERE status IN ('AVAILABLE', 'HELD');
