//! The replicated KV server: one Prime replica ([`KvReplica`]) run by `stockade-runtime` (Noise
//! over UDP to the other servers and to proxies, redb for durability), plus the server's own RESP
//! port and a Prometheus endpoint.
//!
//! The RESP port is for clients that trust this server: each command is submitted through the
//! local replica as a Prime update without `reply_to` and answered when this replica executes it
//! (PRIME.md step 11 hands the originator's own clients their replies locally). Clients that trust
//! no single server use the voting proxy ([`crate::proxy`]).
//!
//! On start the server rebuilds its state from the redb data directory (Prime's own records and the
//! key-value state, [`crate::replica`]) and then catches up with the others through Prime. Since
//! Prime remembers its PO-REQUEST numbers across a restart, the restarted server's RESP port serves
//! replicated commands at once (a new incarnation for its clients).
//!
//! Metrics besides the runtime's: `kv_slots_executed_total`, `kv_updates_executed_total`,
//! `kv_checkpoint_jumps_total`, and what Prime detected: `kv_leader_suspicions_total`,
//! `kv_view_changes_total` with the gauge `kv_proven_view` (the last view a NEW-LEADER proof was
//! completed for), and `kv_misbehaviour_reports_total{culprit, kind}`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use stockade_core::{DecodeLimits, Wire};
use stockade_replication::replica::Misbehaviour;
use stockade_replication::{ClientId, ParticipantId, PrimeOutput, Update};
use stockade_runtime::{serve_metrics, spawn_node, NodeHandle, NodeSetup, RedbStore};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::attack_control::follow_control_file;
use crate::command::{Bytes, Command};
use crate::connection::{ready, serve_resp, Backend, FrontEndLimits, PendingReply, Waiting};
use crate::large_reply::LargeReplies;
use crate::limits::Limits;
use crate::replica::{KvReplica, ReplicaError, ReplicaRequest};
use crate::replicated::ReplicatedKv;
use crate::reply::Reply;
use crate::service_config::{incarnation_now, ServiceConfig, ServiceError};

/// Commands of the server's own clients waiting for execution.
pub const LOCAL_WAITING_MAX: usize = 100_000;

/// Client ids of a server's own connections: `(node id + 1) << LOCAL_CLIENT_SHIFT` + connection.
pub const LOCAL_CLIENT_SHIFT: u32 = 40;

/// Prometheus counter of the view changes this server saw proven (`stockade bench kv` reads it:
/// a view change during a benchmark means the leader was suspected under load).
pub const VIEW_CHANGES_METRIC: &str = "kv_view_changes_total";

/// A running server. Dropping it stops the node.
pub struct RunningServer {
    node: NodeHandle<KvReplica>,
    resp_addr: SocketAddr,
    recovered_slot: u64,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Where the RESP port listens.
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp_addr
    }

    /// The node's UDP address.
    pub fn protocol_addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// The last slot the data directory held at start (0 for a new server).
    pub fn recovered_slot(&self) -> u64 {
        self.recovered_slot
    }

    /// Stop at once, as `kill -9` would.
    pub fn abort(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.node.abort();
    }

    /// Stop after the current turn; queued persist batches become durable first.
    pub async fn shutdown(self) -> Result<(), ServiceError> {
        for task in &self.tasks {
            task.abort();
        }
        self.node.shutdown().await?;
        Ok(())
    }
}

