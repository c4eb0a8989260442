//! The grid (sans-IO): where each source's tile sits in the composite.
//!
//! `n` tiles (after the `max_tiles` cap) go in a grid of `cols = ceil(sqrt(n))` columns and
//! `rows = ceil(n / cols)` rows: 1 → full frame, 2 → 2x1, 3–4 → 2x2, 5–6 → 3x2, 7–9 → 3x3, 10–12 →
//! 4x3 … Cells fill row by row in join order; an incomplete last row is centred. Each tile is the
//! largest exact 16:9 rectangle that fits its cell less a `border` margin on every side (room for the
//! dominant-speaker border), centred in the cell. A source of another aspect is letterboxed
//! inside its tile by the pipeline, so the layout never depends on caps and stays deterministic.
//!
//! Every coordinate and size is even: I420 has half-resolution chroma, and odd offsets would
//! smear a tile's colour into its neighbour's.

use crate::SourceId;

/// A rectangle in output pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub fn centre(&self) -> (u32, u32) {
        (self.x + self.width / 2, self.y + self.height / 2)
    }

    /// This rectangle grown by `by` pixels on every side (callers keep it inside the frame).
    pub fn expand(&self, by: u32) -> Rect {
        Rect { x: self.x - by, y: self.y - by, width: self.width + 2 * by, height: self.height + 2 * by }
    }

    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x && y >= self.y && x < self.x + self.width && y < self.y + self.height
    }
}

/// One shown source and where its picture is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub source: SourceId,
    pub rect: Rect,
}

/// Tile aspect ratio (16:9, what cameras and the composite use).
const ASPECT_W: u32 = 16;
const ASPECT_H: u32 = 9;

/// Thickness of the dominant-speaker border for an output `height` (6 px at 720p, 4 at 360p).
pub fn border_width(height: u32) -> u32 {
    even((height / 120).max(4))
}

/// Lays out `sources` (in join order) on a `width` x `height` frame: the first `max_tiles` get a
/// tile, the rest are not shown. On a frame too small for that many tiles of at least 32x18,
/// fewer are shown.
pub fn grid(sources: &[SourceId], width: u32, height: u32, max_tiles: usize) -> Vec<Tile> {
    let margin = border_width(height);
    let mut n = sources.len().min(max_tiles);
    let (cols, rows, tile_w, tile_h) = loop {
        if n == 0 {
            return Vec::new();
        }
        let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n) as u32;
        let rows = (n as u32).div_ceil(cols);
        let (w, h) = ((width / cols).saturating_sub(2 * margin), (height / rows).saturating_sub(2 * margin));
        match fit_16_9(w, h) {
            Some((tile_w, tile_h)) => break (cols, rows, tile_w, tile_h),
            None => n -= 1,
        }
    };
    let (cell_w, cell_h) = (width / cols, height / rows);
    // Centre the whole grid (cells may not divide the frame exactly).
    let (grid_x, grid_y) = ((width - cols * cell_w) / 2, (height - rows * cell_h) / 2);
    sources[..n]
        .iter()
        .enumerate()
        .map(|(i, &source)| {
            let (row, col) = ((i as u32) / cols, (i as u32) % cols);
            let in_row = if row == rows - 1 { n as u32 - row * cols } else { cols };
            let row_x = grid_x + (cols - in_row) * cell_w / 2;
            let x = row_x + col * cell_w + (cell_w - tile_w) / 2;
            let y = grid_y + row * cell_h + (cell_h - tile_h) / 2;
            Tile { source, rect: Rect { x: even(x), y: even(y), width: tile_w, height: tile_h } }
        })
        .collect()
}

/// The largest exactly-16:9 rectangle with even sides inside `w` x `h` (a multiple of 32x18),
/// so a 16:9 camera scales without the 1 px letterbox bars rounding would add; None if even
/// 32x18 does not fit.
fn fit_16_9(w: u32, h: u32) -> Option<(u32, u32)> {
    let k = (w / (2 * ASPECT_W)).min(h / (2 * ASPECT_H));
    (k > 0).then_some((2 * ASPECT_W * k, 2 * ASPECT_H * k))
}

