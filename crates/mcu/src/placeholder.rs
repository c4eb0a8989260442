//! Pictures the compositor draws itself: a camera-less participant's placeholder (a colour from
//! its id with its initials), the name band on every tile, and the dominant speaker's border, as
//! raw I420 frames.
//!
//! Initials are drawn with a built-in 5x7 bitmap font rather than `textoverlay`: that element
//! (the pango plugin) lives in Debian's `gstreamer1.0-x`, which drags in X11 and pango, and a
//! frame drawn once per layout change costs nothing per output frame.

use crate::SourceId;

/// Avatar colours (RGB), picked by a hash of the source id. None is green, the border's colour.
const PALETTE: [[u8; 3]; 8] = [
    [0x58, 0x65, 0xF2], // blurple
    [0xED, 0x42, 0x45], // red
    [0xFA, 0xA6, 0x1A], // orange
    [0xEB, 0x45, 0x9E], // fuchsia
    [0x74, 0x7F, 0x8D], // grey
    [0x9B, 0x59, 0xB6], // purple
    [0x1A, 0x8C, 0xC8], // azure
    [0xA0, 0x52, 0x2D], // sienna
];

/// The placeholder colour (RGB) of a source: stable for an id, so clients can match it.
pub fn colour(id: SourceId) -> [u8; 3] {
    // splitmix64: consecutive ids land on unrelated palette entries.
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    PALETTE[((z ^ (z >> 31)) % PALETTE.len() as u64) as usize]
}

/// Up to two initials: the first letter or digit of the first two words, upper-cased; `?` for
/// a character the font lacks or an empty label.
pub fn initials(label: &str) -> String {
    let words = label.split(|c: char| c.is_whitespace() || "-_.@".contains(c)).filter(|w| !w.is_empty());
    let out: String = words
        .take(2)
        .filter_map(|w| w.chars().next())
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '?' })
        .collect();
    if out.is_empty() { "?".to_owned() } else { out }
}

/// BT.601 limited-range Y, U, V of an RGB colour (the colorimetry the whole pipeline uses).
pub fn yuv([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (r as f32, g as f32, b as f32);
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    [y.round() as u8, u.round() as u8, v.round() as u8]
}

/// An I420 picture in one contiguous buffer with GStreamer's default strides and offsets.
pub struct I420 {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl I420 {
    /// A `width` x `height` (both even) frame filled with `rgb`.
    pub fn solid(width: u32, height: u32, rgb: [u8; 3]) -> I420 {
        let (ys, cs) = strides(width);
        let (w, h) = (ys * height as usize, cs * (height as usize / 2));
        let [y, u, v] = yuv(rgb);
        let mut data = vec![y; w + 2 * h];
        data[w..w + h].fill(u);
        data[w + h..].fill(v);
        I420 { width, height, data }
    }

    /// The placeholder tile: `id`'s colour with `label`'s initials in white, centred.
    pub fn placeholder(width: u32, height: u32, id: SourceId, label: &str) -> I420 {
        let mut img = I420::solid(width, height, colour(id));
        let text = initials(label);
        let scale = (height / 4 / 7).max(1);
        let n = text.chars().count() as u32;
        let (tw, th) = (n * 6 * scale - scale, 7 * scale);
        let (x0, y0) = (width.saturating_sub(tw) / 2, height.saturating_sub(th) / 2);
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c);
            for (gy, bits) in rows.iter().enumerate() {
                for gx in 0..5u32 {
                    if bits & (0x10 >> gx) != 0 {
                        let x = x0 + (i as u32 * 6 + gx) * scale;
                        img.fill_rect(x, y0 + gy as u32 * scale, scale, scale, [255, 255, 255]);
                    }
                }
            }
        }
        img
    }

    /// A tile's name band: `label` upper-cased, white on near-black, as wide as the text (cut to
    /// fit `max_width`), sized for a tile `tile_height` high. Both sides even.
    pub fn name_band(label: &str, max_width: u32, tile_height: u32) -> I420 {
        let scale = (tile_height / 120).clamp(1, 3);
        let pad = 2 * scale;
        let advance = 6 * scale;
        let fits = (max_width.saturating_sub(2 * pad) / advance).max(1) as usize;
        let text: Vec<char> = label.trim().chars().map(|c| c.to_ascii_uppercase()).take(fits).collect();
        let text = if text.is_empty() { vec!['?'] } else { text };
        let width = ((text.len() as u32 * advance - scale + 2 * pad).min(max_width.max(2)) + 1) & !1;
        let height = (7 * scale + 2 * pad + 1) & !1;
        let mut img = I420::solid(width, height, [0x1E, 0x1F, 0x22]);
        for (i, c) in text.iter().enumerate() {
            for (gy, bits) in glyph(*c).iter().enumerate() {
                for gx in 0..5u32 {
                    if bits & (0x10 >> gx) != 0 {
                        let x = pad + (i as u32 * 6 + gx) * scale;
                        img.fill_rect(x, pad + gy as u32 * scale, scale, scale, [255, 255, 255]);
                    }
                }
            }
        }
        img
    }

    fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, rgb: [u8; 3]) {
        let (ys, cs) = strides(self.width);
        let luma = ys * self.height as usize;
        let chroma = cs * (self.height as usize / 2);
        let [yy, u, v] = yuv(rgb);
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                self.data[row as usize * ys + col as usize] = yy;
                let c = (row / 2) as usize * cs + (col / 2) as usize;
                self.data[luma + c] = u;
                self.data[luma + chroma + c] = v;
            }
        }
    }
}