/// Start a server from `config` on the current tokio runtime.
pub async fn start_server(config: &ServiceConfig) -> Result<RunningServer, ServiceError> {
    let membership = config.membership()?;
    let me = membership
        .participant(config.node.node_id())
        .ok_or_else(|| ServiceError::Config {
            path: Default::default(),
            message: format!(
                "node id {} is not among replication.servers",
                config.node.id
            ),
        })?;
    let auth = config.server_auth()?;
    let setup = NodeSetup::from_config(&config.node)?;
    // Recover before the runtime opens the store: the build closure cannot fail.
    let durable = RedbStore::open(&config.node.data_dir)
        .and_then(|store| store.snapshot())
        .map_err(|e| ServiceError::Node(e.into()))?;
    let recovered_slot = ReplicatedKv::recorded_slot(&durable).map_err(ReplicaError::from)?;
    let prime_config = config.replication.prime_config();
    let mut replica = KvReplica::recover(
        prime_config,
        membership,
        me,
        Box::new(auth),
        &durable,
        Limits::DEFAULT,
    )?;
    let large_replies = replica.prime().app().large_replies();
    if let Some(attack) = &config.attack {
        tracing::warn!("{}", attack.warning());
        if attack.scheduled() {
            replica = replica.with_attack_schedule(attack.schedule());
        }
        if attack.control_file.is_some() {
            replica = replica.allowing_attack_requests();
        }
    }
    let resp_listener = bind_resp(config.resp).await?;
    let resp_addr = resp_listener
        .local_addr()
        .map_err(|e| listen_error("RESP", config.resp, e))?;
    if let Some(addr) = config.node.metrics {
        serve_metrics(addr).map_err(|e| listen_error("metrics", addr, e))?;
    }
    let mut node = spawn_node(setup, move |_| replica).await?;
    let (_, closed) = mpsc::channel(1);
    let outputs = std::mem::replace(&mut node.outputs, closed);
    let waiting = Arc::new(Waiting::new(LOCAL_WAITING_MAX));
    let incarnation = incarnation_now();
    let backend = Arc::new(LocalBackend {
        requests: node.requests.clone(),
        waiting: Arc::clone(&waiting),
        client_base: (u64::from(config.node.id) + 1) << LOCAL_CLIENT_SHIFT,
        incarnation,
        large_replies: large_replies.clone(),
    });
    let dispatcher = tokio::spawn(dispatch_outputs(
        outputs,
        waiting,
        me,
        incarnation,
        large_replies,
    ));
    let mut tasks = vec![dispatcher];
    if let Some(file) = config.attack.as_ref().and_then(|a| a.control_file.clone()) {
        tasks.push(tokio::spawn(follow_control_file(
            file,
            node.requests.clone(),
        )));
    }
    let front_end = tokio::spawn(async move {
        if let Err(e) = serve_resp(resp_listener, backend, FrontEndLimits::default()).await {
            tracing::error!(error = %e, "the RESP listener stopped");
        }
    });
    tasks.push(front_end);
    Ok(RunningServer {
        node,
        resp_addr,
        recovered_slot,
        tasks,
    })
}

/// Run the server described by the configuration file until Ctrl-C (the `stockade server`
/// command).
pub async fn run_server(config_path: &Path) -> Result<(), ServiceError> {
    let config = ServiceConfig::load(config_path)?;
    if let Some(attack) = &config.attack {
        // Loud on purpose: the log of a misbehaving server must say so in its first line.
        eprintln!("{}", attack.warning());
    }
    let server = start_server(&config).await?;
    println!(
        "stockade kv server {} up: RESP {} protocol {}",
        config.node.id,
        server.resp_addr(),
        server.protocol_addr()
    );
    wait_for_stop_signal().await;
    server.shutdown().await
}

/// Wait for Ctrl-C or SIGTERM (what `cluster down` sends), so the node stops after its turn.
pub(crate) async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = std::pin::pin!(async {
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    });
    let mut terminate = terminate;
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if result.is_err() {
                // No SIGINT handling available: wait for SIGTERM alone.
                terminate.as_mut().await;
            }
        }
        () = terminate.as_mut() => {}
    }
}

pub(crate) async fn bind_resp(addr: SocketAddr) -> Result<TcpListener, ServiceError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| listen_error("RESP", addr, e))
}

pub(crate) fn listen_error(
    what: &'static str,
    addr: SocketAddr,
    e: impl std::fmt::Display,
) -> ServiceError {
    ServiceError::Listen {
        what,
        addr,
        message: e.to_string(),
    }
}

/// Submits the server's own clients' commands through the local replica.
struct LocalBackend {
    requests: mpsc::Sender<ReplicaRequest>,
    waiting: Arc<Waiting<(ClientId, u64)>>,
    client_base: u64,
    incarnation: u64,
    large_replies: LargeReplies,
}

/// A connection as a Prime client.
struct LocalClient {
    client: ClientId,
    last_seq: u64,
}

impl Backend for LocalBackend {
    type Connection = LocalClient;

    fn connect(&self, id: u64) -> LocalClient {
        LocalClient {
            client: ClientId(self.client_base + id),
            last_seq: 0,
        }
    }

    fn answer_own_command(&self, args: &[Bytes]) -> Option<Reply> {
        self.large_replies.answer_fetch(args)
    }

    async fn submit(&self, connection: &mut LocalClient, command: Command) -> PendingReply {
        connection.last_seq += 1;
        let key = (connection.client, connection.last_seq);
        let pending = match self.waiting.wait(key, None) {
            Ok(pending) => pending,
            Err(refusal) => return ready(refusal),
        };
        let update = Update {
            client: connection.client,
            incarnation: self.incarnation,
            seq: connection.last_seq,
            reply_to: None,
            op: command.to_bytes(),
        };
        if self.requests.send(update.into()).await.is_err() {
            self.waiting.answer(
                &key,
                Reply::Error(crate::connection::LOST_REPLY_ERROR.into()),
            );
        }
        pending
    }
}

/// The reply to a command whose large reply left the cache before it was handed over.
pub const LARGE_REPLY_EVICTED_ERROR: &str =
    "ERR the command executed but its large reply was evicted before it was sent; retry";

