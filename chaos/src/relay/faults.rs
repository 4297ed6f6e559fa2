//! What can go wrong on one directed link, and the seeded decision of each
//! datagram's fate.

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
    /// Probability that a datagram is sent twice.
    pub duplicate: f64,
}

/// Draws how many copies of one datagram to send on a link with `faults`
/// (0: drop it). The draws come in a fixed order and only for faults that are
/// set, so the same seed, faults and datagram order give the same fates.
pub(crate) fn decide(faults: &LinkFaults, rng: &mut ChaCha8Rng) -> usize {
    if faults.cut || chance(rng, faults.loss) {
        return 0;
    }
    if chance(rng, faults.duplicate) {
        2
    } else {
        1
    }
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

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn fates(seed: u64, faults: &LinkFaults, n: usize) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| decide(faults, &mut rng)).collect()
    }

    #[test]
    fn a_healthy_link_sends_once() {
        assert!(fates(1, &LinkFaults::default(), 100)
            .iter()
            .all(|&n| n == 1));
    }

    #[test]
    fn a_cut_link_drops_everything_and_odd_probabilities_are_clamped() {
        let cut = LinkFaults {
            cut: true,
            ..LinkFaults::default()
        };
        assert!(fates(1, &cut, 100).iter().all(|&n| n == 0));
        let odd = LinkFaults {
            loss: f64::NAN,
            duplicate: 7.0,
            ..LinkFaults::default()
        };
        assert!(fates(1, &odd, 100).iter().all(|&n| n == 2));
    }

    #[test]
    fn a_seed_replays() {
        let faults = LinkFaults {
            loss: 0.3,
            duplicate: 0.3,
            ..LinkFaults::default()
        };
        let a = fates(7, &faults, 500);
        assert_eq!(a, fates(7, &faults, 500));
        assert_ne!(a, fates(8, &faults, 500));
    }
}
