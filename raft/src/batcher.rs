//! Group commit: many writers, few log entries.
//!
//! Each writer submits one [`Command`] and awaits its own answer. One task
//! takes the first command queued, drains whatever else is queued already
//! (up to [`MAX_COMMANDS`] commands or [`MAX_BYTES`] of JSON), and commits
//! them as one log entry through the leader (on a follower the whole batch
//! travels in one ForwardWrite call). There is no timer: a command that
//! finds the queue empty goes at once, alone. While a batch is in flight
//! (up to [`MAX_IN_FLIGHT`] at a time), new commands queue up and form the
//! next one — the busier the member, the larger its batches, and the fewer
//! appends, fsyncs and replication rounds per command.
//!
//! Each command of a batch is validated and applied on its own (see
//! [`Request`]); a failure of the batch as a whole (no leader, forwarding
//! failed) is returned to every writer in it. A writer that goes away holds
//! nothing up: its command is left out if its batch has not formed yet, and
//! its answer is dropped otherwise.

use std::future::Future;
use std::io;
use std::sync::Arc;

use stockade_policy::{Applied, Command, ValidationError};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::routing::WriteError;
use crate::types::{LogId, Request, Response};

/// The most commands in one log entry.
pub(crate) const MAX_COMMANDS: usize = 512;
/// About the most JSON in one log entry: a batch takes no further command
/// once this would be exceeded (a single larger command goes alone). An
/// AppendEntries call carries many entries within a heartbeat's time, and
/// followers that lag receive the log in such calls, so entries stay small.
pub(crate) const MAX_BYTES: usize = 256 * 1024;
/// The most batches committing at a time.
///
/// One: while a batch commits, the next one gathers everything that
/// arrives. More would let the leader append (and fsync) a batch while the
/// one before it is replicated, but openraft 0.9 appends them one after the
/// other and keeps one AppendEntries call in flight per follower, so that
/// overlap saves at most the leader's fsync of each round, and the batches
/// get smaller. Measured with `stockade-bench` (3 nodes on 2 cores), 2, 4
/// and 8 batches in flight gave 5–40% fewer writes/s than 1 at 16 and 256
/// clients, and a p99 two to three times higher at 256.
pub(crate) const MAX_IN_FLIGHT: usize = 1;
/// Commands that may wait for a batch before writers are held back.
const QUEUE: usize = 4096;

/// A committed command: where it is in the log and what it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The log entry that carries it (with the other commands of its batch):
    /// its index is the first policy version that reflects the command.
    pub log_id: LogId,
    /// What the command did, or why it was refused (then it changed nothing).
    pub result: Result<Applied, ValidationError>,
}

/// One writer's command and where its answer goes.
struct Job {
    command: Command,
    /// The length of the command's JSON.
    bytes: usize,
    reply: oneshot::Sender<Result<Committed, WriteError>>,
}

/// The writers' side of the batching task. The task ends once every
/// `Batcher` (every clone of the member) is gone.
#[derive(Clone, Debug)]
pub(crate) struct Batcher {
    queue: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the batching task; it commits each batch with `commit`, which
    /// answers the entry's log id and the state machine's response.
    pub(crate) fn spawn<F, Fut>(commit: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(LogId, Response), WriteError>> + Send + 'static,
    {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(Arc::new(commit), jobs));
        Batcher { queue }
    }

    /// Commits `command` in the next batch and returns what it did.
    pub(crate) async fn write(&self, command: Command) -> Result<Committed, WriteError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            bytes: json_len(&command),
            command,
            reply,
        };
        self.queue
            .send(job)
            .await
            .map_err(|_| WriteError::Abandoned)?;
        answer.await.unwrap_or(Err(WriteError::Abandoned))
    }
}

/// Forms batches from `jobs` and commits each in a task of its own, at most
/// [`MAX_IN_FLIGHT`] at a time, until every writer's side is gone.
async fn run<F, Fut>(commit: Arc<F>, mut jobs: mpsc::Receiver<Job>)
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(LogId, Response), WriteError>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // A job drained that did not fit its batch: the first of the next.
    let mut held: Option<Job> = None;
    loop {
        // Wait for a free slot first: meanwhile the queue fills up, and the
        // batch formed once the slot is free takes all of it.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return; // the semaphore is never closed
        };
        let first = match held.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let batch = gather(first, &mut jobs, &mut held);
        if !batch.is_empty() {
            tokio::spawn(commit_batch(Arc::clone(&commit), batch, slot));
        }
    }
}