fn even(v: u32) -> u32 {
    v & !1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<SourceId> {
        (1..=n).collect()
    }

    fn dims(tiles: &[Tile]) -> (usize, usize) {
        let mut xs: Vec<u32> = tiles.iter().map(|t| t.rect.x).collect();
        let mut ys: Vec<u32> = tiles.iter().map(|t| t.rect.y).collect();
        xs.sort();
        xs.dedup();
        ys.sort();
        ys.dedup();
        (xs.len(), ys.len())
    }

    #[test]
    fn one_source_fills_the_frame_less_the_border() {
        let t = grid(&[7], 1280, 720, 9);
        assert_eq!(t, vec![Tile { source: 7, rect: Rect { x: 16, y: 8, width: 1248, height: 702 } }]);
    }

    #[test]
    fn grid_shapes() {
        // (n, distinct columns used, rows)
        for (n, cols, rows) in [(2, 2, 1), (4, 2, 2), (6, 3, 2), (9, 3, 3)] {
            let t = grid(&ids(n), 1280, 720, 9);
            assert_eq!(t.len(), n as usize);
            assert_eq!(dims(&t), (cols, rows), "n = {n}");
        }
    }

    #[test]
    fn incomplete_last_row_is_centred() {
        let t = grid(&ids(3), 1280, 720, 9);
        assert_eq!(t[2].rect.centre().0, 640);
        assert!(t[0].rect.y < t[2].rect.y);
        let t = grid(&ids(7), 1280, 720, 9);
        assert_eq!(t[6].rect.centre().0, 640);
    }

    #[test]
    fn tiles_are_16_9_even_disjoint_and_inside_with_room_for_the_border() {
        for (w, h) in [(1280, 720), (640, 360), (1920, 1080), (320, 240), (64, 64)] {
            let b = border_width(h);
            for n in 1..=12 {
                let t = grid(&ids(n), w, h, 12);
                for (i, a) in t.iter().enumerate() {
                    let r = a.rect;
                    assert!(r.x % 2 == 0 && r.y % 2 == 0 && r.width % 2 == 0 && r.height % 2 == 0, "{r:?}");
                    assert_eq!(r.width * 9, r.height * 16, "{r:?}");
                    let outer = r.expand(b);
                    assert!(r.x >= b && r.y >= b && outer.x + outer.width <= w && outer.y + outer.height <= h);
                    for o in &t[i + 1..] {
                        let p = o.rect.expand(b);
                        let overlap = outer.x < p.x + p.width
                            && p.x < outer.x + outer.width
                            && outer.y < p.y + p.height
                            && p.y < outer.y + outer.height;
                        assert!(!overlap, "{outer:?} overlaps {p:?} (n = {n}, {w}x{h})");
                    }
                }
            }
        }
    }

    #[test]
    fn join_order_decides_positions_and_extra_sources_are_not_shown() {
        let t = grid(&[30, 10, 20], 1280, 720, 9);
        assert_eq!(t.iter().map(|t| t.source).collect::<Vec<_>>(), vec![30, 10, 20]);
        assert!(t[0].rect.x < t[1].rect.x);
        let t = grid(&ids(12), 1280, 720, 9);
        assert_eq!(t.len(), 9);
        assert_eq!(t.last().map(|t| t.source), Some(9));
        assert!(grid(&[], 1280, 720, 9).is_empty());
        assert_eq!(grid(&ids(9), 64, 64, 9).len(), 1, "a tiny frame shows what fits");
        assert!(grid(&ids(3), 1280, 720, 0).is_empty());
    }

    #[test]
    fn positions_are_deterministic() {
        assert_eq!(grid(&ids(5), 640, 360, 9), grid(&ids(5), 640, 360, 9));
    }
}
