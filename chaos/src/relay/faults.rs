//! What can go wrong on one directed link, and the seeded decision of each
//! datagram's fate.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Faults applied to datagrams on one directed link, from node `i` to node
/// `j`. A reply from `j` to `i` travels the link `j → i`, so one direction
/// can fail while the other works.
///
/// The default is a healthy link. Probabilities outside `0.0..=1.0` are
/// clamped (NaN counts as 0).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkFaults {
    /// Drop every datagram.
    pub cut: bool,
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Probability that a datagram is sent twice (each copy gets its own
    /// delay).
    pub duplicate: f64,
    /// Shortest delay of a datagram.
    pub delay_min: Duration,
    /// Longest delay of a datagram: each one waits a time drawn uniformly
    /// from `delay_min..=delay_max`, so a wide range reorders by itself.
    /// Below `delay_min` it counts as `delay_min`.
    pub delay_max: Duration,
    /// Probability that a datagram is held back and sent right after the
    /// next datagram sent on the same link (at that one's delay) — or after
    /// [`HOLD_MAX`] if none comes, so a quiet link does not strand it. One
    /// datagram per link is held at a time; while one is, the next is never
    /// held.
    pub reorder: f64,
}

/// Longest a datagram held back for reordering waits for the next one on its
/// link. QUIC would retransmit a stranded packet anyway; the bound keeps a
/// handshake on an otherwise quiet link from stalling for a whole timeout.
pub const HOLD_MAX: Duration = Duration::from_millis(20);

/// The fate of one datagram: the delay of each copy to send (none: it is
/// dropped), and whether to hold it back behind the next one.
#[derive(Debug, PartialEq)]
pub(crate) struct Fate {
    pub delays: Vec<Duration>,
    pub hold: bool,
}

/// Draws the fate of one datagram on a link with `faults`. The draws come in
/// a fixed order and only for faults that are set, so the same seed, faults
/// and datagram order give the same fates.
pub(crate) fn decide(faults: &LinkFaults, rng: &mut ChaCha8Rng) -> Fate {
    if faults.cut || chance(rng, faults.loss) {
        return Fate {
            delays: Vec::new(),
            hold: false,
        };
    }
    let copies = if chance(rng, faults.duplicate) { 2 } else { 1 };
    let delays = (0..copies).map(|_| delay(faults, rng)).collect();
    let hold = chance(rng, faults.reorder);
    Fate { delays, hold }
}

/// True with probability `p`, drawing only when the outcome is in doubt.
fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    if p.is_nan() || p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        rng.gen_bool(p)
    }
}

fn delay(faults: &LinkFaults, rng: &mut ChaCha8Rng) -> Duration {
    if faults.delay_max <= faults.delay_min {
        faults.delay_min
    } else {
        rng.gen_range(faults.delay_min..=faults.delay_max)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn fates(seed: u64, faults: &LinkFaults, n: usize) -> Vec<Fate> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| decide(faults, &mut rng)).collect()
    }

    #[test]
    fn a_healthy_link_sends_once_at_once() {
        let all = fates(1, &LinkFaults::default(), 100);
        assert!(all.iter().all(|f| f.delays == [Duration::ZERO] && !f.hold));
    }

    #[test]
    fn a_cut_link_drops_everything_and_odd_probabilities_are_clamped() {
        let cut = LinkFaults {
            cut: true,
            ..LinkFaults::default()
        };
        assert!(fates(1, &cut, 100).iter().all(|f| f.delays.is_empty()));
        let odd = LinkFaults {
            loss: f64::NAN,
            duplicate: 7.0,
            reorder: -1.0,
            ..LinkFaults::default()
        };
        assert!(fates(1, &odd, 100)
            .iter()
            .all(|f| f.delays.len() == 2 && !f.hold));
    }

    #[test]
    fn delays_stay_in_range_and_a_seed_replays() {
        let faults = LinkFaults {
            loss: 0.3,
            duplicate: 0.3,
            delay_min: Duration::from_millis(5),
            delay_max: Duration::from_millis(50),
            reorder: 0.3,
            ..LinkFaults::default()
        };
        let a = fates(7, &faults, 500);
        assert_eq!(a, fates(7, &faults, 500));
        assert_ne!(a, fates(8, &faults, 500));
        let delays = a.iter().flat_map(|f| &f.delays);
        assert!(delays
            .clone()
            .all(|d| faults.delay_min <= *d && *d <= faults.delay_max));
        assert!(delays.clone().any(|d| *d != faults.delay_min));
    }
}
