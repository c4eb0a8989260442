//! Pictures as the VP8 codec sees them: 8-bit I420 (full-resolution Y, U and V at half width and
//! height), with BT.601 limited-range colour conversion, which is what libvpx and GStreamer assume
//! for SD/low-resolution video. Tests judge video by colour, so the helpers here are about building
//! solid pictures and reading back the mean colour of a region.

/// An 8-bit I420 picture with tight strides: `y` is `width` per row, `u`/`v` are
/// [`chroma_width`](I420::chroma_width) per row.
#[derive(Clone, PartialEq, Eq)]
pub struct I420 {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl std::fmt::Debug for I420 {
    // The planes would print tens of thousands of numbers; size and centre colour say enough.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "I420 {}x{} centre {:?}", self.width, self.height, self.centre_rgb())
    }
}

impl I420 {
    /// A picture of one colour.
    pub fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Self {
        let [y, u, v] = rgb_to_yuv(rgb);
        let (cw, ch) = chroma_size(width, height);
        Self {
            width,
            height,
            y: vec![y; width as usize * height as usize],
            u: vec![u; cw as usize * ch as usize],
            v: vec![v; cw as usize * ch as usize],
        }
    }

    /// Overwrites the bottom `share` of the luma plane with xorshift noise (grey, so it never
    /// looks like a probe colour): the encoder then spends its bitrate as on a real camera.
    pub fn add_noise(&mut self, share: f32, seed: &mut u64) {
        if share <= 0.0 {
            return;
        }
        let rows = ((self.height as f32 * share.min(1.0)) as usize).min(self.height as usize);
        let start = (self.height as usize - rows) * self.width as usize;
        for chunk in self.y[start..].chunks_mut(8) {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            for (b, r) in chunk.iter_mut().zip(seed.to_le_bytes()) {
                *b = 16 + r % 220;
            }
        }
    }

    pub fn chroma_width(&self) -> u32 {
        chroma_size(self.width, self.height).0
    }

    /// Paints a rectangle (clipped to the picture); chroma is painted per 2x2 block touched.
    pub fn fill_rect(&mut self, x: u32, y: u32, w: u32, h: u32, rgb: [u8; 3]) {
        let [yy, uu, vv] = rgb_to_yuv(rgb);
        let (x1, y1) = ((x + w).min(self.width), (y + h).min(self.height));
        let cw = self.chroma_width() as usize;
        for row in y..y1 {
            for col in x..x1 {
                self.y[row as usize * self.width as usize + col as usize] = yy;
                let c = (row / 2) as usize * cw + (col / 2) as usize;
                self.u[c] = uu;
                self.v[c] = vv;
            }
        }
    }

    /// The colour of one pixel; `None` outside the picture.
    pub fn rgb_at(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        self.mean_rgb(x, y, 1, 1)
    }

    /// The mean colour of a `w`x`h` block at (`x`, `y`), clipped to the picture; `None` if nothing
    /// of it lies inside. Means are taken in YUV, then converted.
    pub fn mean_rgb(&self, x: u32, y: u32, w: u32, h: u32) -> Option<[u8; 3]> {
        let (x1, y1) = (x.saturating_add(w).min(self.width), y.saturating_add(h).min(self.height));
        if x >= x1 || y >= y1 {
            return None;
        }
        let cw = self.chroma_width() as usize;
        let (mut sum, mut n) = ([0u64; 3], 0u64);
        for row in y..y1 {
            for col in x..x1 {
                let c = (row / 2) as usize * cw + (col / 2) as usize;
                let luma = self.y.get(row as usize * self.width as usize + col as usize);
                let (Some(&ly), Some(&cu), Some(&cv)) = (luma, self.u.get(c), self.v.get(c)) else {
                    return None; // planes shorter than the size says: not a picture we built
                };
                sum[0] += u64::from(ly);
                sum[1] += u64::from(cu);
                sum[2] += u64::from(cv);
                n += 1;
            }
        }
        Some(yuv_to_rgb(sum.map(|s| ((s + n / 2) / n) as u8)))
    }

    /// The mean colour of the central 16x16 block (the whole picture if smaller).
    pub fn centre_rgb(&self) -> Option<[u8; 3]> {
        let (w, h) = (self.width.min(16), self.height.min(16));
        self.mean_rgb((self.width - w) / 2, (self.height - h) / 2, w, h)
    }
}

/// Chroma plane size of a `width`x`height` I420 picture (odd sizes round up).
pub fn chroma_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(2), height.div_ceil(2))
}

/// BT.601 limited range: Y in 16..=235, U/V in 16..=240.
pub fn rgb_to_yuv([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
    let u = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
    let v = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
    [y, u, v].map(|c| c.round().clamp(0.0, 255.0) as u8)
}

/// The inverse of [`rgb_to_yuv`], clamped to 0..=255.
pub fn yuv_to_rgb([y, u, v]: [u8; 3]) -> [u8; 3] {
    let (y, u, v) = (1.164_383 * (f32::from(y) - 16.0), f32::from(u) - 128.0, f32::from(v) - 128.0);
    let r = y + 1.596_027 * v;
    let g = y - 0.391_762 * u - 0.812_968 * v;
    let b = y + 2.017_232 * u;
    [r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8)
}

/// Whether every channel of `a` is within `tolerance` of `b`'s.
pub fn colour_close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_round_trip_is_close() {
        for rgb in [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [30, 140, 200]] {
            let back = yuv_to_rgb(rgb_to_yuv(rgb));
            assert!(colour_close(back, rgb, 3), "{rgb:?} -> {back:?}");
        }
        assert_eq!(rgb_to_yuv([0, 0, 0]), [16, 128, 128]);
        assert_eq!(rgb_to_yuv([255, 255, 255]), [235, 128, 128]);
    }

    #[test]
    fn solid_and_blocks() {
        let mut p = I420::solid(7, 5, [0, 0, 255]);
        assert_eq!((p.y.len(), p.u.len(), p.chroma_width()), (35, 12, 4));
        assert!(colour_close(p.centre_rgb().unwrap(), [0, 0, 255], 3));
        p.fill_rect(0, 0, 2, 2, [255, 0, 0]);
        assert!(colour_close(p.rgb_at(1, 1).unwrap(), [255, 0, 0], 3));
        assert!(colour_close(p.rgb_at(6, 4).unwrap(), [0, 0, 255], 3));
        assert_eq!(p.rgb_at(7, 0), None);
        assert_eq!(p.mean_rgb(6, 4, 100, 100), p.rgb_at(6, 4));
    }
}
