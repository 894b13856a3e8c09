//! Ticket codes and order numbers.
//!
//! A ticket code is `<ticket id>.<tag>`, the tag an HMAC-SHA256 over the
//! ticket, event and seat with the origin's ticket secret: a scanner with
//! the secret verifies a ticket offline, and a forged or altered code fails.

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
    format!("{}.{}", ticket.simple(), hex::encode(tag(secret, ticket, event, seat)))
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

/// The code as a QR code in SVG, for screens and print.
pub fn qr_svg(code: &str) -> String {
    let qr = qrcode::QrCode::new(code.as_bytes()).expect("ticket codes fit in a QR code");
    qr.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).build()
}

/// The QR code of `code` as a PNG (for email, where SVG is not shown):
/// black modules of 6 pixels on white, with the standard 4-module margin.
pub fn qr_png(code: &str) -> Vec<u8> {
    const SCALE: usize = 6;
    const MARGIN: usize = 4;
    let qr = qrcode::QrCode::new(code.as_bytes()).expect("ticket codes fit in a QR code");
    let modules = qr.width();
    let colours = qr.to_colors();
    let side = (modules + 2 * MARGIN) * SCALE;
    // One bit per pixel, 1 for white: an eighth of the bytes to fill and
    // compress (emails carry one per ticket, made as the outbox sends).
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xFFu8; side * row_bytes];
    for (i, colour) in colours.iter().enumerate() {
        if *colour == qrcode::Color::Dark {
            let (x0, y0) = ((i % modules + MARGIN) * SCALE, (i / modules + MARGIN) * SCALE);
            for y in y0..y0 + SCALE {
                for x in x0..x0 + SCALE {
                    pixels[y * row_bytes + x / 8] &= !(0x80 >> (x % 8));
                }
            }
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().expect("writing to memory");
    writer.write_image_data(&pixels).expect("writing to memory");
    writer.finish().expect("writing to memory");
    png
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
    fn qr_pngs_decode_to_the_modules_of_the_code() {
        let png = qr_png("T-123");
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
        // One byte per pixel, whatever the file's bit depth.
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        let qr = qrcode::QrCode::new(b"T-123").unwrap();
        let side = (qr.width() + 8) * 6;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        for (i, colour) in qr.to_colors().iter().enumerate() {
            // The centre pixel of each module.
            let (x, y) = ((i % qr.width() + 4) * 6 + 3, (i / qr.width() + 4) * 6 + 3);
            let dark = pixels[y * side + x] == 0;
            assert_eq!(dark, *colour == qrcode::Color::Dark, "module {i}");
        }
        assert!(pixels[..side * 24].iter().all(|p| *p == 255), "a white margin");
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
    fn qr_codes_are_svg() {
        let svg = qr_svg(&ticket_code(b"s", Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()));
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"), "{svg}");
    }

    #[test]
    fn order_numbers_are_readable_and_distinct() {
        let a = order_number();
        assert!(a.starts_with("STM-") && a.len() == 14, "{a}");
        assert!(!a.contains(['I', 'L', 'O', 'U']));
        assert_ne!(a, order_number());
    }
}
