//! QR codes of tickets: the symbol, with the mask the standard asks for,
//! drawn as SVG for screens and as PNG for email.
//!
//! The standard (ISO/IEC 18004, 7.8.3) has the encoder try all eight data
//! masks and keep the one whose symbol scores the lowest penalty. Nayuki's
//! `qrcodegen` does so by masking, scoring and unmasking its module grid
//! eight times, reading one module at a time: 380 µs for a ticket code,
//! every confirmation email making one per ticket, where one symbol with a
//! given mask takes 23. Here the symbol is made once, with mask 0, and the
//! other seven are derived from it: a mask flips data modules only, and
//! the format information it changes depends on nothing but the mask and
//! the error correction level, so the symbol with mask `m` is the one with
//! mask 0 with a fixed set of modules flipped, the same for every text of
//! that version and level. That set is learnt once per version and level
//! from `qrcodegen`'s own symbols ([`Flips`]), and the eight symbols are
//! scored on rows and columns of bits: 90–115 µs in all. Tests hold every
//! derived symbol to `qrcodegen`'s and the mask chosen to `qrcodegen`'s
//! own choice.

use std::sync::{Arc, Mutex};

use qrcodegen::{Mask, QrCode, QrCodeEcc, QrSegment, Version};

/// Error correction: level M (15% of the symbol may be lost), raised to a
/// higher level when that still fits the same version.
const LEVEL: QrCodeEcc = QrCodeEcc::Medium;

/// The widest symbol made here: a row fits in a `u64`. Version 11, 61
/// modules a side, holds 366 characters of a ticket code's kind
/// (alphanumeric) at level M, 251 bytes of any other; ticket codes take
/// version 4 or 5.
const MAX_SIZE: usize = 61;

/// A QR symbol's modules without its quiet zone, a bit each (1 for dark),
/// row by row and column by column: the penalty reads lines both ways.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    size: usize,
    /// Row `y`'s module `x` is bit `x` of `rows[y]`.
    rows: Vec<u64>,
    /// Column `x`'s module `y` is bit `y` of `columns[x]`.
    columns: Vec<u64>,
}

impl Symbol {
    /// `text` as a QR symbol with the mask of the lowest penalty (on a tie
    /// the lower mask, as `qrcodegen` and the standard's sample encoder
    /// pick).
    ///
    /// Panics if `text` needs a symbol wider than [`MAX_SIZE`], which no
    /// ticket code does.
    pub fn encode(text: &str) -> Self {
        Self::with_every_mask(text).into_iter().min_by_key(Symbol::penalty).expect("eight masks")
    }

    /// `text` as a QR symbol with each mask, 0 to 7.
    fn with_every_mask(text: &str) -> Vec<Self> {
        let segments = QrSegment::make_segments(text);
        let with_mask = |mask: u8| {
            let mask = Some(Mask::new(mask));
            let version = Version::new(((MAX_SIZE - 17) / 4) as u8);
            QrCode::encode_segments_advanced(&segments, LEVEL, Version::MIN, version, mask, true)
                .expect("ticket codes fit in a QR code of version 11")
        };
        let first = with_mask(0);
        let mask_0 = Symbol::of(&first);
        let kind = (first.version(), first.error_correction_level());
        let flips = flips(kind, &mask_0, |mask| Symbol::of(&with_mask(mask)));
        let flipped = flips.iter().map(|flip| mask_0.xor(flip));
        std::iter::once(mask_0.clone()).chain(flipped).collect()
    }

    fn of(qr: &QrCode) -> Self {
        let size = qr.size() as usize;
        let line = |module: &dyn Fn(usize) -> bool| (0..size).map(|i| u64::from(module(i)) << i).sum();
        let dark = |x: usize, y: usize| qr.get_module(x as i32, y as i32);
        let rows = (0..size).map(|y| line(&|x| dark(x, y))).collect();
        let columns = (0..size).map(|x| line(&|y| dark(x, y))).collect();
        Self { size, rows, columns }
    }

