//! Ticket codes and order numbers (their QR codes: [`crate::qr`]).
//!
//! A ticket code is `<ticket id>.<tag>` in upper-case hex, the tag an
//! HMAC-SHA256 over the ticket, event and seat with the origin's ticket
//! secret: a scanner with the secret verifies a ticket offline, and a
//! forged or altered code fails. Upper case because every character is
//! then in the QR code's alphanumeric set: the code fits a symbol of 33
//! modules a side instead of 37 in byte mode, larger modules at the same
//! printed size and a quarter less work to make (one per emailed ticket).
//! Codes issued in lower case before still verify: hex and UUIDs ignore case.

use hmac::{Hmac, Mac as _};
use rand::Rng as _;
use sha2::Sha256;
use uuid::Uuid;

/// Bytes of the HMAC kept in a code (128 bits).
const TAG_BYTES: usize = 16;

fn tag(secret: &[u8], ticket: Uuid, event: Uuid, seat: Uuid) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("ticket:{ticket}:{event}:{seat}").as_bytes());
    mac.finalize().into_bytes()[..TAG_BYTES].to_vec()
}

pub fn ticket_code(secret: &[u8], ticket: Uuid, event: Uuid, seat: Uuid) -> String {
    let mut id = Uuid::encode_buffer();
    format!(
        "{}.{}",
        ticket.simple().encode_upper(&mut id),
        hex::encode_upper(tag(secret, ticket, event, seat))
    )
}

/// The ticket id in `code`, if the code is authentic for this event and seat.
pub fn verify_ticket_code(secret: &[u8], code: &str, event: Uuid, seat: Uuid) -> Option<Uuid> {
    let (id, tag_hex) = code.split_once('.')?;
    let ticket = Uuid::try_parse(id).ok()?;
    let given = hex::decode(tag_hex).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("ticket:{ticket}:{event}:{seat}").as_bytes());
    // Constant-time comparison of the truncated tag.
    mac.verify_truncated_left(&given).ok().filter(|_| given.len() == TAG_BYTES).map(|_| ticket)
}

/// `STM-` and ten Crockford base-32 characters (50 random bits).
pub fn order_number() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut rng = rand::rng();
    let suffix: String = (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("STM-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_issued_in_lower_case_still_verify() {
        let (t, e, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let issued_before = ticket_code(b"secret", t, e, s).to_ascii_lowercase();
        assert_eq!(verify_ticket_code(b"secret", &issued_before, e, s), Some(t));
    }

    #[test]
    fn codes_verify_only_for_their_ticket_event_and_seat_and_secret() {
        let (t, e, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let code = ticket_code(b"secret", t, e, s);
        assert_eq!(verify_ticket_code(b"secret", &code, e, s), Some(t));
        assert_eq!(verify_ticket_code(b"other", &code, e, s), None);
        assert_eq!(verify_ticket_code(b"secret", &code, Uuid::new_v4(), s), None);
        assert_eq!(verify_ticket_code(b"secret", &code, e, Uuid::new_v4()), None);
        let mut forged = code.clone();
        forged.replace_range(forged.len() - 1.., if code.ends_with('0') { "1" } else { "0" });
        assert_eq!(verify_ticket_code(b"secret", &forged, e, s), None);
        assert_eq!(verify_ticket_code(b"secret", &code[..code.len() - 2], e, s), None, "a shortened tag");
        assert_eq!(verify_ticket_code(b"secret", "garbage", e, s), None);
    }

    #[test]
    fn order_numbers_are_readable_and_distinct() {
        let a = order_number();
        assert!(a.starts_with("STM-") && a.len() == 14, "{a}");
        assert!(!a.contains(['I', 'L', 'O', 'U']));
        assert_ne!(a, order_number());
    }
}
