//! Relaying one connection through an established session: each direction
//! reads, seals and writes (or reads, opens and writes) whole frames; a FIN
//! frame carries a half-close across, and a REKEY frame marks where the
//! sender switched its direction's key.

use std::io;
use std::sync::Mutex;
use std::time::Instant;

use snow::StatelessTransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::frame::{FRAME_HEADER, KIND_DATA, KIND_FIN, KIND_REKEY, MAX_DATA, MAX_MESSAGE, TAG_LEN};
use super::handshake::Session;
use super::stats::TunnelStats;
use super::{TunnelError, TunnelSettings};

/// Application bytes a relay carried each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayTotals {
    /// From the local connection into the tunnel.
    pub sent: u64,
    /// From the tunnel to the local connection.
    pub received: u64,
}

/// Bytes of the buffer in front of the tunnel socket: a few frames, so a
/// frame header rarely costs a system call of its own.
const TUNNEL_READ_BUFFER: usize = 4 * (FRAME_HEADER + MAX_MESSAGE);

impl Session {
    /// Relays `plain` (the application's connection, or the one to the real
    /// destination) through the session until both directions are closed.
    /// On an error the local connection is reset, not closed cleanly, so
    /// the application can tell a broken tunnel from the end of the data.
    pub async fn relay(self, mut plain: TcpStream) -> Result<RelayTotals, TunnelError> {
        let Session {
            mut stream,
            transport,
            settings,
            stats,
        } = self;
        let _active = stats.active();
        plain.set_nodelay(true)?;
        let cipher = Mutex::new(transport);
        let outcome = {
            let (plain_in, plain_out) = plain.split();
            let (tunnel_in, tunnel_out) = stream.split();
            let sealing = seal(plain_in, tunnel_out, &cipher, &settings, &stats);
            let opening = open(
                BufReader::with_capacity(TUNNEL_READ_BUFFER, tunnel_in),
                plain_out,
                &cipher,
                &settings,
                &stats,
            );
            tokio::try_join!(sealing, opening)
        };
        match outcome {
            Ok((sent, received)) => Ok(RelayTotals { sent, received }),
            Err(e) => {
                // Best effort: the sockets close either way.
                let _ = plain.set_zero_linger();
                let _ = stream.set_zero_linger();
                Err(e)
            }
        }
    }
}

/// The sealing direction's state: its nonce and its rekey budget.
struct Sealer<'a> {
    cipher: &'a Mutex<StatelessTransportState>,
    nonce: u64,
    since_rekey: u64,
    rekeyed_at: Instant,
    out: Vec<u8>,
}

impl Sealer<'_> {
    /// Seals `payload` (kind byte and data) as the next frame into `out`;
    /// returns the frame's length.
    fn seal(&mut self, payload: &[u8]) -> Result<usize, TunnelError> {
        let len = lock(self.cipher)
            .write_message(self.nonce, payload, &mut self.out[FRAME_HEADER..])
            .map_err(TunnelError::Handshake)?;
        let len16 = u16::try_from(len).map_err(|_| TunnelError::Malformed("frame too long"))?;
        self.out[..2].copy_from_slice(&len16.to_be_bytes());
        self.out[2..FRAME_HEADER].copy_from_slice(&self.nonce.to_be_bytes());
        self.nonce += 1;
        Ok(FRAME_HEADER + len)
    }
}

