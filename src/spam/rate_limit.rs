//! Request rate limits (GCRA, from the `governor` crate): one quota per client
//! address and a ceiling for everyone together.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitSettings;

use super::ClientIp;

/// Which limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum LimitScope {
    Client,
    Global,
}

impl LimitScope {
    /// `client` or `global`.
    pub fn code(self) -> &'static str {
        self.into()
    }
}

/// A refused request: which limit, and when a retry will be let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub scope: LimitScope,
    pub retry_after: Duration,
}

pub struct RateLimiter {
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    global: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl RateLimiter {
    /// The limits of `[rate_limit]`: `per_ip_per_minute` with `per_ip_burst` per
    /// client, `global_per_second` for everyone.
    pub fn from_settings(settings: &RateLimitSettings) -> Self {
        Self::new(
            settings.per_ip_per_minute,
            settings.per_ip_burst,
            settings.global_per_second,
        )
    }

    /// The per-client limits of `[rate_limit]` and no ceiling for everyone: for
    /// GET /join/challenge and form tokens (GET /join/token, the form page), which cost
    /// one HMAC each, and which real visitors must still get in a flood.
    pub fn per_client_only(settings: &RateLimitSettings) -> Self {
        Self::new(settings.per_ip_per_minute, settings.per_ip_burst, u32::MAX)
    }

    /// `per_minute` requests a minute per client, up to `burst` at once, and
    /// `global_per_second` for everyone together; each at least 1.
    pub fn new(per_minute: u32, burst: u32, global_per_second: u32) -> Self {
        let at_least_one = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let per_client =
            Quota::per_minute(at_least_one(per_minute)).allow_burst(at_least_one(burst));
        let global = Quota::per_second(at_least_one(global_per_second));
        Self {
            per_client: governor::RateLimiter::keyed(per_client),
            global: governor::RateLimiter::direct(global),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one request from `client`. The client's own quota is checked first, so
    /// a single flooder does not use up the shared ceiling.
    pub fn check(&self, client: ClientIp) -> Result<(), Limited> {
        self.check_client(client)?;
        self.check_global()
    }

    /// Counts one request from `client` against its own quota only.
    ///
    /// # Errors
    /// [`Limited`] with [`LimitScope::Client`] when it is over it.
    pub fn check_client(&self, client: ClientIp) -> Result<(), Limited> {
        self.per_client
            .check_key(&client.limit_key())
            .map_err(|not_until| Limited {
                scope: LimitScope::Client,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Counts one request against the ceiling for everyone only: POST /join counts a
    /// post once it has parsed, so a flood of invalid posts cannot spend it.
    ///
    /// # Errors
    /// [`Limited`] with [`LimitScope::Global`] when it is over it.
    pub fn check_global(&self) -> Result<(), Limited> {
        self.global.check().map_err(|not_until| Limited {
            scope: LimitScope::Global,
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }

    /// Forgets clients whose quota is full again: they would be let through anyway.
    /// Run periodically, so the table stays as small as the set of recent clients.
    /// Returns how many clients it still remembers.
    pub fn sweep(&self) -> usize {
        self.per_client.retain_recent();
        self.per_client.shrink_to_fit();
        self.per_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::from_settings(&RateLimitSettings {
            per_ip_per_minute: per_minute,
            per_ip_burst: burst,
            global_per_second: 1000,
            ..RateLimitSettings::default()
        })
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_while_others_pass() {
        let limiter = limiter(6, 3);
        let a = ClientIp::from_addr("192.0.2.1".parse().unwrap());
        let b = ClientIp::from_addr("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
        }
        let limited = limiter.check(a).unwrap_err();
        assert_eq!(limited.scope, LimitScope::Client);
        assert!(limited.retry_after > Duration::from_secs(5));
        assert!(limited.retry_after <= Duration::from_secs(10));
        assert!(limiter.check(b).is_ok());
    }

    #[test]
    fn sweeping_keeps_clients_still_waiting_and_forgets_those_full_again() {
        // One request a client per 300 ms: each client's quota is used up by its one
        // request and full again 300 ms later; governor lets a sweep drop the key one
        // interval after that.
        let limiter = limiter(200, 1);
        for last in 0..100u8 {
            let client = ClientIp::from_addr(IpAddr::from([192, 0, 2, last]));
            assert!(limiter.check(client).is_ok());
        }
        assert_eq!(limiter.sweep(), 100, "no quota is full yet");
        let waiting = ClientIp::from_addr(IpAddr::from([192, 0, 2, 0]));
        assert!(limiter.check(waiting).is_err(), "the sweep forgot no limit");
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(limiter.sweep(), 0, "every quota is full again");
    }
}