    /// The modules that differ between `self` and `other`, as dark ones.
    fn xor(&self, other: &Symbol) -> Symbol {
        let xor = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(a, b)| a ^ b).collect();
        Symbol {
            size: self.size,
            rows: xor(&self.rows, &other.rows),
            columns: xor(&self.columns, &other.columns),
        }
    }

    /// Modules a side, without the quiet zone.
    pub fn size(&self) -> usize {
        self.size
    }

    fn dark(&self, x: usize, y: usize) -> bool {
        (self.rows[y] >> x) & 1 == 1
    }

    /// The standard's penalty score (ISO/IEC 18004, 7.8.3.1), scored as
    /// `qrcodegen` scores it: the area around the symbol counts as light
    /// when looking for finder-like patterns.
    fn penalty(&self) -> u32 {
        let size = self.size;
        let mut score = 0;
        let mut runs = Vec::with_capacity(size + 2);
        for &line in self.rows.iter().chain(&self.columns) {
            // Runs alternate light and dark, the first light (empty if the
            // line starts dark), so dark runs are at odd indices. A run
            // starts at each module unlike the one before it (the first
            // unlike the light margin), and the line's end closes the last.
            runs.clear();
            let mut starts = (line ^ (line << 1)) | (1 << size);
            let mut previous = 0;
            while starts != 0 {
                let start = starts.trailing_zeros();
                runs.push(start - previous);
                previous = start;
                starts &= starts - 1;
            }
            // And the last light, empty if the line ends dark.
            if runs.len() % 2 == 0 {
                runs.push(0);
            }
            score += runs.iter().filter(|run| **run >= 5).map(|run| SAME_COLOUR_RUN + (run - 5)).sum::<u32>();
            let last = runs.len() - 1;
            runs[0] += size as u32;
            runs[last] += size as u32;
            score += FINDER_LIKE * finder_like_patterns(&runs);
        }
        // Module x and x + 1 alike, for x up to size - 2.
        let pairs = (1u64 << (size - 1)) - 1;
        for two in self.rows.windows(2) {
            let [above, below] = [two[0], two[1]];
            let alike = !(above ^ (above >> 1)) & !(below ^ (below >> 1)) & !(above ^ below) & pairs;
            score += SAME_COLOUR_BLOCK * alike.count_ones();
        }
        let dark = i64::from(self.rows.iter().map(|row| row.count_ones()).sum::<u32>());
        let total = (size * size) as i64;
        // The least k with (45 - 5k)% <= dark <= (55 + 5k)%.
        let k = ((dark * 20 - total * 10).abs() + total - 1) / total - 1;
        score + UNBALANCED * k as u32
    }
}

/// Penalty points (ISO/IEC 18004, table 11): a run of five modules of one
/// colour in a row or column, and each module more; a 2×2 block of one
/// colour; a finder-like 1:1:3:1:1 pattern with four light modules on a
/// side; each 5% that dark modules are further from half.
const SAME_COLOUR_RUN: u32 = 3;
const SAME_COLOUR_BLOCK: u32 = 3;
const FINDER_LIKE: u32 = 40;
const UNBALANCED: u32 = 10;

/// Finder-like patterns in a line of runs (light, dark, light, … light,
/// the margins included): dark 1:1:3:1:1 between light runs of which one is
/// at least four and the other at least one module wide.
fn finder_like_patterns(runs: &[u32]) -> u32 {
    let mut found = 0;
    for light in (6..runs.len()).step_by(2) {
        let [before, d1, l1, d3, l2, d2, after] = runs[light - 6..=light] else { unreachable!("seven runs") };
        let n = d1;
        if n > 0 && l1 == n && d3 == 3 * n && l2 == n && d2 == n {
            found += u32::from(after >= 4 * n && before >= n) + u32::from(before >= 4 * n && after >= n);
        }
    }
    found
}

/// For masks 1 to 7, the modules where a symbol differs from the same
/// symbol with mask 0.
type Flips = Arc<[Symbol; 7]>;

/// The flips learnt so far, one set per version and error correction level.
static LEARNT: Mutex<Vec<((Version, QrCodeEcc), Flips)>> = Mutex::new(Vec::new());

/// The flips of symbols of `kind`, learnt the first time from `mask_0` and
/// the same text's symbols with each other mask (`with_mask`). The lock is
/// held while learning (seven symbols, once per kind), so each kind is
/// learnt once.
fn flips(kind: (Version, QrCodeEcc), mask_0: &Symbol, with_mask: impl Fn(u8) -> Symbol) -> Flips {
    let mut learnt = LEARNT.lock().expect("learnt flips lock");
    if let Some((_, flips)) = learnt.iter().find(|(k, _)| *k == kind) {
        return flips.clone();
    }
    let flips: Flips = Arc::new(std::array::from_fn(|i| with_mask(i as u8 + 1).xor(mask_0)));
    learnt.push((kind, flips.clone()));
    flips
}

/// Pixels per module, in the emailed PNG and the size the SVG asks for.
const PIXELS_PER_MODULE: usize = 6;
/// The quiet zone around a QR code that the standard asks for, in modules.
const QUIET_ZONE: usize = 4;

impl Symbol {
    /// Rows of modules with the quiet zone around them.
    fn rows_with_quiet_zone(&self) -> Vec<Vec<bool>> {
        let side = self.size + 2 * QUIET_ZONE;
        let inside = |i: usize| (QUIET_ZONE..QUIET_ZONE + self.size).contains(&i);
        let dark = |x: usize, y: usize| inside(x) && inside(y) && self.dark(x - QUIET_ZONE, y - QUIET_ZONE);
        (0..side).map(|y| (0..side).map(|x| dark(x, y)).collect()).collect()
    }
}