fn lock(
    cipher: &Mutex<StatelessTransportState>,
) -> std::sync::MutexGuard<'_, StatelessTransportState> {
    // A panic while holding the lock cannot leave the state half-changed
    // (snow's calls are all-or-nothing), so a poisoned lock is still good.
    cipher
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn seal<R, W>(
    mut plain: R,
    mut tunnel: W,
    cipher: &Mutex<StatelessTransportState>,
    settings: &TunnelSettings,
    stats: &TunnelStats,
) -> Result<u64, TunnelError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut input = vec![0u8; 1 + MAX_DATA];
    let mut sealer = Sealer {
        cipher,
        nonce: 0,
        since_rekey: 0,
        rekeyed_at: Instant::now(),
        out: vec![0u8; FRAME_HEADER + MAX_MESSAGE],
    };
    let mut total = 0u64;
    loop {
        let n = plain.read(&mut input[1..]).await?;
        if n == 0 {
            input[0] = KIND_FIN;
            let len = sealer.seal(&input[..1])?;
            tunnel.write_all(&sealer.out[..len]).await?;
            tunnel.flush().await?;
            return Ok(total);
        }
        input[0] = KIND_DATA;
        let len = sealer.seal(&input[..1 + n])?;
        tunnel.write_all(&sealer.out[..len]).await?;
        total += n as u64;
        stats.sent(n);
        sealer.since_rekey += n as u64;
        if sealer.since_rekey >= settings.rekey_after_bytes
            || sealer.rekeyed_at.elapsed() >= settings.rekey_after
        {
            input[0] = KIND_REKEY;
            let len = sealer.seal(&input[..1])?;
            tunnel.write_all(&sealer.out[..len]).await?;
            lock(cipher).rekey_outgoing();
            sealer.since_rekey = 0;
            sealer.rekeyed_at = Instant::now();
            stats.rekeyed();
        }
    }
}

/// Reads exactly `buf.len()` bytes; the end of the stream is a truncation.
async fn read_frame_part<R: AsyncRead + Unpin>(
    tunnel: &mut R,
    buf: &mut [u8],
    stats: &TunnelStats,
) -> Result<(), TunnelError> {
    match tunnel.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            stats.truncated();
            Err(TunnelError::Truncated)
        }
        Err(e) => Err(e.into()),
    }
}

async fn open<R, W>(
    mut tunnel: R,
    mut plain: W,
    cipher: &Mutex<StatelessTransportState>,
    settings: &TunnelSettings,
    stats: &TunnelStats,
) -> Result<u64, TunnelError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut frame = vec![0u8; MAX_MESSAGE];
    let mut output = vec![0u8; MAX_MESSAGE];
    let mut expected = 0u64;
    let mut bad_in_a_row = 0u32;
    let mut total = 0u64;
    loop {
        let mut header = [0u8; FRAME_HEADER];
        read_frame_part(&mut tunnel, &mut header, stats).await?;
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let mut nonce_bytes = [0u8; 8];
        nonce_bytes.copy_from_slice(&header[2..]);
        let nonce = u64::from_be_bytes(nonce_bytes);
        read_frame_part(&mut tunnel, &mut frame[..len], stats).await?;
        let opened = if nonce < expected {
            stats.replayed();
            None
        } else if nonce > expected || len < TAG_LEN + 1 {
            // A frame ahead of its turn means others went missing: the
            // stream can no longer be whole, so it is not accepted.
            stats.forged();
            None
        } else {
            let opened = lock(cipher).read_message(nonce, &frame[..len], &mut output);
            if opened.is_err() {
                stats.forged();
            }
            opened.ok()
        };
        let Some(n) = opened.filter(|n| *n >= 1) else {
            bad_in_a_row += 1;
            if bad_in_a_row >= settings.max_bad_frames {
                return Err(TunnelError::TooManyBadFrames(bad_in_a_row));
            }
            continue;
        };
        bad_in_a_row = 0;
        expected += 1;
        match output[0] {
            KIND_DATA => {
                plain.write_all(&output[1..n]).await?;
                total += (n - 1) as u64;
                stats.received(n - 1);
            }
            KIND_FIN => {
                plain.shutdown().await?;
                return Ok(total);
            }
            KIND_REKEY => {
                lock(cipher).rekey_incoming();
                stats.rekeyed();
            }
            _ => return Err(TunnelError::Malformed("unknown frame kind")),
        }
    }
}
