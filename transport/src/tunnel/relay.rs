//! Relaying one connection through an established session: each direction
//! reads, seals and writes (or reads, opens and writes) whole frames; a FIN
//! frame carries a half-close across, and a REKEY frame marks where the
//! sender switched its direction's key.

use std::io;
use std::sync::Mutex;
use std::time::Instant;

use snow::StatelessTransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::ReadHalf;
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

/// Bytes of one transport frame at most, header included.
const FRAME_SPAN: usize = FRAME_HEADER + MAX_MESSAGE;
/// Frames sealed, or opened, before one write once a connection moves bulk
/// data: a batch costs one system call. Connections start with room for
/// one frame and grow to this when a batch fills, so an idle or chatty
/// connection does not hold the memory of a bulk one.
const BATCH_FRAMES: usize = 8;

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
            let opening = open(tunnel_in, plain_out, &cipher, &settings, &stats);
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

/// The sealing direction's state: its nonce, its rekey budget, and the
/// frames sealed but not yet written.
struct Sealer<'a> {
    cipher: &'a Mutex<StatelessTransportState>,
    nonce: u64,
    since_rekey: u64,
    rekeyed_at: Instant,
    out: Vec<u8>,
    filled: usize,
}

impl Sealer<'_> {
    /// Whether another full frame (and a rekey or FIN after it) fits.
    fn has_room(&self) -> bool {
        self.out.len() - self.filled >= 2 * FRAME_SPAN
    }

    /// Room for a whole batch, once a connection has filled a small one.
    fn grow(&mut self) {
        self.out.resize((BATCH_FRAMES + 1) * FRAME_SPAN, 0);
    }

    /// Seals `payload` (data and kind byte) as the next frame after those
    /// waiting in `out`.
    fn seal(&mut self, payload: &[u8]) -> Result<(), TunnelError> {
        let frame = &mut self.out[self.filled..];
        let len = lock(self.cipher)
            .write_message(self.nonce, payload, &mut frame[FRAME_HEADER..])
            .map_err(TunnelError::Handshake)?;
        let len16 = u16::try_from(len).map_err(|_| TunnelError::Malformed("frame too long"))?;
        frame[..2].copy_from_slice(&len16.to_be_bytes());
        frame[2..FRAME_HEADER].copy_from_slice(&self.nonce.to_be_bytes());
        self.nonce += 1;
        self.filled += FRAME_HEADER + len;
        Ok(())
    }

    /// The frames waiting, which the caller writes; `out` is then empty.
    fn take(&mut self) -> &[u8] {
        let filled = std::mem::take(&mut self.filled);
        &self.out[..filled]
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

/// Seals what the local connection sends. Whatever is ready to read is
/// sealed frame after frame into one buffer and written with one call, so a
/// fast sender costs a system call per batch rather than per frame.
async fn seal<W>(
    plain: ReadHalf<'_>,
    mut tunnel: W,
    cipher: &Mutex<StatelessTransportState>,
    settings: &TunnelSettings,
    stats: &TunnelStats,
) -> Result<u64, TunnelError>
where
    W: AsyncWrite + Unpin,
{
    let plain: &TcpStream = plain.as_ref();
    // The data, then room for the kind byte that ends every plaintext.
    let mut input = vec![0u8; MAX_DATA + 1];
    let mut sealer = Sealer {
        cipher,
        nonce: 0,
        since_rekey: 0,
        rekeyed_at: Instant::now(),
        // A data frame and a rekey or FIN after it.
        out: vec![0u8; 2 * FRAME_SPAN],
        filled: 0,
    };
    let mut total = 0u64;
    loop {
        plain.readable().await?;
        let mut ended = false;
        while sealer.has_room() {
            let n = match plain.try_read(&mut input[..MAX_DATA]) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            };
            input[n] = KIND_DATA;
            sealer.seal(&input[..=n])?;
            total += n as u64;
            stats.sent(n);
            sealer.since_rekey += n as u64;
            if sealer.since_rekey >= settings.rekey_after_bytes
                || sealer.rekeyed_at.elapsed() >= settings.rekey_after
            {
                sealer.seal(&[KIND_REKEY])?;
                lock(cipher).rekey_outgoing();
                sealer.since_rekey = 0;
                sealer.rekeyed_at = Instant::now();
                stats.rekeyed();
            }
        }
        let filled_up = !sealer.has_room();
        if ended {
            sealer.seal(&[KIND_FIN])?;
        }
        tunnel.write_all(sealer.take()).await?;
        if filled_up {
            sealer.grow();
        }
        if ended {
            tunnel.flush().await?;
            return Ok(total);
        }
    }
}

