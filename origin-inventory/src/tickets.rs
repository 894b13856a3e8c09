//! Ticket codes and order numbers.
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

/// Pixels per module, in the emailed PNG and the size the SVG asks for.
const PIXELS_PER_MODULE: usize = 6;
/// The quiet zone around a QR code that the standard asks for, in modules.
const QUIET_ZONE: usize = 4;

/// The QR code of `code` (error correction level M or better), as rows of
/// modules, `true` for dark, the quiet zone included. Nayuki's `qrcodegen`
/// picks the mask by the standard's penalty rules at a third of the cost of
/// the `qrcode` crate, which mattered: every confirmation email carries one.
fn qr_modules(code: &str) -> Vec<Vec<bool>> {
    let qr = qrcodegen::QrCode::encode_text(code, qrcodegen::QrCodeEcc::Medium)
        .expect("ticket codes fit in a QR code");
    let side = qr.size() + 2 * QUIET_ZONE as i32;
    let dark = |x: i32, y: i32| qr.get_module(x - QUIET_ZONE as i32, y - QUIET_ZONE as i32);
    (0..side).map(|y| (0..side).map(|x| dark(x, y)).collect()).collect()
}

/// The code as a QR code in SVG, for screens and print: one path of
/// horizontal runs of dark modules, drawn at 6 pixels per module.
pub fn qr_svg(code: &str) -> String {
    let rows = qr_modules(code);
    let side = rows.len();
    let mut path = String::new();
    for (y, row) in rows.iter().enumerate() {
        let mut x = 0;
        while x < side {
            let run = row[x..].iter().take_while(|dark| **dark).count();
            if run > 0 {
                path.push_str(&format!("M{x} {y}h{run}v1h-{run}z"));
            }
            x += run.max(1);
        }
    }
    let pixels = side * PIXELS_PER_MODULE;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{pixels}\" height=\"{pixels}\" \
         viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    )
}

/// The QR code of `code` as a PNG (for email, where SVG is not shown):
/// black modules of 6 pixels on white, with the standard 4-module margin.
pub fn qr_png(code: &str) -> Vec<u8> {
    let rows = qr_modules(code);
    let side = rows.len() * PIXELS_PER_MODULE;
    // One bit per pixel, 1 for white: an eighth of the bytes to fill and
    // compress (emails carry one per ticket, made as the outbox sends).
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xFFu8; side * row_bytes];
    for (y, row) in rows.iter().enumerate() {
        for (x, _) in row.iter().enumerate().filter(|(_, dark)| **dark) {
            for py in y * PIXELS_PER_MODULE..(y + 1) * PIXELS_PER_MODULE {
                for px in x * PIXELS_PER_MODULE..(x + 1) * PIXELS_PER_MODULE {
                    pixels[py * row_bytes + px / 8] &= !(0x80 >> (px % 8));
                }
            }
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    // `fdeflate`: a twentieth of the default's time for an image of 1.3 KB
    // instead of 0.7 (the default sets up a full zlib compressor per image).
    encoder.set_compression(png::Compression::Fast);
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

    /// What a scanner reads from a greyscale image (`luma(x, y)`, 0 black).
    fn scan(side: usize, luma: impl Fn(usize, usize) -> u8) -> Vec<String> {
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, luma);
        image.detect_grids().iter().map(|grid| grid.decode().expect("a readable code").1).collect()
    }

    /// The PNG's pixels, one byte each (0 black, 255 white), and its side.
    fn png_pixels(png: &[u8]) -> (Vec<u8>, usize) {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(info.width, info.height, "square");
        pixels.truncate(info.buffer_size());
        (pixels, info.width as usize)
    }

    /// The SVG's dark modules, read back from its path of runs, on a grid
    /// the side of its view box.
    fn svg_modules(svg: &str) -> Vec<Vec<bool>> {
        let view_box = svg.split("viewBox=\"0 0 ").nth(1).unwrap();
        let side: usize = view_box.split(' ').next().unwrap().parse().unwrap();
        let mut rows = vec![vec![false; side]; side];
        let path = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
        for run in path.split('z').filter(|run| !run.is_empty()) {
            let numbers: Vec<usize> = run
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().unwrap())
                .collect();
            let [x, y, width, 1, width_back] = numbers[..] else { panic!("not a run: {run}") };
            assert_eq!(width, width_back, "{run}");
            rows[y][x..x + width].iter_mut().for_each(|dark| *dark = true);
        }
        rows
    }

    #[test]
    fn emailed_qr_codes_scan_to_the_ticket_code() {
        let code = ticket_code(b"secret", Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (pixels, side) = png_pixels(&qr_png(&code));
        assert_eq!(scan(side, |x, y| pixels[y * side + x]), vec![code]);
        let quiet_zone = QUIET_ZONE * PIXELS_PER_MODULE;
        assert!(pixels[..side * quiet_zone].iter().all(|p| *p == 255), "white above the code");
        assert!(
            (0..side).all(|y| pixels[y * side..y * side + quiet_zone].iter().all(|p| *p == 255)),
            "and left of it"
        );
    }

    #[test]
    fn on_screen_qr_codes_are_the_emailed_ones_in_svg() {
        let code = ticket_code(b"secret", Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let svg = qr_svg(&code);
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        let modules = svg_modules(&svg);
        let side = modules.len() * PIXELS_PER_MODULE;
        let luma =
            |x: usize, y: usize| if modules[y / PIXELS_PER_MODULE][x / PIXELS_PER_MODULE] { 0 } else { 255 };
        assert_eq!(scan(side, luma), vec![code.clone()]);
        let (pixels, png_side) = png_pixels(&qr_png(&code));
        assert_eq!(png_side, side);
        assert!((0..side).all(|y| (0..side).all(|x| pixels[y * side + x] == luma(x, y))), "the same modules");
    }

    #[test]
    fn codes_are_qr_alphanumeric_so_they_fit_a_smaller_symbol() {
        let code = ticket_code(b"secret", Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert!(qrcodegen::QrSegment::is_alphanumeric(&code), "{code}");
        let version_4 = 17 + 4 * 4;
        assert_eq!(qr_modules(&code).len(), version_4 + 2 * QUIET_ZONE);
        let lower = code.to_ascii_lowercase();
        assert_eq!(qr_modules(&lower).len(), version_4 + 4 + 2 * QUIET_ZONE, "byte mode needs version 5");
    }

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
