//! Input rules shared by the routes.

use super::error::{ApiError, ApiResult};
use crate::id::Id;
use std::borrow::Cow;

pub const MAX_MESSAGE_CHARS: usize = 2000;
pub const MAX_MENTIONS: usize = 20;
/// The smallest body limit the API runs with: a message of [`MAX_MESSAGE_CHARS`] characters must
/// fit however its JSON spells them, and `\uD83D\uDE00` spells one emoji in 12 bytes.
pub const MIN_BODY_BYTES: usize = 12 * MAX_MESSAGE_CHARS + 4096;
/// Longest slow mode, seconds (six hours, as Discord).
pub const MAX_SLOW_MODE_SECS: i64 = 21_600;

/// 2–32 characters of ASCII letters, digits, `_`, `.`, `-`.
pub fn username(s: &str) -> ApiResult<()> {
    let ok = (2..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("username must be 2-32 characters of letters, digits, '_', '.', '-'"))
    }
}

/// 8–128 characters (by char, not byte).
pub fn password(s: &str) -> ApiResult<()> {
    let n = s.chars().count();
    if (8..=128).contains(&n) { Ok(()) } else { Err(ApiError::invalid("password must be 8-128 characters")) }
}

/// Trimmed, 1..=`max` characters, line endings normalised to `\n` (CRLF and lone CR, as typed on
/// Windows or pasted), no other control characters but tabs.
pub fn text<'a>(field: &str, s: &'a str, max: usize) -> ApiResult<Cow<'a, str>> {
    let t = s.trim();
    let t = if t.contains('\r') { Cow::Owned(t.replace("\r\n", "\n").replace('\r', "\n")) } else { Cow::Borrowed(t) };
    let n = t.chars().count();
    if n == 0 || n > max {
        return Err(ApiError::invalid(format!("{field} must be 1-{max} characters")));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::invalid(format!("{field} contains control characters")));
    }
    Ok(t)
}

/// A slow mode of 0 (off) to [`MAX_SLOW_MODE_SECS`] seconds.
pub fn slow_mode(secs: i64) -> ApiResult<()> {
    if (0..=MAX_SLOW_MODE_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("slow_mode_secs must be 0-{MAX_SLOW_MODE_SECS}")))
    }
}

/// User ids mentioned as `<@id>`, deduplicated, in order of appearance, at most [`MAX_MENTIONS`].
pub fn mentions(content: &str) -> Vec<Id> {
    let mut out = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let end = rest.find('>').unwrap_or(0);
        if let Ok(id) = rest[..end].parse::<i64>() {
            let id = Id(id);
            if !out.contains(&id) && out.len() < MAX_MENTIONS {
                out.push(id);
            }
        }
    }
    out
}

/// `s` percent-encoded for one URL path segment (a file name in a link).
pub fn url_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A client's file name made safe to store and show: the last path component, no control
/// characters, at most 255 bytes, never empty.
pub fn file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    let mut clean = clean.trim().trim_start_matches('.').to_string();
    while clean.len() > 255 {
        clean.pop();
    }
    if clean.is_empty() { "file".into() } else { clean }
}

/// A reaction: one Unicode emoji (with its modifiers, joiners and variation selectors), at most
/// 32 bytes; no text, no custom emoji.
pub fn emoji(s: &str) -> ApiResult<&str> {
    let bad = || ApiError::invalid("emoji: one Unicode emoji");
    if s.is_empty() || s.len() > 32 {
        return Err(bad());
    }
    let pictographic = |c: char| {
        matches!(u32::from(c), 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2190..=0x21FF | 0x2300..=0x23FF
            | 0x2B00..=0x2BFF | 0x3030 | 0x303D | 0x3297 | 0x3299 | 0xA9 | 0xAE | 0x2122 | 0x203C | 0x2049)
    };
    // Joiners, variation selectors, keycaps and tags, and the keycap bases.
    let glue = |c: char| {
        matches!(u32::from(c), 0x200D | 0xFE0E | 0xFE0F | 0x20E3 | 0xE0020..=0xE007F) || "#*0123456789".contains(c)
    };
    let keycap = s.contains('\u{20E3}');
    if !(keycap || s.chars().any(pictographic)) || !s.chars().all(|c| pictographic(c) || glue(c)) {
        return Err(bad());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reactions_are_one_unicode_emoji() {
        for ok in ["👍", "❤️", "👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "🎉"] {
            assert!(super::emoji(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "👍 ", ":smile:", "<script>", "12", &"👍".repeat(9)] {
            assert!(super::emoji(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names_are_their_last_component_and_links_are_encoded() {
        assert_eq!(super::file_name("../../etc/passwd"), "passwd");
        assert_eq!(super::file_name("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(super::file_name(".hidden\u{7}"), "hidden");
        assert_eq!(super::file_name(""), "file");
        assert_eq!(super::file_name(&"é".repeat(200)).len(), 254);
        assert_eq!(super::url_component("a b/ü.png"), "a%20b%2F%C3%BC.png");
    }

    use super::*;

    #[test]
    fn rules() {
        assert!(username("al").is_ok() && username("a").is_err() && username("bad name").is_err());
        assert!(username("ünï").is_err());
        assert!(password("12345678").is_ok() && password("1234567").is_err());
        assert_eq!(text("content", "  hi \n", 10).unwrap(), "hi");
        assert!(text("content", "   ", 10).is_err());
        assert!(text("content", "a\u{0}b", 10).is_err());
        assert!(text("content", &"x".repeat(11), 10).is_err());
        assert_eq!(text("content", "one\r\ntwo\rthree\n", 20).unwrap(), "one\ntwo\nthree");
        assert!(text("content", "a\u{1b}[31mb", 10).is_err(), "other controls are still refused");
        let emoji = "\u{1F600}".repeat(MAX_MESSAGE_CHARS);
        let escaped = serde_json::to_string(&serde_json::json!({ "content": emoji })).unwrap();
        let ascii_escaped: String = escaped
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    c.to_string()
                } else {
                    c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("\\u{u:04X}")).collect()
                }
            })
            .collect();
        assert!(ascii_escaped.len() <= MIN_BODY_BYTES, "{} bytes", ascii_escaped.len());
    }

    #[test]
    fn mention_parsing() {
        assert_eq!(mentions("hi <@12> and <@34>, <@12> again <@x> <@"), vec![Id(12), Id(34)]);
        assert!(mentions("no mentions <@> here").is_empty());
    }
}
