//! The voting proxy: a RESP listener for unmodified Redis clients in front of the replicated
//! servers. Each command goes through the [`VotingClient`] protocol, run by `stockade-runtime`
//! over Noise/UDP, and is answered only with a result f+1 servers signed (DESIGN.md section 7).
//! Replies go back in request order on each connection. Replies too large for a Prime reply are
//! voted on by digest and fetched from the servers' RESP ports ([`crate::large_reply`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use stockade_core::NodeId;
use stockade_runtime::{spawn_node, NodeHandle, NodeSetup};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use crate::command::Command;
use crate::connection::{
    ready, serve_resp, Backend, FrontEndLimits, PendingReply, Waiting, LOST_REPLY_ERROR,
};
use crate::large_reply::LargeReplyRef;
use crate::large_reply_fetch::fetch_large_reply;
use crate::reply::Reply;
use crate::server::{bind_resp, listen_error, wait_for_stop_signal};
use crate::service_config::{incarnation_now, ServiceConfig, ServiceError};
use crate::voting::{VoteRequest, VotingClient, VotingConfig, VotingOutput, VotingStats};
use stockade_runtime::serve_metrics;

/// The reply to a command no f+1 servers agreed on within the retry bound.
pub const NO_AGREEMENT_ERROR: &str =
    "ERR no f+1 servers agreed on a result within the retry bound; the cluster may be unavailable";

/// A running proxy. Dropping it stops the node.
pub struct RunningProxy {
    node: NodeHandle<VotingClient>,
    resp_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningProxy {
    /// Where the RESP port listens.
    pub fn resp_addr(&self) -> SocketAddr {
        self.resp_addr
    }

    /// Stop the proxy; returns the voting client's counters.
    pub async fn shutdown(self) -> Result<VotingStats, ServiceError> {
        for task in &self.tasks {
            task.abort();
        }
        let client = self.node.shutdown().await?;
        Ok(client.stats().clone())
    }
}

/// Start a proxy from `config` on the current tokio runtime.
pub async fn start_proxy(config: &ServiceConfig) -> Result<RunningProxy, ServiceError> {
    let auth = config.auth()?;
    let params = &config.proxy;
    let mut voting = VotingConfig::new(
        config
            .replication
            .servers
            .iter()
            .map(|id| NodeId(*id))
            .collect(),
        config.replication.f,
        params.first_client,
        incarnation_now(),
    );
    voting.lanes = params.lanes;
    voting.retry_timeout = params.retry_timeout();
    voting.retries_max = params.retries_max;
    voting.home_server = (!params.spread_lanes).then_some(params.home_server);
    let setup = NodeSetup::from_config(&config.node)?;
    let resp_listener = bind_resp(config.resp).await?;
    let resp_addr = resp_listener
        .local_addr()
        .map_err(|e| listen_error("RESP", config.resp, e))?;
    if let Some(addr) = config.node.metrics {
        serve_metrics(addr).map_err(|e| listen_error("metrics", addr, e))?;
    }
    let client = VotingClient::new(voting, Box::new(auth));
    let mut node = spawn_node(setup, move |_| client).await?;
    let (_, closed) = mpsc::channel(1);
    let outputs = std::mem::replace(&mut node.outputs, closed);
    let waiting = Arc::new(Waiting::new(params.lanes));
    let backend = Arc::new(VotingBackend {
        requests: node.requests.clone(),
        waiting: Arc::clone(&waiting),
        lanes: Arc::new(Semaphore::new(params.lanes)),
        next_tag: AtomicU64::new(1),
    });
    let servers_resp = Arc::new(params.server_resp.clone());
    let dispatcher = tokio::spawn(dispatch_outputs(outputs, waiting, servers_resp));
    let front_end = tokio::spawn(async move {
        if let Err(e) = serve_resp(resp_listener, backend, FrontEndLimits::default()).await {
            tracing::error!(error = %e, "the RESP listener stopped");
        }
    });
    Ok(RunningProxy {
        node,
        resp_addr,
        tasks: vec![dispatcher, front_end],
    })
}

/// Run the proxy described by the configuration file until Ctrl-C (the `stockade proxy`
/// command).
pub async fn run_proxy(config_path: &Path) -> Result<(), ServiceError> {
    let config = ServiceConfig::load(config_path)?;
    let proxy = start_proxy(&config).await?;
    println!("stockade kv proxy up: RESP {}", proxy.resp_addr());
    wait_for_stop_signal().await;
    let stats = proxy.shutdown().await?;
    println!("stockade kv proxy stopped: {stats:?}");
    Ok(())
}

/// Hands commands to the voting client; a command waits for a free lane before it is submitted.
struct VotingBackend {
    requests: mpsc::Sender<VoteRequest>,
    waiting: Arc<Waiting<u64>>,
    lanes: Arc<Semaphore>,
    next_tag: AtomicU64,
}

impl Backend for VotingBackend {
    type Connection = ();

    fn connect(&self, _id: u64) {}

    async fn submit(&self, _connection: &mut (), command: Command) -> PendingReply {
        let Ok(lane) = Arc::clone(&self.lanes).acquire_owned().await else {
            return ready(Reply::Error(LOST_REPLY_ERROR.into()));
        };
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let pending = match self.waiting.wait(tag, Some(lane)) {
            Ok(pending) => pending,
            Err(refusal) => return ready(refusal),
        };
        if self
            .requests
            .send(VoteRequest { tag, command })
            .await
            .is_err()
        {
            self.waiting
                .answer(&tag, Reply::Error(LOST_REPLY_ERROR.into()));
        }
        pending
    }
}

/// Hand each voting output to the command waiting for it. An agreed reference to a large reply
/// ([`crate::large_reply`]) is fetched from `servers_resp` first, in a task of its own; it keeps
/// the command's lane until answered, so the lanes bound the fetches in progress.
async fn dispatch_outputs(
    mut outputs: mpsc::Receiver<VotingOutput>,
    waiting: Arc<Waiting<u64>>,
    servers_resp: Arc<Vec<SocketAddr>>,
) {
    while let Some(output) = outputs.recv().await {
        match output {
            VotingOutput::Answer { tag, reply } => {
                metrics::counter!("kv_proxy_answers_total").increment(1);
                let Some(reference) = LargeReplyRef::from_reply(&reply) else {
                    waiting.answer(&tag, reply);
                    continue;
                };
                metrics::counter!("kv_proxy_large_reply_fetches_total").increment(1);
                let (waiting, servers) = (Arc::clone(&waiting), Arc::clone(&servers_resp));
                tokio::spawn(async move {
                    let first = (tag % servers.len().max(1) as u64) as usize;
                    let reply = fetch_large_reply(reference, &servers, first).await;
                    waiting.answer(&tag, reply);
                });
            }
            VotingOutput::Failed { tag, .. } => {
                metrics::counter!("kv_proxy_failures_total").increment(1);
                waiting.answer(&tag, Reply::Error(NO_AGREEMENT_ERROR.into()));
            }
            VotingOutput::Busy { tag } => {
                // Lanes are taken before submitting, so this only follows a configuration mismatch.
                waiting.answer(
                    &tag,
                    Reply::Error(crate::connection::WAITING_FULL_ERROR.into()),
                );
            }
            VotingOutput::ServerLied {
                server,
                client,
                seq,
            } => {
                metrics::counter!("kv_proxy_server_lies_total", "server" => server.0.to_string())
                    .increment(1);
                tracing::warn!(
                    ?server,
                    ?client,
                    seq,
                    "a server signed a result f+1 others contradict"
                );
            }
        }
    }
    waiting.abandon_all();
}