/// The tunnel socket's read side, with a buffer that starts at two frames
/// and grows to a batch for a bulk flow. Frames are opened straight from
/// it.
struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(inner: R) -> Self {
        FrameReader {
            inner,
            buf: vec![0u8; 2 * FRAME_SPAN],
            start: 0,
            end: 0,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads until `need` bytes are buffered. The end of the stream here
    /// is a truncation: a peer ends with a FIN frame.
    async fn fill(&mut self, need: usize, stats: &TunnelStats) -> Result<(), TunnelError> {
        while self.end - self.start < need {
            if self.buf.len() - self.end < FRAME_SPAN.min(need) {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = self.inner.read(&mut self.buf[self.end..]).await?;
            if n == 0 {
                stats.truncated();
                return Err(TunnelError::Truncated);
            }
            self.end += n;
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn grow(&mut self) {
        self.buf.resize(BATCH_FRAMES * FRAME_SPAN, 0);
    }
}

/// Opens the peer's frames and writes their data to the local connection,
/// a batch at a time: data is gathered while whole frames wait in the read
/// buffer, and written when none does or the batch is full.
async fn open<R, W>(
    tunnel: R,
    mut plain: W,
    cipher: &Mutex<StatelessTransportState>,
    settings: &TunnelSettings,
    stats: &TunnelStats,
) -> Result<u64, TunnelError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut tunnel = FrameReader::new(tunnel);
    let mut pending = vec![0u8; MAX_MESSAGE];
    let mut filled = 0usize;
    let mut expected = 0u64;
    let mut bad_in_a_row = 0u32;
    let mut total = 0u64;
    loop {
        let more = whole_frame_buffered(tunnel.buffered());
        if filled > 0 && (!more || pending.len() - filled < MAX_MESSAGE) {
            plain.write_all(&pending[..filled]).await?;
            filled = 0;
            if more {
                // Frames kept coming faster than one batch: a bulk flow.
                pending.resize(BATCH_FRAMES * MAX_MESSAGE, 0);
                tunnel.grow();
            }
        }
        tunnel.fill(FRAME_HEADER, stats).await?;
        let header = &tunnel.buffered()[..FRAME_HEADER];
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let mut nonce_bytes = [0u8; 8];
        nonce_bytes.copy_from_slice(&header[2..]);
        let nonce = u64::from_be_bytes(nonce_bytes);
        tunnel.fill(FRAME_HEADER + len, stats).await?;
        let message = &tunnel.buffered()[FRAME_HEADER..FRAME_HEADER + len];
        let opened = if nonce < expected {
            stats.replayed();
            None
        } else if nonce > expected || len < TAG_LEN + 1 {
            // A frame ahead of its turn means others went missing: the
            // stream can no longer be whole, so it is not accepted.
            stats.forged();
            None
        } else {
            // Opened straight after the data gathered so far; its last
            // byte is the kind, which the next frame overwrites.
            let opened = lock(cipher).read_message(nonce, message, &mut pending[filled..]);
            if opened.is_err() {
                stats.forged();
            }
            opened.ok()
        };
        tunnel.consume(FRAME_HEADER + len);
        let Some(n) = opened.filter(|n| *n >= 1) else {
            bad_in_a_row += 1;
            if bad_in_a_row >= settings.max_bad_frames {
                return Err(TunnelError::TooManyBadFrames(bad_in_a_row));
            }
            continue;
        };
        bad_in_a_row = 0;
        expected += 1;
        let data = n - 1;
        match pending[filled + data] {
            KIND_DATA => {
                filled += data;
                total += data as u64;
                stats.received(data);
            }
            KIND_FIN => {
                plain.write_all(&pending[..filled]).await?;
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

/// Whether `buffered` starts with a whole frame.
fn whole_frame_buffered(buffered: &[u8]) -> bool {
    buffered.len() >= FRAME_HEADER
        && buffered.len() - FRAME_HEADER
            >= usize::from(u16::from_be_bytes([buffered[0], buffered[1]]))
}
