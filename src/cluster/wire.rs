//! Messages between ranks: framing, chunking past MPI's count limit, shaping, and a
//! deadline on every wait.
//!
//! Below is a [`Wire`]: one message of 32-bit words to a rank, and a non-blocking look
//! for one from a rank (MPI's `send` and `improbe`/`mrecv`, or threads in the unit
//! tests). Above it, a [`Channel`] sends a payload as a header (length, chunk count,
//! the sender's clock stamp) and the payload cut into messages of at most
//! `max_words` words: MPI counts elements in a C `int`, so one message holds at most
//! 2³¹−1 of them, and a larger payload goes as several (MPI keeps messages from one
//! sender with one tag in order). Every receive polls until its message is there or
//! the channel's timeout has passed: a rank that never answers is
//! [`Error::ClusterTimeout`], never a hang. A shaped link ([`Shape`]) holds each
//! received payload until `stamp + alpha + bytes / beta`, and a payload sent while the
//! previous one from the same rank is still on the link until that one's end plus
//! `bytes / beta`: one link per pair, whose bandwidth messages share.

use std::time::{Duration, Instant};

use super::shape::{now_ns, sleep_until_ns, Shape};
use crate::error::{Error, Result};

/// Point-to-point messages of 32-bit words, as MPI gives them.
pub(crate) trait Wire {
    /// This process's rank.
    fn rank(&self) -> usize;
    /// How many ranks there are.
    fn size(&self) -> usize;
    /// Sends one message (blocking until the wire has taken it).
    fn send(&self, to: usize, tag: i32, words: &[u32]);
    /// One message from `from` with `tag`, if one has arrived.
    fn try_recv(&self, from: usize, tag: i32) -> Option<Vec<u32>>;
}

impl<T: Wire + ?Sized> Wire for Box<T> {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn send(&self, to: usize, tag: i32, words: &[u32]) {
        (**self).send(to, tag, words)
    }
    fn try_recv(&self, from: usize, tag: i32) -> Option<Vec<u32>> {
        (**self).try_recv(from, tag)
    }
}

/// The most words one MPI message may count (`i32::MAX`).
pub(crate) const MAX_MESSAGE_WORDS: usize = i32::MAX as usize;

/// How long a waiting rank spins (yields) before it sleeps between looks.
const SPIN: Duration = Duration::from_micros(20);

/// The longest a waiting rank sleeps between two looks for its message.
const MAX_NAP: Duration = Duration::from_micros(100);

/// First word of every header: a message that does not start with it is not ours.
const MAGIC: u32 = 0x4859_4231; // "HYB1"
const HEADER_WORDS: usize = 6;

/// A payload received, with when it was sent and when it was whole.
pub(crate) struct Received {
    pub(crate) words: Vec<u32>,
    /// Seconds from the sender's stamp until the payload was whole here (shaping
    /// included): the transfer as the receiver saw it.
    pub(crate) transfer_s: f64,
}

/// Framed, chunked, shaped messages over a [`Wire`], each wait bounded.
pub(crate) struct Channel<W> {
    pub(crate) wire: W,
    pub(crate) shape: Option<Shape>,
    /// Words per message at most (a test makes it small to exercise chunking).
    pub(crate) max_words: usize,
    pub(crate) timeout: Duration,
    /// Payload bytes this rank has sent and received (headers not counted).
    pub(crate) moved: std::cell::Cell<u64>,
    /// How long a wait spins before it sleeps ([`SPIN`]; the link calibration spins
    /// throughout, so its round trips are not rounded up to a nap).
    pub(crate) spin: std::cell::Cell<Duration>,
    /// Per sender, when its shaped link is free (host clock, ns).
    link_free: std::cell::RefCell<std::collections::HashMap<usize, u64>>,
}

impl<W: Wire> Channel<W> {
    /// A channel with MPI's message limit, no shaping and the given timeout.
    pub(crate) fn new(wire: W, timeout: Duration) -> Channel<W> {
        Channel {
            wire,
            shape: None,
            max_words: MAX_MESSAGE_WORDS,
            timeout,
            moved: std::cell::Cell::new(0),
            spin: std::cell::Cell::new(SPIN),
            link_free: Default::default(),
        }
    }

    pub(crate) fn rank(&self) -> usize {
        self.wire.rank()
    }

    pub(crate) fn size(&self) -> usize {
        self.wire.size()
    }

    /// Sends `payload` to `to`: a header, then the payload in messages of at most
    /// `max_words` words.
    pub(crate) fn send(&self, to: usize, tag: i32, payload: &[u32]) {
        let per = self.max_words.max(1);
        let chunks = payload.len().div_ceil(per);
        let len = payload.len() as u64;
        let stamp = now_ns();
        let header = [
            MAGIC,
            len as u32,
            (len >> 32) as u32,
            chunks as u32,
            stamp as u32,
            (stamp >> 32) as u32,
        ];
        self.wire.send(to, tag, &header);
        self.moved.set(self.moved.get() + len * 4);
        for c in payload.chunks(per) {
            self.wire.send(to, tag, c);
        }
    }

