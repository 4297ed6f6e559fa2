//! A sink's rate limit, which delays and folds messages but never drops
//! them.
//!
//! The limit is a token bucket: one token per message, `per_minute` tokens
//! added per minute, at most a quarter minute's worth held so that a quiet
//! sink may take a short burst. When more alerts wait than there are
//! tokens, the forwarder sends one digest message standing for all of them;
//! when there is no token, it waits for one.

use std::time::{Duration, Instant};

/// A nanosecond adds `per_minute` credit units, so a minute adds
/// `per_minute` tokens when a token is this many units: integer arithmetic
/// with no rounding drift however often the bucket is refilled.
const UNITS_PER_TOKEN: u128 = 60 * 1_000_000_000;

/// What to do with the messages waiting for a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Send each message.
    SendEach,
    /// Send one message standing for all of them.
    SendDigest,
    /// Send nothing before this instant, when a token will be available.
    WaitUntil(Instant),
}

/// A sink's rate limit: a token bucket, or nothing when unlimited.
#[derive(Clone, Debug)]
pub struct RateLimit {
    bucket: Option<Bucket>,
}

#[derive(Clone, Debug)]
struct Bucket {
    per_minute: u128,
    /// In tokens.
    capacity: u128,
    /// In units; never above `capacity` tokens.
    credit: u128,
    /// When `credit` was last brought up to date.
    updated: Instant,
}

impl RateLimit {
    /// A limit of `per_minute` messages a minute (`None`: unlimited). The
    /// bucket holds `max(1, per_minute / 4)` tokens and starts full. Zero,
    /// which the policy's validation rejects, is taken as one a minute
    /// rather than as never sending again.
    pub fn new(per_minute: Option<u32>, now: Instant) -> Self {
        let bucket = per_minute.map(|per_minute| {
            let per_minute = u128::from(per_minute.max(1));
            let capacity = (per_minute / 4).max(1);
            Bucket {
                per_minute,
                capacity,
                credit: capacity * UNITS_PER_TOKEN,
                updated: now,
            }
        });
        RateLimit { bucket }
    }

    /// What to do with `messages` waiting messages at `now`: send each if
    /// the bucket holds a token for each, one digest if it holds at least
    /// one, else wait until it does. Unlimited, or with nothing waiting,
    /// always send each. Spends nothing: call [`RateLimit::spend`] for what
    /// is actually sent.
    pub fn plan(&mut self, messages: usize, now: Instant) -> Plan {
        let Some(bucket) = &mut self.bucket else {
            return Plan::SendEach;
        };
        bucket.refill(now);
        let tokens = bucket.credit / UNITS_PER_TOKEN;
        if messages == 0 || tokens >= messages as u128 {
            Plan::SendEach
        } else if tokens >= 1 {
            Plan::SendDigest
        } else {
            Plan::WaitUntil(bucket.updated + bucket.time_to_next_token())
        }
    }

