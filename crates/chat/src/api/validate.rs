//! Input rules shared by the routes.

use super::error::{ApiError, ApiResult};
use crate::id::Id;

pub const MAX_MESSAGE_CHARS: usize = 2000;
pub const MAX_MENTIONS: usize = 20;

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

/// Trimmed, 1..=`max` characters, no control characters but newlines and tabs.
pub fn text<'a>(field: &str, s: &'a str, max: usize) -> ApiResult<&'a str> {
    let t = s.trim();
    let n = t.chars().count();
    if n == 0 || n > max {
        return Err(ApiError::invalid(format!("{field} must be 1-{max} characters")));
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::invalid(format!("{field} contains control characters")));
    }
    Ok(t)
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

#[cfg(test)]
mod tests {
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
    }

    #[test]
    fn mention_parsing() {
        assert_eq!(mentions("hi <@12> and <@34>, <@12> again <@x> <@"), vec![Id(12), Id(34)]);
        assert!(mentions("no mentions <@> here").is_empty());
    }
}
