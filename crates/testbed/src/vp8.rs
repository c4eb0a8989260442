//! VP8 through libvpx (`env-libvpx-sys`, Debian `libvpx-dev`): a real-time encoder for the synthetic
//! camera and a decoder for what arrives. A thin safe layer: each context is boxed (libvpx takes it
//! by pointer on every call and nowhere promises it may move between them), the Rust value exists
//! only once libvpx initialised it, and `Drop` destroys it; every libvpx error becomes an `anyhow`
//! error carrying libvpx's message.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_long, c_uint, c_ulong};

use anyhow::{Context, Result, bail, ensure};
use vpx_sys::{
    VPX_DECODER_ABI_VERSION, VPX_DL_REALTIME, VPX_EFLAG_FORCE_KF, VPX_ENCODER_ABI_VERSION, VPX_ERROR_RESILIENT_DEFAULT,
    VPX_FRAME_IS_KEY, vp8_dec_control_id, vp8e_enc_control_id, vpx_codec_ctx_t, vpx_codec_cx_pkt_kind,
    vpx_codec_dec_cfg_t, vpx_codec_enc_cfg_t, vpx_codec_err_t, vpx_image_t, vpx_img_fmt, vpx_kf_mode, vpx_rc_mode,
};

use crate::picture::{I420, chroma_size};

/// libvpx's speed setting for VP8 (-16..=16): the fastest, as real-time senders use.
const CPU_USED: c_int = 16;
/// Largest side we encode; far beyond a test camera, it only stops absurd sizes early.
const MAX_SIDE: u32 = 4096;

/// A zeroed codec context: null pointers, `VPX_CODEC_OK`, which is what libvpx expects to init.
fn new_ctx() -> Box<vpx_codec_ctx_t> {
    // SAFETY: vpx_codec_ctx_t is plain C data (pointers, integers, an enum whose 0 is VPX_CODEC_OK,
    // a union of pointers); all-zero is a valid value of every field.
    Box::new(unsafe { MaybeUninit::zeroed().assume_init() })
}

/// `Err` with libvpx's description of `err` and the context's error detail.
fn check(ctx: &mut vpx_codec_ctx_t, err: vpx_codec_err_t, what: &str) -> Result<()> {
    if err == vpx_codec_err_t::VPX_CODEC_OK {
        return Ok(());
    }
    // SAFETY: ctx is an initialised context; the detail string is owned by it (or static) and
    // copied out at once.
    let detail = unsafe { c_text(vpx_sys::vpx_codec_error_detail(ctx)) };
    match detail {
        Some(d) => bail!("{what}: {} ({d})", err_text(err)),
        None => bail!("{what}: {}", err_text(err)),
    }
}

/// libvpx's text for an error code. Used alone where init failed: the context is torn down then,
/// and its detail pointer may point into freed state.
fn err_text(err: vpx_codec_err_t) -> String {
    // SAFETY: vpx_codec_err_to_string returns a static string for any code.
    unsafe { c_text(vpx_sys::vpx_codec_err_to_string(err)) }.unwrap_or_else(|| format!("{err:?}"))
}