/// `first` and whatever else is queued, within the limits, less the jobs
/// whose writers have gone. A job that would exceed [`MAX_BYTES`] is put in
/// `held`.
fn gather(first: Job, jobs: &mut mpsc::Receiver<Job>, held: &mut Option<Job>) -> Vec<Job> {
    let mut bytes = first.bytes;
    let mut batch = vec![first];
    while batch.len() < MAX_COMMANDS {
        let Ok(job) = jobs.try_recv() else { break };
        if bytes.saturating_add(job.bytes) > MAX_BYTES {
            *held = Some(job);
            break;
        }
        bytes += job.bytes;
        batch.push(job);
    }
    batch.retain(|job| !job.reply.is_closed());
    batch
}

/// Commits `batch` as one entry and answers each of its writers. The slot
/// is given back before the answers go out.
async fn commit_batch<F, Fut>(commit: Arc<F>, batch: Vec<Job>, slot: OwnedSemaphorePermit)
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Result<(LogId, Response), WriteError>>,
{
    let (commands, replies): (Vec<Command>, Vec<_>) = batch
        .into_iter()
        .map(|job| (job.command, job.reply))
        .unzip();
    let outcome = commit(Request { commands }).await;
    drop(slot);
    match outcome {
        Ok((log_id, response)) if response.results.len() == replies.len() => {
            for (reply, result) in replies.into_iter().zip(response.results) {
                let _ = reply.send(Ok(Committed { log_id, result }));
            }
        }
        Ok((log_id, response)) => {
            // Cannot happen: the state machine answers every command.
            tracing::error!(
                %log_id,
                commands = replies.len(),
                results = response.results.len(),
                "a batch was answered with the wrong number of results"
            );
            for reply in replies {
                let _ = reply.send(Err(WriteError::Abandoned));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length of `command`'s JSON, without building it. A command that
/// cannot be encoded counts as empty; it fails alike wherever it is.
fn json_len(command: &Command) -> usize {
    let mut count = ByteCount(0);
    serde_json::to_writer(&mut count, command).map_or(0, |()| count.0)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use openraft::CommittedLeaderId;
    use stockade_policy::{ClusterState, Mode};
    use tokio::sync::Notify;

    use super::*;

    fn zone(name: &str) -> Command {
        Command::UpsertZone {
            id: None,
            name: name.into(),
            mode: Mode::Learn,
            description: String::new(),
        }
    }

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    /// A log in memory: each batch is one entry, applied command by
    /// command. `gate`, when set, holds every commit until notified.
    #[derive(Default)]
    struct FakeLog {
        batches: Mutex<Vec<Vec<Command>>>,
        state: Mutex<ClusterState>,
        gate: Option<Notify>,
    }

    impl FakeLog {
        async fn commit(&self, request: Request) -> Result<(LogId, Response), WriteError> {
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            let results = {
                let mut state = self.state.lock().expect("state");
                request
                    .commands
                    .iter()
                    .map(|c| c.apply(&mut state))
                    .collect()
            };
            let mut batches = self.batches.lock().expect("batches");
            batches.push(request.commands);
            Ok((log_id(batches.len() as u64), Response { results }))
        }

        fn batcher(self: &Arc<Self>) -> Batcher {
            let log = Arc::clone(self);
            Batcher::spawn(move |request| {
                let log = Arc::clone(&log);
                async move { log.commit(request).await }
            })
        }
    }

    #[tokio::test]
    async fn a_lone_command_goes_at_once_in_an_entry_of_its_own() {
        let log = Arc::new(FakeLog::default());
        let batcher = log.batcher();
        let first = batcher.write(zone("prod")).await.expect("committed");
        let second = batcher.write(zone("dev")).await.expect("committed");
        assert_eq!(first.log_id.index, 1);
        assert_eq!(second.log_id.index, 2);
        assert!(matches!(first.result, Ok(Applied::Zone(_))));
        assert_eq!(log.batches.lock().expect("batches").len(), 2);
    }

    #[tokio::test]
    async fn queued_commands_share_entries_and_each_gets_its_own_result() {
        let log = Arc::new(FakeLog {
            gate: Some(Notify::new()),
            ..FakeLog::default()
        });
        let batcher = log.batcher();
        let writers: Vec<_> = (0..1000_usize)
            .map(|i| {
                let batcher = batcher.clone();
                // Every third command is refused: the zone it removes is absent.
                let command = if i.is_multiple_of(3) {
                    Command::RemoveZone {
                        name: format!("absent-{i}"),
                    }
                } else {
                    zone(&format!("z{i}"))
                };
                tokio::spawn(async move { batcher.write(command).await })
            })
            .collect();
        // Let every writer queue, then let the commits through.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let gate = log.gate.as_ref().expect("a gate");
        for _ in 0..100 {
            gate.notify_waiters();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for (i, writer) in writers.into_iter().enumerate() {
            let committed = writer.await.expect("writer").expect("committed");
            if i.is_multiple_of(3) {
                assert_eq!(committed.result.expect_err("refused").field, "name");
            } else {
                assert!(matches!(committed.result, Ok(Applied::Zone(_))));
            }
        }
        let batches = log.batches.lock().expect("batches");
        assert!(batches.len() < 20, "{} entries", batches.len());
        assert!(batches.iter().all(|b| b.len() <= MAX_COMMANDS));
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 1000);
        assert_eq!(log.state.lock().expect("state").zones.len(), 666);
    }

    #[tokio::test]
    async fn a_batch_holds_about_max_bytes_of_json() {
        let log = Arc::new(FakeLog {
            gate: Some(Notify::new()),
            ..FakeLog::default()
        });
        let batcher = log.batcher();
        let big = |i: usize| Command::UpsertZone {
            id: None,
            name: format!("z{i}"),
            mode: Mode::Learn,
            description: "x".repeat(MAX_BYTES / 4),
        };
        let writers: Vec<_> = (0..12)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.write(big(i)).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let gate = log.gate.as_ref().expect("a gate");
        for _ in 0..20 {
            gate.notify_waiters();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for writer in writers {
            writer.await.expect("writer").expect("committed");
        }
        let batches = log.batches.lock().expect("batches");
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 12);
        assert!(batches.iter().all(|b| b.len() <= 3), "{batches:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_writer_in_it_and_the_next_goes_on() {
        let calls = Arc::new(Mutex::new(0_u64));
        let counted = Arc::clone(&calls);
        let batcher = Batcher::spawn(move |request: Request| {
            let counted = Arc::clone(&counted);
            async move {
                let call = {
                    let mut calls = counted.lock().expect("calls");
                    *calls += 1;
                    *calls
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
                if call == 1 {
                    Err(WriteError::NoLeader)
                } else {
                    let results = request.commands.iter().map(|_| Ok(Applied::Done)).collect();
                    Ok((log_id(call), Response { results }))
                }
            }
        });
        let writers: Vec<_> = (0..MAX_IN_FLIGHT * 10)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.write(zone(&format!("z{i}"))).await })
            })
            .collect();
        let mut failed = 0;
        for writer in writers {
            match writer.await.expect("writer") {
                Err(WriteError::NoLeader) => failed += 1,
                Err(e) => panic!("unexpected error: {e}"),
                Ok(committed) => assert!(committed.log_id.index > 1),
            }
        }
        assert!(failed >= 1);
        assert!(batcher.write(zone("after")).await.is_ok());
    }

    #[tokio::test]
    async fn writers_that_go_away_do_not_wedge_the_batcher() {
        let log = Arc::new(FakeLog {
            gate: Some(Notify::new()),
            ..FakeLog::default()
        });
        let batcher = log.batcher();
        // Writers that give up while their batch waits, and while they queue.
        for i in 0..100 {
            let write = batcher.write(zone(&format!("gone{i}")));
            let _ = tokio::time::timeout(Duration::from_millis(1), write).await;
        }
        let gate = log.gate.as_ref().expect("a gate");
        let waiting = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.write(zone("stays")).await })
        };
        for _ in 0..50 {
            gate.notify_waiters();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let committed = waiting.await.expect("writer").expect("committed");
        assert!(matches!(committed.result, Ok(Applied::Zone(_))));
        assert!(log.state.lock().expect("state").zones.contains_key("stays"));
    }

    #[test]
    fn the_json_length_is_that_of_the_encoded_command() {
        let command = zone("prod");
        let text = serde_json::to_vec(&command).expect("encode");
        assert_eq!(json_len(&command), text.len());
    }
}
