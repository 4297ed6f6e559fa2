//! From overlapping port ranges of several rules to disjoint, prefix-aligned
//! port blocks the kernel can look up in an LPM trie.
//!
//! Precedence between rules that cover the same port of the same flow: the
//! rule with the narrower port range wins; at equal width a deny beats an
//! allow; at equal width and action the lower rule id wins. Resolving that
//! here, into blocks that never overlap, means the kernel needs no notion of
//! precedence at all: at most one block matches any port.

use crate::{Action, PortRange};

/// A block of `2^(16 - prefix_len)` ports starting at `first`, which is a
/// multiple of the block's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortBlock {
    /// First port of the block.
    pub first: u16,
    /// How many leading bits of the port are fixed (16: one port; 0: all).
    pub prefix_len: u8,
}

impl PortBlock {
    /// The ports the block holds.
    pub fn range(self) -> PortRange {
        let size = 1u32 << (16 - u32::from(self.prefix_len));
        PortRange {
            first: self.first,
            last: (u32::from(self.first) + size - 1) as u16,
        }
    }
}

/// Splits an inclusive port range into the fewest aligned blocks.
pub fn blocks(range: PortRange) -> Vec<PortBlock> {
    let mut out = Vec::new();
    let mut first = u32::from(range.first);
    let end = u32::from(range.last) + 1;
    while first < end {
        // The largest power-of-two block that starts at `first` (alignment)
        // and does not run past the end of the range.
        let align = if first == 0 {
            1 << 16
        } else {
            1 << first.trailing_zeros()
        };
        let mut size: u32 = align.min(1 << 16);
        while first + size > end {
            size /= 2;
        }
        out.push(PortBlock {
            first: first as u16,
            prefix_len: (16 - size.trailing_zeros()) as u8,
        });
        first += size;
    }
    out
}

/// One rule's claim on a port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim<V> {
    /// The ports.
    pub range: PortRange,
    /// What the rule does.
    pub action: Action,
    /// What the ports get when this claim wins.
    pub verdict: V,
    /// Tie-breaker of last resort: the lower wins (the rule's id).
    pub order: u32,
}

/// The winning claim for every port any claim covers, as disjoint ranges
/// (adjacent ranges with the same winner merged).
pub fn resolve<V: Copy + PartialEq>(claims: &[Claim<V>]) -> Vec<(PortRange, V)> {
    let mut cuts: Vec<u32> = claims
        .iter()
        .flat_map(|c| [u32::from(c.range.first), u32::from(c.range.last) + 1])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<(PortRange, V)> = Vec::new();
    for pair in cuts.windows(2) {
        let (first, last) = (pair[0] as u16, (pair[1] - 1) as u16);
        let winner = claims
            .iter()
            .filter(|c| c.range.contains(first))
            .min_by_key(|c| (c.range.len(), c.action == Action::Allow, c.order));
        let Some(winner) = winner else { continue };
        match out.last_mut() {
            Some((prev, v)) if *v == winner.verdict && u32::from(prev.last) + 1 == pair[0] => {
                prev.last = last;
            }
            _ => out.push((PortRange { first, last }, winner.verdict)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    #[test]
    fn whole_port_space_is_one_block() {
        assert_eq!(
            blocks(PortRange::ALL),
            vec![PortBlock {
                first: 0,
                prefix_len: 0
            }]
        );
    }

    #[test]
    fn unaligned_range_splits_into_aligned_blocks() {
        let got: Vec<_> = blocks(range(1000, 1999))
            .into_iter()
            .map(|b| b.range())
            .collect();
        assert_eq!(got.first().map(|r| r.first), Some(1000));
        assert_eq!(got.last().map(|r| r.last), Some(1999));
        assert!(got.len() <= 32);
    }

    #[test]
    fn narrower_range_beats_wider_and_deny_beats_allow_at_equal_width() {
        let claims = [
            Claim {
                range: range(0, 65535),
                action: Action::Deny,
                verdict: 'd',
                order: 16,
            },
            Claim {
                range: range(443, 443),
                action: Action::Allow,
                verdict: 'a',
                order: 17,
            },
            Claim {
                range: range(443, 443),
                action: Action::Allow,
                verdict: 'b',
                order: 18,
            },
            Claim {
                range: range(80, 80),
                action: Action::Allow,
                verdict: 'a',
                order: 19,
            },
            Claim {
                range: range(80, 80),
                action: Action::Deny,
                verdict: 'x',
                order: 20,
            },
        ];
        let got = resolve(&claims);
        let at = |port: u16| got.iter().find(|(r, _)| r.contains(port)).map(|(_, v)| *v);
        assert_eq!(at(443), Some('a'));
        assert_eq!(at(80), Some('x'));
        assert_eq!(at(22), Some('d'));
    }

    proptest! {
        #[test]
        fn blocks_tile_the_range_exactly(a in any::<u16>(), b in any::<u16>()) {
            let r = range(a.min(b), a.max(b));
            let bs = blocks(r);
            let mut next = u32::from(r.first);
            for b in &bs {
                let br = b.range();
                prop_assert_eq!(u32::from(br.first), next);
                let size = br.len();
                prop_assert_eq!(u32::from(br.first) % size, 0, "block not aligned");
                next = u32::from(br.last) + 1;
            }
            prop_assert_eq!(next, u32::from(r.last) + 1);
        }

        #[test]
        fn resolution_covers_exactly_the_claimed_ports(
            spans in proptest::collection::vec((any::<u16>(), 0u16..2000, any::<bool>()), 1..6),
            probe in any::<u16>(),
        ) {
            let claims: Vec<Claim<usize>> = spans.iter().enumerate().map(|(i, (first, len, deny))| Claim {
                range: range(*first, first.saturating_add(*len)),
                action: if *deny { Action::Deny } else { Action::Allow },
                verdict: i,
                order: i as u32,
            }).collect();
            let resolved = resolve(&claims);
            let covering: Vec<_> = resolved.iter().filter(|(r, _)| r.contains(probe)).collect();
            let claimed = claims.iter().filter(|c| c.range.contains(probe)).min_by_key(|c| (c.range.len(), c.action == Action::Allow, c.order));
            match claimed {
                None => prop_assert!(covering.is_empty()),
                Some(c) => {
                    prop_assert_eq!(covering.len(), 1);
                    prop_assert_eq!(covering[0].1, c.verdict);
                }
            }
        }
    }
}
