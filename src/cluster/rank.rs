//! A call on a rank other than the root: wait for the header, take its share of the
//! inputs, compute it on this rank's own runtime, send back a record (timings, the
//! local receipt, or the error) and the results. A kernel whose id differs from the
//! root's is not run: the record says so, and both sides fail with
//! [`Error::ClusterKernelMismatch`]. See [`call`](super::call) for the root's side.

use std::time::Instant;

use super::call::{join64, split64, Part, Record, Run, What, HEADER_WORDS, NO_REPLY};
use super::call::{TAG_CALL, TAG_DATA, TAG_META, TAG_RESULT};
use super::cluster::Cluster;
use super::mpi_wire::local;
use super::report::{ClusterReport, LocalReport, NodeReport};
use crate::error::{Error, Result};

impl Cluster {
    pub(super) fn rank_call(
        &self,
        id: Result<u64>,
        what: What,
        run: Run<'_>,
    ) -> Result<ClusterReport> {
        let t0 = Instant::now();
        let rank = self.rank();
        let h = self.ch.recv(0, TAG_CALL)?.words;
        if h.len() != HEADER_WORDS {
            return Err(Error::Cluster {
                rank: 0,
                message: format!("call header of {} words", h.len()),
            });
        }
        if h[0] != 0 && h[0] != NO_REPLY {
            return Err(Error::Cluster {
                rank: 0,
                message: "the root cancelled the call".into(),
            });
        }
        // given no share of a call every rank has answered before: nothing goes back
        let reply = h[0] == 0;
        let (code, arity) = (h[1], h[2] as usize);
        let root_id = join64(h[3], h[4]);
        let count = join64(h[5], h[6]) as usize;
        let mut rec = Record::default();
        let tables = h[9] as usize;
        let mut data = Vec::with_capacity(arity + tables);
        if count > 0 {
            for _ in 0..arity + tables {
                let got = self.ch.recv(0, TAG_DATA)?;
                rec.send_s = rec.send_s.max(got.transfer_s);
                data.push(got.words);
            }
        }
        let mut node = NodeReport {
            rank,
            host: self
                .profiles
                .first()
                .map(|p| p.host.clone())
                .unwrap_or_default(),
            elements: count,
            bytes_in: data.iter().map(|d| d.len() as u64 * 4).sum(),
            send_s: rec.send_s,
            ..NodeReport::default()
        };
        let mut out = None;
        let outcome: Result<()> = match id {
            Err(e) => Err(e),
            Ok(mine) if mine != root_id => {
                rec.mismatch = Some((root_id, mine));
                Err(Error::ClusterKernelMismatch {
                    rank,
                    root: root_id,
                    local: mine,
                })
            }
            Ok(_) if code != what.code() || arity != what.arity => Err(Error::Cluster {
                rank,
                message: format!(
                    "this rank called {}, the root {}",
                    What::describe(what.code(), what.arity),
                    What::describe(code, arity)
                ),
            }),
            Ok(_) if count == 0 => Ok(()),
            Ok(_) => {
                let views: Vec<&[u32]> = data.iter().map(Vec::as_slice).collect();
                let (each, whole) = views.split_at(arity.min(views.len()));
                let t = Instant::now();
                match local(|| run(each, whole, count)) {
                    Ok(Ok((part, r))) => {
                        rec.compute_s = t.elapsed().as_secs_f64();
                        rec.local = Some(LocalReport::of(&r));
                        out = Some(part);
                        Ok(())
                    }
                    Ok(Err(e)) => Err(e),
                    Err(panic) => Err(Error::Cluster {
                        rank,
                        message: format!("panicked: {panic}"),
                    }),
                }
            }
        };
        if let Err(e) = &outcome {
            if rec.mismatch.is_none() {
                rec.error = Some(e.to_string());
            }
        }
        node.compute_s = rec.compute_s;
        node.local = rec.local.clone();
        if reply {
            let json = serde_json::to_vec(&rec).unwrap_or_default();
            self.ch.send_bytes(0, TAG_META, &json);
        }
        match out {
            Some(Part::Words(w)) => {
                node.bytes_out = w.len() as u64 * 4;
                self.ch.send(0, TAG_RESULT, &w);
            }
            Some(Part::Bits(b)) => {
                node.bytes_out = 8;
                self.ch.send(0, TAG_RESULT, &split64(b));
            }
            None => {}
        }
        outcome?;
        node.measured_s = t0.elapsed().as_secs_f64();
        Ok(ClusterReport {
            call: What::describe(what.code(), what.arity),
            elements: count,
            wall_s: node.measured_s,
            nodes: vec![node],
            ..ClusterReport::default()
        })
    }
}