    /// Sends bytes (a serialized record), padded to words; the header's first word is
    /// the byte length.
    pub(crate) fn send_bytes(&self, to: usize, tag: i32, bytes: &[u8]) {
        let mut words = vec![0u32; 1 + bytes.len().div_ceil(4)];
        words[0] = bytes.len() as u32;
        bytemuck::cast_slice_mut::<u32, u8>(&mut words[1..])[..bytes.len()].copy_from_slice(bytes);
        self.send(to, tag, &words);
    }

    /// A payload from `from`, whole (and held to its shaped deadline).
    pub(crate) fn recv(&self, from: usize, tag: i32) -> Result<Received> {
        let start = Instant::now();
        let header = self.poll(from, tag, start)?;
        if header.len() != HEADER_WORDS || header[0] != MAGIC {
            return Err(Error::Cluster {
                rank: from,
                message: format!("unframed message of {} words on tag {tag}", header.len()),
            });
        }
        let len = header[1] as u64 | (header[2] as u64) << 32;
        let chunks = header[3] as usize;
        let stamp = header[4] as u64 | (header[5] as u64) << 32;
        let mut words = Vec::new();
        for k in 0..chunks {
            let c = self.poll(from, tag, start)?;
            if k == 0 && chunks == 1 {
                words = c;
            } else {
                if k == 0 {
                    words.reserve_exact(len as usize);
                }
                words.extend_from_slice(&c);
            }
        }
        if words.len() as u64 != len {
            return Err(Error::Cluster {
                rank: from,
                message: format!("message of {} words, header said {len}", words.len()),
            });
        }
        if let Some(s) = self.shape.as_ref().filter(|s| s.covers(from, self.rank())) {
            // one link per sender: a payload's bytes follow the previous payload's
            // on it (latencies overlap, bandwidth does not)
            let wire_ns = (len * 4) as f64 / s.beta_bytes_per_s * 1e9;
            let mut free = self.link_free.borrow_mut();
            let last = free.entry(from).or_insert(0);
            let alone = stamp + (s.time_s(len * 4) * 1e9) as u64;
            let deadline = alone.max(*last + wire_ns as u64);
            *last = deadline;
            drop(free);
            sleep_until_ns(deadline);
        }
        let transfer_s = now_ns().saturating_sub(stamp) as f64 * 1e-9;
        self.moved.set(self.moved.get() + len * 4);
        Ok(Received { words, transfer_s })
    }

    /// Bytes sent by [`send_bytes`](Self::send_bytes).
    pub(crate) fn recv_bytes(&self, from: usize, tag: i32) -> Result<Vec<u8>> {
        let r = self.recv(from, tag)?;
        let n = r.words.first().copied().unwrap_or(0) as usize;
        let body: &[u8] = bytemuck::cast_slice(r.words.get(1..).unwrap_or(&[]));
        body.get(..n).map(<[u8]>::to_vec).ok_or(Error::Cluster {
            rank: from,
            message: format!("record of {n} bytes in {} words", r.words.len()),
        })
    }

