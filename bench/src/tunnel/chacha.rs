//! The reference a tunnel is compared to: how fast one core seals with
//! ChaCha20-Poly1305 (ring's implementation, the cipher of both the Noise
//! tunnel and WireGuard), 64 KiB at a time, in place.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

/// Bytes sealed per call.
const BUFFER: usize = 64 * 1024;

/// One core's sealing speed.
#[derive(Clone, Copy, Debug)]
pub struct ChaCha {
    /// Bytes sealed.
    pub bytes: u64,
    /// Seconds it took.
    pub secs: f64,
}

impl ChaCha {
    /// GB/s (10⁹ bytes per second).
    pub fn gbytes(&self) -> f64 {
        self.bytes as f64 / self.secs.max(1e-9) / 1e9
    }

    /// Gbit/s.
    pub fn gbits(&self) -> f64 {
        self.gbytes() * 8.0
    }
}

/// Seals 64 KiB buffers for about `duration` on the calling thread.
pub fn measure(duration: Duration) -> anyhow::Result<ChaCha> {
    let key = UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32])
        .map_err(|_| anyhow!("building a ChaCha20-Poly1305 key"))?;
    let key = LessSafeKey::new(key);
    let mut buffer = vec![0x5au8; BUFFER];
    let mut counter: u64 = 0;
    let seal = |buffer: &mut [u8], counter: &mut u64| -> anyhow::Result<()> {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_le_bytes());
        *counter += 1;
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), buffer)
            .map_err(|_| anyhow!("sealing"))?;
        let _ = std::hint::black_box(tag);
        Ok(())
    };
    // Warm caches and the CPU's clock first.
    for _ in 0..64 {
        seal(&mut buffer, &mut counter).context("warm-up")?;
    }
    let start = Instant::now();
    let mut bytes: u64 = 0;
    while start.elapsed() < duration {
        for _ in 0..16 {
            seal(&mut buffer, &mut counter)?;
            bytes += BUFFER as u64;
        }
    }
    Ok(ChaCha {
        bytes,
        secs: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_something() {
        let result = measure(Duration::from_millis(20)).expect("seals");
        assert!(result.bytes > 0 && result.gbits() > 0.0);
    }
}
