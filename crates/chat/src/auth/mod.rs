//! Accounts: password hashing, session tokens and login rate limiting.

mod password;
mod ratelimit;
mod token;

pub use password::{hash_password, verify_password};
pub use ratelimit::{Limit, RateLimiter};
pub use token::{hash_token, new_token};