/// GStreamer's default I420 strides (luma, chroma): rows padded to 4 bytes.
fn strides(width: u32) -> (usize, usize) {
    let w = width as usize;
    (w.next_multiple_of(4), w.div_ceil(2).next_multiple_of(4))
}

/// 5x7 glyphs, one byte per row, bit 4 = leftmost column.
fn glyph(c: char) -> [u8; 7] {
    const LETTERS: [[u8; 7]; 26] = [
        [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // A
        [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E], // B
        [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], // C
        [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E], // D
        [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], // E
        [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10], // F
        [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], // G
        [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // H
        [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], // I
        [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C], // J
        [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], // K
        [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F], // L
        [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], // M
        [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11], // N
        [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // O
        [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10], // P
        [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], // Q
        [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11], // R
        [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], // S
        [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // T
        [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // U
        [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04], // V
        [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], // W
        [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11], // X
        [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], // Y
        [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F], // Z
    ];
    const DIGITS: [[u8; 7]; 10] = [
        [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
        [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
        [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
        [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
        [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
        [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
        [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
        [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
        [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
        [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
    ];
    match c {
        'A'..='Z' => LETTERS[c as usize - 'A' as usize],
        '0'..='9' => DIGITS[c as usize - '0' as usize],
        ' ' => [0; 7],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04], // ?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_bands_carry_the_name_and_fit_the_tile() {
        let (a, b) = (I420::name_band("alice", 320, 180), I420::name_band("bob", 320, 180));
        assert!(a.width > b.width, "a longer name, a wider band");
        assert_eq!((a.width % 2, a.height % 2), (0, 0));
        let white = a.data[..(a.width * a.height) as usize].iter().filter(|y| **y > 200).count();
        assert!(white > 20, "the letters are drawn");
        assert_ne!(I420::name_band("ann", 320, 180).data, I420::name_band("amy", 320, 180).data, "names differ");
        let long = I420::name_band(&"x".repeat(200), 100, 180);
        assert!(long.width <= 100, "cut to the tile");
        assert_eq!(I420::name_band("", 100, 180).width, I420::name_band("?", 100, 180).width);
    }

    #[test]
    fn initials_of_labels() {
        assert_eq!(initials("Ada Lovelace"), "AL");
        assert_eq!(initials("grace"), "G");
        assert_eq!(initials("alan mathison turing"), "AM");
        assert_eq!(initials("bob_smith"), "BS");
        assert_eq!(initials("  "), "?");
        assert_eq!(initials("Émile Zola"), "?Z");
    }

    #[test]
    fn colours_are_stable_and_vary() {
        assert_eq!(colour(42), colour(42));
        let distinct: std::collections::HashSet<_> = (0..32).map(colour).collect();
        assert!(distinct.len() >= 6, "{distinct:?}");
    }

    #[test]
    fn placeholder_has_the_colour_at_the_edges_and_white_initials_in_the_middle() {
        let img = I420::placeholder(320, 180, 7, "Ada Lovelace");
        assert_eq!(img.data.len(), 320 * 180 * 3 / 2);
        let y_bg = yuv(colour(7))[0];
        assert_eq!(img.data[10 * 320 + 10], y_bg);
        // 'A' row 3 is full: the bar across the middle of the left glyph is white.
        let scale = 180 / 4 / 7;
        let (tw, th) = (2 * 6 * scale - scale, 7 * scale);
        let (x0, y0) = ((320 - tw) / 2, (180 - th) / 2);
        let y = (y0 + 3 * scale + scale / 2) as usize;
        assert_eq!(img.data[y * 320 + (x0 + 2 * scale) as usize], 235);
    }

    #[test]
    fn odd_chroma_widths_are_padded() {
        let img = I420::solid(6, 2, [0, 0, 0]);
        assert_eq!(img.data.len(), 8 * 2 + 2 * 4);
    }
}