    /// One message, polled for until the timeout (counted from `start`): spinning
    /// (yielding) for the first [`SPIN`] (or the channel's `spin`), then sleeping a little longer each time, up
    /// to [`MAX_NAP`] (a rank idle between calls picks its next call up within it).
    /// The spin is short: a rank waiting for its next call must not take a core from
    /// the root computing its share on the same machine.
    fn poll(&self, from: usize, tag: i32, start: Instant) -> Result<Vec<u32>> {
        let mut nap = Duration::from_micros(10);
        loop {
            if let Some(m) = self.wire.try_recv(from, tag) {
                return Ok(m);
            }
            let waited = start.elapsed();
            if waited > self.timeout {
                return Err(Error::ClusterTimeout {
                    rank: from,
                    waited_ms: waited.as_millis() as u64,
                });
            }
            if waited < self.spin.get() {
                std::thread::yield_now();
            } else {
                std::thread::sleep(nap);
                nap = (nap * 2).min(MAX_NAP);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Condvar, Mutex};

    /// Ranks as threads: one queue per (from, to, tag), like MPI's ordering.
    type Queues = HashMap<(usize, usize, i32), VecDeque<Vec<u32>>>;

    /// A wire between threads of one process, for tests without `mpirun`.
    #[derive(Clone)]
    pub(crate) struct ThreadWire {
        rank: usize,
        size: usize,
        queues: Arc<(Mutex<Queues>, Condvar)>,
        /// Messages sent by this rank, counted (chunking tests read it).
        pub(crate) sent: Arc<Mutex<usize>>,
    }

    impl ThreadWire {
        /// `size` connected wires, one per rank.
        pub(crate) fn mesh(size: usize) -> Vec<ThreadWire> {
            let queues = Arc::new((Mutex::new(Queues::new()), Condvar::new()));
            (0..size)
                .map(|rank| ThreadWire {
                    rank,
                    size,
                    queues: queues.clone(),
                    sent: Arc::new(Mutex::new(0)),
                })
                .collect()
        }
    }

    impl Wire for ThreadWire {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.size
        }
        fn send(&self, to: usize, tag: i32, words: &[u32]) {
            let mut q = crate::sync::lock(&self.queues.0);
            q.entry((self.rank, to, tag))
                .or_default()
                .push_back(words.to_vec());
            *crate::sync::lock(&self.sent) += 1;
            self.queues.1.notify_all();
        }
        fn try_recv(&self, from: usize, tag: i32) -> Option<Vec<u32>> {
            let mut q = crate::sync::lock(&self.queues.0);
            q.get_mut(&(from, self.rank, tag))?.pop_front()
        }
    }

    fn pair(max_words: usize) -> (Channel<ThreadWire>, Channel<ThreadWire>) {
        let mut w = ThreadWire::mesh(2).into_iter();
        let mut mk = || {
            let mut c = Channel::new(
                w.next().unwrap_or_else(|| panic!("mesh")),
                Duration::from_secs(5),
            );
            c.max_words = max_words;
            c
        };
        (mk(), mk())
    }

    #[test]
    fn payloads_past_the_message_limit_go_in_chunks_and_arrive_whole() {
        // a limit of 7 words stands for MPI's 2^31 - 1 elements
        let (a, b) = pair(7);
        for len in [0usize, 1, 6, 7, 8, 14, 15, 100] {
            let payload: Vec<u32> = (0..len as u32)
                .map(|i| i.wrapping_mul(2654435761))
                .collect();
            let before = *crate::sync::lock(&a.wire.sent);
            a.send(1, 3, &payload);
            let sent = *crate::sync::lock(&a.wire.sent) - before;
            assert_eq!(sent, 1 + len.div_ceil(7), "header + chunks for {len} words");
            let got = b.recv(0, 3).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got.words, payload, "{len} words");
        }
        let bytes: Vec<u8> = (0..=200u8).collect();
        a.send_bytes(1, 4, &bytes);
        assert_eq!(b.recv_bytes(0, 4).unwrap_or_else(|e| panic!("{e}")), bytes);
    }

    #[test]
    fn a_silent_rank_is_a_timeout_not_a_hang() {
        let (mut a, _b) = pair(MAX_MESSAGE_WORDS);
        a.timeout = Duration::from_millis(30);
        let t = Instant::now();
        let e = a.recv(1, 1).err();
        assert!(
            matches!(e, Some(Error::ClusterTimeout { rank: 1, waited_ms }) if waited_ms >= 30),
            "{e:?}"
        );
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    /// Two payloads sent at once share the link's bandwidth: the second ends one
    /// transfer time after the first (latencies overlap).
    #[test]
    fn payloads_sent_together_share_a_shaped_links_bandwidth() {
        let (mut a, mut b) = pair(MAX_MESSAGE_WORDS);
        let shape = Shape::new(1e-3, 1e8); // 40 KB: 1 ms + 0.4 ms each
        a.shape = Some(shape.clone());
        b.shape = Some(shape);
        let t = Instant::now();
        a.send(1, 2, &[1u32; 10_000]);
        a.send(1, 2, &[2u32; 10_000]);
        b.recv(0, 2).unwrap_or_else(|e| panic!("{e}"));
        let first = t.elapsed().as_secs_f64();
        b.recv(0, 2).unwrap_or_else(|e| panic!("{e}"));
        let both = t.elapsed().as_secs_f64();
        assert!((1.4e-3..1.4e-3 + 2e-3).contains(&first), "{first}");
        assert!(
            (1.8e-3..1.8e-3 + 2e-3).contains(&both),
            "{both}: not serialised"
        );
    }

    #[test]
    fn a_shaped_receive_lasts_alpha_plus_bytes_over_beta() {
        let (mut a, mut b) = pair(MAX_MESSAGE_WORDS);
        let shape = Shape::new(2e-3, 1e8); // 2 ms + 40 KB at 100 MB/s = 2.4 ms
        a.shape = Some(shape.clone());
        b.shape = Some(shape);
        let t = Instant::now();
        a.send(1, 2, &[7u32; 10_000]);
        let got = b.recv(0, 2).unwrap_or_else(|e| panic!("{e}"));
        let s = t.elapsed().as_secs_f64();
        assert!(got.transfer_s >= 2.4e-3 && s >= 2.4e-3, "{s}");
        assert!(s < 2.4e-3 + 2e-3, "{s}: far past the shaped deadline");
    }
}
