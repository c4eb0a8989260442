//! Accounts: password hashing, session tokens, login rate limiting, voice join tokens, live watch tokens, and the
//! watch that ends connections whose login was revoked or expired.

mod cooldown;
mod logins;
mod password;
mod ratelimit;
mod token;
mod voice_token;
mod watch_token;

pub use cooldown::Cooldowns;
pub use logins::LoginWatch;
pub use password::{HashError, Passwords, hash_password, verify_password};
pub use ratelimit::{Limit, RateLimiter};
pub use token::{hash_token, new_token};
pub use voice_token::{VoiceGrant, VoiceTokenError, VoiceTokens};
pub use watch_token::WatchTokens;
