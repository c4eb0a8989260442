//! Accounts: password hashing, session tokens, login rate limiting, and voice join tokens.

mod password;
mod ratelimit;
mod token;
mod voice_token;

pub use password::{hash_password, verify_password};
pub use ratelimit::{Limit, RateLimiter};
pub use token::{hash_token, new_token};
pub use voice_token::{VoiceGrant, VoiceTokenError, VoiceTokens};