/// The code as a QR code in SVG, for screens and print: one path of
/// horizontal runs of dark modules, drawn at 6 pixels per module.
pub fn qr_svg(code: &str) -> String {
    let rows = Symbol::encode(code).rows_with_quiet_zone();
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
    let rows = Symbol::encode(code).rows_with_quiet_zone();
    let side = rows.len() * PIXELS_PER_MODULE;
    // One bit per pixel, 1 for white: an eighth of the bytes to fill and
    // compress (emails carry one per ticket, made as the outbox sends).
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xFFu8; side * row_bytes];
    for (row, band) in rows.iter().zip(pixels.chunks_exact_mut(PIXELS_PER_MODULE * row_bytes)) {
        // A row of modules is one row of pixels, six times.
        let (first, copies) = band.split_at_mut(row_bytes);
        for (x, _) in row.iter().enumerate().filter(|(_, dark)| **dark) {
            for px in x * PIXELS_PER_MODULE..(x + 1) * PIXELS_PER_MODULE {
                first[px / 8] &= !(0x80 >> (px % 8));
            }
        }
        copies.chunks_exact_mut(row_bytes).for_each(|copy| copy.copy_from_slice(first));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::ticket_code;
    use uuid::Uuid;

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
        assert_eq!(Symbol::encode(&code).size(), version_4);
        let lower = code.to_ascii_lowercase();
        assert_eq!(Symbol::encode(&lower).size(), version_4 + 4, "byte mode needs version 5");
    }

    /// Several texts of each kind of symbol: ticket codes (alphanumeric,
    /// version 4), codes issued in lower case before (bytes, version 5), and
    /// longer texts whose symbols carry version information (version 7 and
    /// up), which neither kind of code reaches.
    fn texts_of_every_kind() -> Vec<String> {
        let codes: Vec<String> =
            (0..40).map(|_| ticket_code(b"secret", Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4())).collect();
        let lower = codes.iter().map(|code| code.to_ascii_lowercase());
        let long = codes.chunks(4).map(|four| four.concat());
        codes.iter().cloned().chain(lower).chain(long).collect()
    }

    fn qrcodegen_with(text: &str, mask: Option<u8>) -> Symbol {
        let segments = QrSegment::make_segments(text);
        let mask = mask.map(Mask::new);
        Symbol::of(
            &QrCode::encode_segments_advanced(&segments, LEVEL, Version::MIN, Version::MAX, mask, true)
                .unwrap(),
        )
    }

    #[test]
    fn each_mask_gives_the_symbol_qrcodegen_makes_with_it() {
        let texts = texts_of_every_kind();
        let versions: std::collections::BTreeSet<_> =
            texts.iter().map(|t| Symbol::encode(t).size()).collect();
        assert!(versions.len() >= 3 && versions.iter().any(|size| *size >= 17 + 4 * 7), "{versions:?}");
        for text in &texts {
            let derived = Symbol::with_every_mask(text);
            for (mask, symbol) in derived.iter().enumerate() {
                assert!(*symbol == qrcodegen_with(text, Some(mask as u8)), "mask {mask} of {text}");
            }
        }
    }

    #[test]
    fn the_mask_chosen_is_the_one_qrcodegen_chooses_by_the_standard() {
        let texts = texts_of_every_kind();
        let masks: std::collections::BTreeSet<_> = texts
            .iter()
            .map(|text| {
                let chosen = Symbol::encode(text);
                let standard = qrcodegen_with(text, None);
                assert!(chosen == standard, "{text}");
                Symbol::with_every_mask(text).iter().position(|symbol| *symbol == chosen)
            })
            .collect();
        assert!(masks.len() >= 4, "the texts try several masks: {masks:?}");
    }

    #[test]
    fn finder_like_patterns_count_once_per_side_with_four_light_modules() {
        let size = 21;
        // The margins count as light, as wide as the symbol.
        let line = |runs: &[u32]| {
            let mut runs = runs.to_vec();
            let last = runs.len() - 1;
            runs[0] += size;
            runs[last] += size;
            finder_like_patterns(&runs)
        };
        assert_eq!(line(&[0, 1, 1, 3, 1, 1, 15]), 2, "light on both sides: once for each side");
        assert_eq!(line(&[0, 2, 2, 6, 2, 2, 7]), 2, "scaled by two");
        assert_eq!(line(&[0, 1, 1, 3, 1, 1, 3, 2, 8]), 1, "three light modules on one side only");
        assert_eq!(line(&[4, 1, 1, 3, 1, 1, 3, 1, 1, 3, 1, 1, 0]), 2, "two in a row, three light between");
        assert_eq!(line(&[4, 1, 1, 2, 1, 1, 4]), 0, "not 1:1:3:1:1");
    }
}