    /// Spends a token for each of `messages` messages sent at `now`. The
    /// bucket does not go below empty: the forwarder is expected to send
    /// what [`RateLimit::plan`] allows, and a lapse is not held against the
    /// sink's later alerts.
    pub fn spend(&mut self, messages: usize, now: Instant) {
        if let Some(bucket) = &mut self.bucket {
            bucket.refill(now);
            let cost = (messages as u128).saturating_mul(UNITS_PER_TOKEN);
            bucket.credit = bucket.credit.saturating_sub(cost);
        }
    }
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        // An earlier `now` (callers' clocks read at different places) adds
        // nothing rather than taking back.
        let elapsed = now.saturating_duration_since(self.updated).as_nanos();
        let full = self.capacity * UNITS_PER_TOKEN;
        self.credit = self
            .credit
            .saturating_add(elapsed.saturating_mul(self.per_minute))
            .min(full);
        self.updated = self.updated.max(now);
    }

    /// How long from `updated` until a bucket holding less than a token
    /// holds one.
    fn time_to_next_token(&self) -> Duration {
        let missing = UNITS_PER_TOKEN.saturating_sub(self.credit);
        let nanos = missing.div_ceil(self.per_minute);
        // At most a minute: a token's units at one unit per nanosecond.
        Duration::from_nanos(u64::try_from(nanos).expect("a token takes at most a minute"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Follows the plan for `pending` messages: sends each or a digest (and
    /// spends for it), returning how many messages went out.
    fn send(limit: &mut RateLimit, pending: &mut usize, now: Instant) -> Option<usize> {
        let sent = match limit.plan(*pending, now) {
            Plan::SendEach => *pending,
            Plan::SendDigest => 1,
            Plan::WaitUntil(_) => return None,
        };
        limit.spend(sent, now);
        *pending = 0;
        Some(sent)
    }

    #[test]
    fn unlimited_always_sends_each() {
        let now = Instant::now();
        let mut limit = RateLimit::new(None, now);
        for _ in 0..10 {
            assert_eq!(limit.plan(1_000_000, now), Plan::SendEach);
            limit.spend(1_000_000, now);
        }
    }

    #[test]
    fn a_full_bucket_sends_each_and_planning_spends_nothing() {
        let now = Instant::now();
        let mut limit = RateLimit::new(Some(60), now);
        for _ in 0..3 {
            assert_eq!(limit.plan(15, now), Plan::SendEach, "capacity 60/4");
        }
        assert_eq!(limit.plan(16, now), Plan::SendDigest);
        assert_eq!(limit.plan(0, now), Plan::SendEach);
    }

    #[test]
    fn over_the_limit_a_digest_goes_now_then_the_sink_waits_for_a_token() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(Some(60), t0);
        assert_eq!(limit.plan(100, t0), Plan::SendDigest);
        // Fifteen digests empty the bucket (capacity 60 / 4).
        for _ in 0..15 {
            assert_eq!(send(&mut limit, &mut 100, t0), Some(1));
        }
        let one_second = t0 + Duration::from_secs(1);
        assert_eq!(limit.plan(100, t0), Plan::WaitUntil(one_second));
        let half = t0 + Duration::from_millis(500);
        assert_eq!(limit.plan(100, half), Plan::WaitUntil(one_second));
        assert_eq!(limit.plan(100, one_second), Plan::SendDigest);
        assert_eq!(limit.plan(1, one_second), Plan::SendEach);
    }

    #[test]
    fn a_slow_sink_holds_one_token() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(Some(2), t0);
        assert_eq!(send(&mut limit, &mut 1, t0), Some(1));
        let next = t0 + Duration::from_secs(30);
        assert_eq!(limit.plan(1, t0), Plan::WaitUntil(next));
        let much_later = t0 + Duration::from_secs(3_600);
        assert_eq!(limit.plan(2, much_later), Plan::SendDigest, "capacity 1");
    }

    #[test]
    fn an_hour_of_backlog_stays_within_the_limit() {
        for per_minute in [1, 7, 60, 600, 10_000] {
            let t0 = Instant::now();
            let end = t0 + Duration::from_secs(3_600);
            let mut limit = RateLimit::new(Some(per_minute), t0);
            let capacity = (per_minute as usize / 4).max(1);
            let (mut now, mut pending, mut sent) = (t0, 0, 0);
            while now < end {
                pending += 37;
                match limit.plan(pending, now) {
                    Plan::WaitUntil(at) => {
                        assert!(at > now);
                        now = at;
                    }
                    _ => {
                        sent += send(&mut limit, &mut pending, now).unwrap_or(0);
                        now += Duration::from_millis(173);
                    }
                }
            }
            let most = per_minute as usize * 60 + capacity;
            assert!(sent <= most, "{per_minute}/min: {sent} > {most}");
            assert!(sent * 10 >= most * 9, "{per_minute}/min: only {sent}");
        }
    }

    proptest! {
        #[test]
        fn no_interval_sends_more_than_the_bucket_and_its_refill(
            per_minute in 1..2_000u32,
            steps in prop::collection::vec((0..5_000u64, 0..50usize), 1..150),
        ) {
            let t0 = Instant::now();
            let mut limit = RateLimit::new(Some(per_minute), t0);
            let capacity = u128::from((per_minute / 4).max(1));
            let (mut now, mut pending) = (t0, 0);
            let mut sends: Vec<(Instant, usize)> = Vec::new();
            for (after_ms, arriving) in steps {
                now += Duration::from_millis(after_ms);
                pending += arriving;
                if let Some(sent) = send(&mut limit, &mut pending, now) {
                    sends.push((now, sent));
                }
            }
            for (i, (start, _)) in sends.iter().enumerate() {
                let mut total = 0;
                for (at, sent) in &sends[i..] {
                    total += *sent as u128;
                    let refill = (*at - *start).as_nanos() * u128::from(per_minute)
                        / UNITS_PER_TOKEN;
                    prop_assert!(total <= capacity + refill);
                }
            }
        }
    }
}