/// # Safety
/// `p` is null or a NUL-terminated string valid for the duration of the call.
unsafe fn c_text(p: *const std::os::raw::c_char) -> Option<String> {
    // SAFETY: guaranteed by the caller.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// A VP8 encoder tuned for real time: one pass, CBR, no lookahead, error resilient, fastest speed,
/// keyframes when asked for (and rarely otherwise).
pub struct Vp8Encoder {
    ctx: Box<vpx_codec_ctx_t>,
    width: u32,
    height: u32,
    pts: i64,
    force_keyframe: bool,
    /// The picture laid out contiguously, as `vpx_img_wrap` wants it.
    frame: Vec<u8>,
}

// SAFETY: a libvpx context has no thread affinity; it is only ever used through &mut self, so
// never from two threads at once.
unsafe impl Send for Vp8Encoder {}

impl Vp8Encoder {
    /// `width` and `height` must be even (I420 chroma is exactly half of them).
    pub fn new(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Result<Self> {
        ensure!(width > 0 && height > 0 && width <= MAX_SIDE && height <= MAX_SIDE, "bad size {width}x{height}");
        ensure!(
            width.is_multiple_of(2) && height.is_multiple_of(2),
            "VP8 camera size must be even, got {width}x{height}"
        );
        ensure!((1..=240).contains(&fps), "fps must be 1..=240, got {fps}");
        ensure!(bitrate_kbps > 0, "bitrate must be positive");
        let mut cfg = MaybeUninit::<vpx_codec_enc_cfg_t>::uninit();
        // SAFETY: vpx_codec_vp8_cx returns a static interface; config_default fully writes cfg on
        // success, and we only assume it initialised then.
        let mut cfg = unsafe {
            let err = vpx_sys::vpx_codec_enc_config_default(vpx_sys::vpx_codec_vp8_cx(), cfg.as_mut_ptr(), 0);
            ensure!(err == vpx_codec_err_t::VPX_CODEC_OK, "vpx_codec_enc_config_default: {}", err_text(err));
            cfg.assume_init()
        };
        cfg.g_w = width;
        cfg.g_h = height;
        cfg.g_timebase.num = 1;
        cfg.g_timebase.den = fps as c_int;
        cfg.g_threads = 1;
        cfg.g_lag_in_frames = 0;
        cfg.g_error_resilient = VPX_ERROR_RESILIENT_DEFAULT;
        cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = bitrate_kbps;
        cfg.rc_dropframe_thresh = 0;
        // The sender decides keyframes (on request, and a periodic safety net of its own).
        cfg.kf_mode = vpx_kf_mode::VPX_KF_AUTO;
        cfg.kf_max_dist = 100_000;

        let mut ctx = new_ctx();
        // SAFETY: ctx is zeroed and boxed (stable address); cfg outlives the call (libvpx copies
        // it); the ABI version is the one the bindings were generated for.
        let err = unsafe {
            vpx_sys::vpx_codec_enc_init_ver(
                &mut *ctx,
                vpx_sys::vpx_codec_vp8_cx(),
                &cfg,
                0,
                VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        // On failure libvpx has already torn the context down; ours is never built, so no Drop.
        ensure!(err == vpx_codec_err_t::VPX_CODEC_OK, "initialising the VP8 encoder: {}", err_text(err));
        let mut enc = Self { ctx, width, height, pts: 0, force_keyframe: false, frame: Vec::new() };
        // SAFETY: an initialised encoder context; VP8E_SET_CPUUSED takes one int.
        let err = unsafe {
            vpx_sys::vpx_codec_control_(&mut *enc.ctx, vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int, CPU_USED)
        };
        check(&mut enc.ctx, err, "setting cpu-used")?;
        Ok(enc)
    }

    /// Makes the next encoded frame a keyframe.
    pub fn force_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Encodes one picture (of the encoder's size); returns the compressed frames and whether each
    /// is a keyframe. Real-time settings give exactly one frame per picture.
    pub fn encode(&mut self, picture: &I420) -> Result<Vec<(Vec<u8>, bool)>> {
        let (w, h) = (self.width, self.height);
        ensure!(
            (picture.width, picture.height) == (w, h),
            "picture is {}x{}, encoder {w}x{h}",
            picture.width,
            picture.height
        );
        let (cw, ch) = chroma_size(w, h);
        let (luma, chroma) = ((w * h) as usize, (cw * ch) as usize);
        ensure!(picture.y.len() == luma && picture.u.len() == chroma && picture.v.len() == chroma, "malformed picture");
        self.frame.clear();
        self.frame.extend_from_slice(&picture.y);
        self.frame.extend_from_slice(&picture.u);
        self.frame.extend_from_slice(&picture.v);

        let mut img = MaybeUninit::<vpx_image_t>::uninit();
        let flags = if std::mem::take(&mut self.force_keyframe) { VPX_EFLAG_FORCE_KF as c_long } else { 0 };
        // SAFETY: frame holds w*h + 2*(w/2)*(h/2) bytes, exactly the I420 layout vpx_img_wrap
        // computes for even sizes with stride alignment 1; img is written by vpx_img_wrap (it
        // zeroes then fills it) and used only through the pointer it returns, while frame lives.
        let err = unsafe {
            let wrapped = vpx_sys::vpx_img_wrap(
                img.as_mut_ptr(),
                vpx_img_fmt::VPX_IMG_FMT_I420,
                w,
                h,
                1,
                self.frame.as_mut_ptr(),
            );
            ensure!(!wrapped.is_null(), "vpx_img_wrap refused a {w}x{h} picture");
            vpx_sys::vpx_codec_encode(&mut *self.ctx, wrapped, self.pts, 1, flags, VPX_DL_REALTIME as c_ulong)
        };
        check(&mut self.ctx, err, "VP8 encode")?;
        self.pts += 1;

        let mut out = Vec::new();
        let mut iter: vpx_sys::vpx_codec_iter_t = std::ptr::null();
        loop {
            // SAFETY: iterating an initialised encoder's output; each packet and its buffer stay
            // valid until the next encode call, and frame bytes are copied out before that.
            unsafe {
                let pkt = vpx_sys::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if pkt.is_null() {
                    break;
                }
                if (*pkt).kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let frame = (*pkt).data.frame;
                if frame.buf.is_null() || frame.sz == 0 {
                    continue;
                }
                let bytes = std::slice::from_raw_parts(frame.buf as *const u8, frame.sz as usize).to_vec();
                out.push((bytes, frame.flags & VPX_FRAME_IS_KEY != 0));
            }
        }
        Ok(out)
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised (constructors build Self only on success) and is
        // destroyed exactly once.
        unsafe { vpx_sys::vpx_codec_destroy(&mut *self.ctx) };
    }
}

/// A VP8 decoder. What it cannot decode is an error rather than a picture: a delta frame with no
/// keyframe before it, data libvpx rejects, or a frame libvpx flags as corrupted (a lost reference).
pub struct Vp8Decoder {
    ctx: Box<vpx_codec_ctx_t>,
}

// SAFETY: as for Vp8Encoder: no thread affinity, only used through &mut self.
unsafe impl Send for Vp8Decoder {}

impl Vp8Decoder {
    pub fn new() -> Result<Self> {
        let cfg = vpx_codec_dec_cfg_t { threads: 1, w: 0, h: 0 };
        let mut ctx = new_ctx();
        // SAFETY: ctx is zeroed and boxed; cfg outlives the call; ABI version of the bindings.
        let err = unsafe {
            vpx_sys::vpx_codec_dec_init_ver(
                &mut *ctx,
                vpx_sys::vpx_codec_vp8_dx(),
                &cfg,
                0,
                VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        ensure!(err == vpx_codec_err_t::VPX_CODEC_OK, "initialising the VP8 decoder: {}", err_text(err));
        Ok(Self { ctx })
    }

    /// Decodes one complete frame; `Ok(None)` if it produced no picture (libvpx may hold one back).
    pub fn decode(&mut self, frame: &[u8]) -> Result<Option<I420>> {
        ensure!(!frame.is_empty(), "empty VP8 frame");
        let len = c_uint::try_from(frame.len()).context("VP8 frame too large")?;
        // SAFETY: an initialised decoder; libvpx reads exactly len bytes of frame during the call.
        let err = unsafe { vpx_sys::vpx_codec_decode(&mut *self.ctx, frame.as_ptr(), len, std::ptr::null_mut(), 0) };
        check(&mut self.ctx, err, "VP8 decode")?;
        let mut corrupted: c_int = 0;
        // SAFETY: VP8D_GET_FRAME_CORRUPTED writes one int through the pointer we pass.
        let err = unsafe {
            vpx_sys::vpx_codec_control_(
                &mut *self.ctx,
                vp8_dec_control_id::VP8D_GET_FRAME_CORRUPTED as c_int,
                &mut corrupted as *mut c_int,
            )
        };
        check(&mut self.ctx, err, "querying frame corruption")?;
        ensure!(corrupted == 0, "VP8 decode: frame corrupted (a reference frame is missing)");

        let mut iter: vpx_sys::vpx_codec_iter_t = std::ptr::null();
        let mut picture = None;
        loop {
            // SAFETY: images returned by get_frame stay valid until the next decode call; they are
            // copied out (copy_image) before that.
            let img = unsafe { vpx_sys::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            if img.is_null() {
                break;
            }
            // SAFETY: img is a non-null image owned by the decoder, valid for this iteration.
            picture = Some(unsafe { copy_image(&*img)? });
        }
        Ok(picture)
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised on construction, destroyed exactly once.
        unsafe { vpx_sys::vpx_codec_destroy(&mut *self.ctx) };
    }
}

/// Copies a decoded 8-bit I420 image into tight planes.
///
/// # Safety
/// `img` must be a valid image from libvpx whose planes cover `d_h` rows of `stride` bytes.
unsafe fn copy_image(img: &vpx_image_t) -> Result<I420> {
    ensure!(img.fmt == vpx_img_fmt::VPX_IMG_FMT_I420, "unexpected decoded format {:?}", img.fmt);
    let (w, h) = (img.d_w, img.d_h);
    ensure!(w > 0 && h > 0 && w <= MAX_SIDE && h <= MAX_SIDE, "decoded size {w}x{h}");
    let (cw, ch) = chroma_size(w, h);
    let plane = |i: usize, pw: u32, ph: u32| -> Result<Vec<u8>> {
        let stride = img.stride[i];
        ensure!(!img.planes[i].is_null() && stride >= pw as c_int, "decoded plane {i} has stride {stride} < {pw}");
        let mut out = Vec::with_capacity((pw * ph) as usize);
        for row in 0..ph as usize {
            // SAFETY: the caller guarantees each of the ph rows holds stride >= pw readable bytes.
            let line = unsafe { std::slice::from_raw_parts(img.planes[i].add(row * stride as usize), pw as usize) };
            out.extend_from_slice(line);
        }
        Ok(out)
    };
    Ok(I420 { width: w, height: h, y: plane(0, w, h)?, u: plane(1, cw, ch)?, v: plane(2, cw, ch)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::colour_close;

    #[test]
    fn solid_colour_survives_encode_and_decode() {
        let mut enc = Vp8Encoder::new(320, 180, 15, 300).unwrap();
        let mut dec = Vp8Decoder::new().unwrap();
        let mut last = None;
        for (i, rgb) in [[255, 0, 0], [255, 0, 0], [0, 200, 0], [0, 200, 0], [0, 200, 0]].into_iter().enumerate() {
            let frames = enc.encode(&I420::solid(320, 180, rgb)).unwrap();
            assert_eq!(frames.len(), 1, "one frame per picture in real time");
            assert_eq!(frames[0].1, i == 0, "only the first frame is a keyframe unless forced");
            let picture = dec.decode(&frames[0].0).unwrap().expect("a picture per frame");
            assert_eq!((picture.width, picture.height), (320, 180));
            last = picture.centre_rgb();
            if i == 0 {
                assert!(colour_close(last.unwrap(), rgb, 12), "{last:?}");
            }
        }
        assert!(colour_close(last.unwrap(), [0, 200, 0], 12), "{last:?}");

        enc.force_keyframe();
        let frames = enc.encode(&I420::solid(320, 180, [0, 0, 255])).unwrap();
        assert!(frames[0].1, "forced keyframe");
        // A fresh decoder starts from it.
        let picture = Vp8Decoder::new().unwrap().decode(&frames[0].0).unwrap().unwrap();
        assert!(colour_close(picture.centre_rgb().unwrap(), [0, 0, 255], 12), "{picture:?}");
    }

    #[test]
    fn delta_frame_first_or_garbage_is_an_error() {
        let mut enc = Vp8Encoder::new(64, 48, 30, 100).unwrap();
        let key = enc.encode(&I420::solid(64, 48, [10, 20, 30])).unwrap().remove(0);
        let delta = enc.encode(&I420::solid(64, 48, [200, 20, 30])).unwrap().remove(0);
        assert!(key.1 && !delta.1);
        let mut dec = Vp8Decoder::new().unwrap();
        assert!(dec.decode(&delta.0).is_err(), "a delta frame needs a keyframe first");
        assert!(dec.decode(&[]).is_err());
        let _ = dec.decode(&[0xff; 50]); // whatever libvpx makes of it, an error or a value
        // The decoder is still usable afterwards.
        assert!(dec.decode(&key.0).unwrap().is_some());
        assert!(dec.decode(&delta.0).unwrap().is_some());
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(Vp8Encoder::new(321, 180, 15, 300).is_err());
        assert!(Vp8Encoder::new(0, 180, 15, 300).is_err());
        let mut enc = Vp8Encoder::new(64, 48, 15, 100).unwrap();
        assert!(enc.encode(&I420::solid(32, 48, [0, 0, 0])).is_err());
    }
}
