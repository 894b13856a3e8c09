-- A paid order ends its waiting-room session in its own transaction.
--
-- A visitor's access token lets them check out once: the order that pays
-- ends their session, so the token holds nothing more. The origin used to
-- end it with a statement of its own after the settle, a transaction more
-- per order through the waiting room, and a crash between the two left the
-- session open after its order. A payment made with an access token now
-- names the token's session (and when the token expires, after which the
-- ended session may be forgotten); the settle that marks it succeeded ends
-- that session with it, whoever settles: the request, a retry, the
-- reconciler or the provider's webhook.
ALTER TABLE payments
    ADD COLUMN access_session text CHECK (length(access_session) BETWEEN 1 AND 200),
    ADD COLUMN access_session_expires_at timestamptz,
    ADD CONSTRAINT payments_access_session_expires
        CHECK ((access_session IS NULL) = (access_session_expires_at IS NULL));

CREATE FUNCTION end_paid_access_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ended_access_sessions (jti, event_id, expires_at)
        SELECT NEW.access_session, r.event_id, NEW.access_session_expires_at
        FROM reservations r WHERE r.id = NEW.reservation_id
        ON CONFLICT (jti) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER payments_end_access_session
    AFTER UPDATE OF status ON payments FOR EACH ROW
    WHEN (NEW.status = 'succeeded' AND OLD.status <> 'succeeded' AND NEW.access_session IS NOT NULL)
    EXECUTE FUNCTION end_paid_access_session();