/// Route the replica's outputs: replies to the connections waiting for them (a large reply
/// taken from `large_replies`, [`crate::large_reply`]), the rest to
/// metrics and the log. Replies of another `incarnation` are dropped: after a restart, catch-up
/// re-executes the previous run's updates, whose clients share ids and sequence numbers with
/// this run's.
async fn dispatch_outputs(
    mut outputs: mpsc::Receiver<PrimeOutput>,
    waiting: Arc<Waiting<(ClientId, u64)>>,
    me: ParticipantId,
    incarnation: u64,
    large_replies: LargeReplies,
) {
    while let Some(output) = outputs.recv().await {
        match output {
            PrimeOutput::Reply(reply) if reply.incarnation != incarnation => {}
            PrimeOutput::Reply(reply) => {
                let answer = Reply::from_bytes(&reply.result, DecodeLimits::MESSAGE)
                    .unwrap_or_else(|_| Reply::Error("ERR the replica produced no result".into()));
                let answer = large_replies
                    .resolve(answer)
                    .unwrap_or_else(|| Reply::Error(LARGE_REPLY_EVICTED_ERROR.into()));
                waiting.answer(&(reply.client, reply.seq), answer);
            }
            PrimeOutput::Rejected {
                client,
                seq,
                reason,
            } => {
                let error = format!("ERR the server did not admit the command ({reason:?}); retry");
                waiting.answer(&(client, seq), Reply::Error(error));
            }
            PrimeOutput::Executed { updates, .. } => {
                metrics::counter!("kv_slots_executed_total", "participant" => me.0.to_string())
                    .increment(1);
                metrics::counter!("kv_updates_executed_total", "participant" => me.0.to_string())
                    .increment(updates as u64);
            }
            PrimeOutput::Jumped { global_seq, state } => {
                metrics::counter!("kv_checkpoint_jumps_total", "participant" => me.0.to_string())
                    .increment(1);
                tracing::info!(
                    global_seq,
                    ?state,
                    "caught up by state transfer from a checkpoint"
                );
            }
            PrimeOutput::Misbehaviour {
                participant,
                evidence,
            } => {
                metrics::counter!(
                    "kv_misbehaviour_reports_total",
                    "participant" => me.0.to_string(),
                    "culprit" => participant.0.to_string(),
                    "kind" => misbehaviour_kind(&evidence)
                )
                .increment(1);
                tracing::warn!(?participant, ?evidence, "a server misbehaved");
            }
            PrimeOutput::LeaderSuspected { view } => {
                metrics::counter!("kv_leader_suspicions_total", "participant" => me.0.to_string())
                    .increment(1);
                tracing::info!(view, "suspecting the leader");
            }
            PrimeOutput::NewLeaderProven { view } => {
                metrics::counter!(VIEW_CHANGES_METRIC, "participant" => me.0.to_string())
                    .increment(1);
                metrics::gauge!("kv_proven_view", "participant" => me.0.to_string())
                    .set(view as f64);
                tracing::info!(view, "view change proven");
            }
        }
    }
    waiting.abandon_all();
}

/// The `kind` label of `kv_misbehaviour_reports_total`.
fn misbehaviour_kind(evidence: &Misbehaviour) -> &'static str {
    match evidence {
        Misbehaviour::PoRequestEquivocation { .. } => "po_request_equivocation",
        Misbehaviour::LowerSummary { .. } => "lower_summary",
        Misbehaviour::PrePrepareEquivocation { .. } => "pre_prepare_equivocation",
        Misbehaviour::BadThresholdShare { .. } => "bad_threshold_share",
    }
}

#[cfg(test)]
mod tests {
    use stockade_core::Wire;
    use stockade_replication::messages::Reply as PrimeReply;

    use super::*;

    fn reply(incarnation: u64, value: &str) -> PrimeOutput {
        PrimeOutput::Reply(PrimeReply {
            client: ClientId(7),
            incarnation,
            seq: 1,
            global_seq: 3,
            result: Reply::bulk(value).to_bytes(),
        })
    }

    #[tokio::test]
    async fn replies_of_a_previous_incarnation_do_not_answer_this_runs_commands() {
        let waiting = Arc::new(Waiting::new(4));
        let pending = waiting.wait((ClientId(7), 1), None).expect("room");
        let (tx, rx) = mpsc::channel(4);
        // Catch-up re-executes the previous run's (client 7, seq 1) before this run's.
        tx.send(reply(1, "stale")).await.expect("open");
        tx.send(reply(2, "fresh")).await.expect("open");
        drop(tx);
        dispatch_outputs(
            rx,
            Arc::clone(&waiting),
            ParticipantId(0),
            2,
            LargeReplies::default(),
        )
        .await;
        assert_eq!(pending.await.expect("answered"), Reply::bulk("fresh"));
        assert!(waiting.is_empty());
    }
}
