-- What the waiting room shows and asks of visitors, set per event.
ALTER TABLE events
    ADD COLUMN queue_pow_difficulty smallint NOT NULL DEFAULT 0 CHECK (queue_pow_difficulty BETWEEN 0 AND 24),
    ADD COLUMN queue_message        text NOT NULL DEFAULT '' CHECK (length(queue_message) <= 2000),
    ADD COLUMN queue_accent_color   text NOT NULL DEFAULT '#4338ca' CHECK (queue_accent_color ~ '^#[0-9a-fA-F]{6}$');
