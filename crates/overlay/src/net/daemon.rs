//! The daemon: the service node on the runtime, a dispatcher that matches the node's outputs to
//! the requests of control connections by ticket, and the control interface's TCP listener.
//!
//! ```text
//!  control connections ──commands (bounded)──▶ dispatcher ──requests──▶ node task (runtime)
//!   (JSON lines)        ◀──reply (oneshot)───  (tickets,   ◀──outputs──  OverlayService
//!                       ◀──multicasts, anycasts─ watchers)
//!                            (bounded)
//! ```
//!
//! `remove` is two requests to the node: a get (there must be a value), then a put of the name's
//! signed tombstone (see [`super::control`]).
//!
//! The `status` reply carries: `node` (transport id), `id` (32 hex digits), `joined` (both
//! overlays joined), `dht_phase`, `multicast_phase`, `leaf_set`, `multicast_leaf_set` (sizes),
//! `leaf_set_members`, `multicast_leaf_set_members` (ids), `leaf_set_size` (L), `routing_table`, `stored_objects`, `stored_bytes`, `cached_bytes` and
//! `subscribed_topics`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use stockade_runtime::{spawn_node, NodeSetup, StaticKeypair};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use super::config::OverlayNodeConfig;
use super::control::{names, read_line_bounded, ControlRequest, LineError, CONTROL_LINE_BYTES_MAX};
use super::watchers::{TopicMessage, Watchers, SUBSCRIBER_MESSAGES_QUEUED_MAX};
use super::NetError;
use crate::dht::{StoredObject, OBJECT_BYTES_MAX};
use crate::handle::NodeHandle;
use crate::id::OverlayId;
use crate::protocol::Phase;
use crate::scribe::messages::SCRIBE_DATA_BYTES_MAX;
use crate::service::{
    AnycastOutcome, OverlayService, PutOutcome, ServiceOutput, ServiceRequest, ServiceStatus,
};

/// Control connections served at once; more are answered with an error and closed.
pub const CONTROL_CONNECTIONS_MAX: usize = 64;
/// Commands from connections waiting for the dispatcher.
pub const DISPATCH_COMMANDS_QUEUED_MAX: usize = 256;
/// Requests handed to the node and not yet answered; beyond this, requests are refused as busy.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 1024;

/// Pause after a failed accept (e.g. out of file descriptors) before accepting again.
const ACCEPT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

type Reply = oneshot::Sender<Result<ServiceOutput, String>>;

/// What a control connection asks of the dispatcher.
enum Command {
    /// Hand the request `make(ticket)` builds to the node and answer with its output.
    Ask {
        make: Box<dyn FnOnce(u64) -> ServiceRequest + Send>,
        reply: Reply,
    },
    /// Pass `topic`'s multicasts, and anycasts for one subscriber, to `messages` until it closes.
    Watch {
        topic: OverlayId,
        messages: mpsc::Sender<TopicMessage>,
    },
    /// A watcher of `topic` closed: leave the topic if it was the last.
    Unwatch { topic: OverlayId },
}

/// A running daemon.
pub struct OverlayDaemon {
    /// The node's handle on the ring.
    pub me: NodeHandle,
    /// The node's UDP address.
    pub udp: SocketAddr,
    /// The control interface's address.
    pub control: SocketAddr,
    stop: oneshot::Sender<()>,
    dispatcher: JoinHandle<Result<(), NetError>>,
    acceptor: JoinHandle<()>,
}

impl OverlayDaemon {
    /// Start the node and its control interface on the current tokio runtime.
    pub async fn start(config: OverlayNodeConfig) -> Result<OverlayDaemon, NetError> {
        let keypair = StaticKeypair::load(&config.node.key_file)?;
        let (me, certificate) = config.identity(&keypair)?;
        let service_config = config.service_config()?;
        let bootstrap = config.bootstrap();
        let control_addr = config.overlay.control;
        let listener =
            TcpListener::bind(control_addr)
                .await
                .map_err(|source| NetError::Control {
                    addr: control_addr,
                    source,
                })?;
        let control = listener.local_addr().map_err(|source| NetError::Control {
            addr: control_addr,
            source,
        })?;
        let setup = NodeSetup::from_config(&config.node)?;
        let node = spawn_node(setup, move |_store| {
            OverlayService::new(service_config, me, bootstrap, certificate)
        })
        .await?;
        let udp = node.local_addr();
        let (commands_tx, commands) = mpsc::channel(DISPATCH_COMMANDS_QUEUED_MAX);
        let (stop, stop_rx) = oneshot::channel();
        let dispatcher = tokio::spawn(dispatch(node, commands, stop_rx));
        let acceptor = tokio::spawn(accept(listener, commands_tx));
        Ok(OverlayDaemon {
            me,
            udp,
            control,
            stop,
            dispatcher,
            acceptor,
        })
    }

    /// Serve until `stop` completes (or the node fails), then stop the node.
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> Result<(), NetError> {
        let result = tokio::select! {
            () = stop => {
                let _ = self.stop.send(());
                (&mut self.dispatcher).await
            }
            ended = &mut self.dispatcher => ended,
        };
        self.acceptor.abort();
        result.map_err(|e| NetError::Node(stockade_runtime::NodeError::Task(e.to_string())))?
    }
}

/// Own the node: hand requests to it under fresh tickets, route its outputs back.
async fn dispatch(
    mut node: stockade_runtime::NodeHandle<OverlayService>,
    mut commands: mpsc::Receiver<Command>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), NetError> {
    let mut waiting: BTreeMap<u64, Reply> = BTreeMap::new();
    let mut watchers = Watchers::default();
    let mut next_ticket = 0u64;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            command = commands.recv() => match command {
                None => break,
                Some(Command::Ask { make, reply }) => {
                    if waiting.len() >= REQUESTS_IN_FLIGHT_MAX {
                        let _ = reply.send(Err(format!(
                            "{REQUESTS_IN_FLIGHT_MAX} requests already in flight on this node; retry shortly"
                        )));
                        continue;
                    }
                    let ticket = next_ticket;
                    next_ticket += 1;
                    waiting.insert(ticket, reply);
                    if node.requests.send(make(ticket)).await.is_err() {
                        break;
                    }
                }
                Some(Command::Watch { topic, messages }) => {
                    for abandoned in watchers.add(topic, messages) {
                        let leave = ServiceRequest::Unsubscribe { topic: abandoned };
                        if node.requests.send(leave).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Command::Unwatch { topic }) => {
                    // Leave at once, so that anycasts stop choosing a node nobody listens on.
                    if watchers.forget_closed(topic)
                        && node.requests.send(ServiceRequest::Unsubscribe { topic }).await.is_err()
                    {
                        break;
                    }
                }
            },
            output = node.outputs.recv() => match output {
                None => break,
                Some(ServiceOutput::Received { topic, data }) => {
                    if watchers.deliver(topic, &data) {
                        let leave = ServiceRequest::Unsubscribe { topic };
                        if node.requests.send(leave).await.is_err() {
                            break;
                        }
                    }
                }
                Some(ServiceOutput::AnycastReceived { topic, data }) => {
                    let hand_off = watchers.deliver_one(topic, data);
                    if !hand_off.delivered {
                        tracing::warn!(?topic, "an anycast chose this node but no subscribed connection could take it (closed, or {SUBSCRIBER_MESSAGES_QUEUED_MAX} messages behind); it is lost");
                    }
                    if hand_off.abandoned {
                        let leave = ServiceRequest::Unsubscribe { topic };
                        if node.requests.send(leave).await.is_err() {
                            break;
                        }
                    }
                }
                Some(output) => {
                    if let Some(reply) = ticket_of(&output).and_then(|t| waiting.remove(&t)) {
                        let _ = reply.send(Ok(output));
                    }
                }
            },
        }
    }
    for (_, reply) in std::mem::take(&mut waiting) {
        let _ = reply.send(Err("the node is stopping".into()));
    }
    node.shutdown().await?;
    Ok(())
}

fn ticket_of(output: &ServiceOutput) -> Option<u64> {
    match output {
        ServiceOutput::Put { ticket, .. }
        | ServiceOutput::Get { ticket, .. }
        | ServiceOutput::Accepted { ticket, .. }
        | ServiceOutput::Anycast { ticket, .. }
        | ServiceOutput::Status { ticket, .. } => Some(*ticket),
        ServiceOutput::Received { .. } | ServiceOutput::AnycastReceived { .. } => None,
    }
}

/// Accept control connections, at most [`CONTROL_CONNECTIONS_MAX`] at once.
async fn accept(listener: TcpListener, commands: mpsc::Sender<Command>) {
    let slots = Arc::new(Semaphore::new(CONTROL_CONNECTIONS_MAX));
    let versions = Arc::new(VersionClock::default());
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, typically: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a control connection failed");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            let busy = error_reply(format!(
                "{CONTROL_CONNECTIONS_MAX} control connections already open; close one and retry"
            ));
            let _ = stream.write_all(busy.as_bytes()).await;
            continue;
        };
        let commands = commands.clone();
        let versions = Arc::clone(&versions);
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, commands, versions).await {
                tracing::debug!(error = %e, "control connection ended");
            }
            drop(slot);
        });
    }
}

/// Versions for named puts: the wall clock in microseconds, strictly increasing on this daemon
/// (a newer version replaces an older one in the DHT). Puts of one name through different
/// daemons are ordered by their clocks; in milliseconds, one put completing and the next starting
/// through another daemon within the same millisecond got equal versions, and the second was
/// refused as not newer (a put's round trips on loopback take well under a millisecond).
#[derive(Default)]
struct VersionClock {
    last: AtomicU64,
}

impl VersionClock {
    fn next(&self) -> u64 {
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = now_us.max(last.saturating_add(1));
            match self
                .last
                .compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

fn error_reply(error: String) -> String {
    format!("{}\n", json!({"ok": false, "error": error}))
}

async fn serve_connection(
    stream: TcpStream,
    commands: mpsc::Sender<Command>,
    versions: Arc<VersionClock>,
) -> Result<(), LineError> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let line = match read_line_bounded(&mut reader, CONTROL_LINE_BYTES_MAX).await {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            Err(e) => {
                write
                    .write_all(error_reply(e.to_string()).as_bytes())
                    .await?;
                return Err(e);
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let request = match serde_json::from_str::<ControlRequest>(&line) {
            Ok(request) => request,
            Err(e) => {
                let problem = format!(
                    "not a control request ({e}); send one JSON object per line with \"op\": put, get, remove, publish, anycast, subscribe or status"
                );
                write.write_all(error_reply(problem).as_bytes()).await?;
                continue;
            }
        };
        if let ControlRequest::Subscribe { topic } = request {
            return stream_topic(reader, write, &commands, topic).await;
        }
        let reply = answer(request, &commands, &versions).await;
        write
            .write_all(
                format!(
                    "{}\n",
                    reply.unwrap_or_else(|e| json!({"ok": false, "error": e}))
                )
                .as_bytes(),
            )
            .await?;
    }
}

/// Hand one request to the dispatcher and wait for its output.
async fn ask(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(u64) -> ServiceRequest + Send + 'static,
) -> Result<ServiceOutput, String> {
    let (reply, answer) = oneshot::channel();
    let command = Command::Ask {
        make: Box::new(make),
        reply,
    };
    commands
        .send(command)
        .await
        .map_err(|_| "the node stopped".to_string())?;
    answer.await.map_err(|_| "the node stopped".to_string())?
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > names::NAME_BYTES_MAX {
        return Err(format!(
            "a {what} must have 1 to {} bytes, this one has {}",
            names::NAME_BYTES_MAX,
            name.len()
        ));
    }
    Ok(())
}

fn check_size(what: &str, bytes: usize, max: usize) -> Result<(), String> {
    if bytes > max {
        return Err(format!("the {what} has {bytes} bytes; the limit is {max}"));
    }
    Ok(())
}

/// The topic id and data of a `publish` or `anycast`, within their bounds.
fn topic_message(topic: &str, message: String) -> Result<(OverlayId, Vec<u8>), String> {
    check_name("topic", topic)?;
    check_size("message", message.len(), SCRIBE_DATA_BYTES_MAX)?;
    Ok((names::topic_id(topic), message.into_bytes()))
}

/// Answer every request but `subscribe`.
async fn answer(
    request: ControlRequest,
    commands: &mpsc::Sender<Command>,
    versions: &VersionClock,
) -> Result<Value, String> {
    match request {
        ControlRequest::Put { key, value } => {
            check_name("key", &key)?;
            check_size("value", value.len(), OBJECT_BYTES_MAX)?;
            let object = names::named_object(&key, versions.next(), value.into_bytes());
            let id = object.key;
            let (replicas, complete) = put_object(commands, object).await?;
            Ok(
                json!({"ok": true, "key": key, "id": id_hex(id), "replicas": replicas, "complete": complete}),
            )
        }
        ControlRequest::Get { key } => {
            check_name("key", &key)?;
            let id = names::object_key(&key);
            match ask(commands, move |ticket| ServiceRequest::Get {
                ticket,
                key: id,
            })
            .await?
            {
                ServiceOutput::Get {
                    object: Some(object),
                    ..
                } if !object.is_tombstone() => Ok(json!({
                    "ok": true, "key": key, "found": true,
                    "value": String::from_utf8_lossy(&object.data),
                })),
                ServiceOutput::Get { .. } => Ok(json!({"ok": true, "key": key, "found": false})),
                other => Err(format!("unexpected answer {other:?}")),
            }
        }
        ControlRequest::Remove { key } => remove(key, commands, versions).await,
        ControlRequest::Publish { topic, message } => {
            let (id, data) = topic_message(&topic, message)?;
            let make = move |ticket| ServiceRequest::Publish {
                ticket,
                topic: id,
                data,
            };
            match ask(commands, make).await? {
                ServiceOutput::Accepted { result: Ok(()), .. } => {
                    Ok(json!({"ok": true, "topic": topic}))
                }
                ServiceOutput::Accepted { result: Err(e), .. } => Err(e.to_string()),
                other => Err(format!("unexpected answer {other:?}")),
            }
        }
        ControlRequest::Anycast { topic, message } => {
            let (id, data) = topic_message(&topic, message)?;
            let make = move |ticket| ServiceRequest::Anycast {
                ticket,
                topic: id,
                data,
            };
            match ask(commands, make).await? {
                ServiceOutput::Anycast {
                    outcome: AnycastOutcome::Accepted { by },
                    ..
                } => Ok(json!({"ok": true, "topic": topic, "accepted": true, "by": id_hex(by.id)})),
                ServiceOutput::Anycast {
                    outcome: AnycastOutcome::NoSubscriber,
                    ..
                } => Ok(json!({"ok": true, "topic": topic, "accepted": false})),
                ServiceOutput::Anycast {
                    outcome: AnycastOutcome::Failed(e),
                    ..
                } => Err(e.to_string()),
                other => Err(format!("unexpected answer {other:?}")),
            }
        }
        ControlRequest::Status => {
            match ask(commands, |ticket| ServiceRequest::Status { ticket }).await? {
                ServiceOutput::Status { status, .. } => Ok(status_json(&status)),
                other => Err(format!("unexpected answer {other:?}")),
            }
        }
        ControlRequest::Subscribe { .. } => Err("subscribe is answered by stream_topic".into()),
    }
}

/// `remove`: read the value under `key`, then store the name's signed tombstone over it.
async fn remove(
    key: String,
    commands: &mpsc::Sender<Command>,
    versions: &VersionClock,
) -> Result<Value, String> {
    check_name("key", &key)?;
    let id = names::object_key(&key);
    let current: StoredObject = match ask(commands, move |ticket| ServiceRequest::Get {
        ticket,
        key: id,
    })
    .await?
    {
        ServiceOutput::Get {
            object: Some(object),
            ..
        } if !object.is_tombstone() => object,
        ServiceOutput::Get { .. } => {
            return Err(format!(
                "no value under {key:?} (never stored, already removed, or its replicas did not answer in time): nothing to remove"
            ))
        }
        other => return Err(format!("unexpected answer {other:?}")),
    };
    let version = names::removal_version(&current, versions.next());
    let tombstone = names::named_tombstone(&key, version);
    let (replicas, complete) = put_object(commands, tombstone)
        .await
        .map_err(|e| format!("removing {key:?}: {e}"))?;
    Ok(json!({"ok": true, "key": key, "id": id_hex(id), "removed": replicas, "complete": complete}))
}

/// Store `object`; the replicas that acknowledged, and whether all k did.
async fn put_object(
    commands: &mpsc::Sender<Command>,
    object: StoredObject,
) -> Result<(usize, bool), String> {
    match ask(commands, move |ticket| ServiceRequest::Put {
        ticket,
        object,
    })
    .await?
    {
        ServiceOutput::Put {
            outcome: PutOutcome::Stored { replicas, complete },
            ..
        } => Ok((replicas, complete)),
        ServiceOutput::Put {
            outcome: PutOutcome::Failed(e),
            ..
        } => Err(e.to_string()),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// Subscribe, then write each multicast of `topic`, and each anycast this connection takes, as a
/// line until the client closes; then tell the dispatcher, so the node leaves the topic at once
/// when this was its last subscriber.
async fn stream_topic(
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    commands: &mpsc::Sender<Command>,
    topic: String,
) -> Result<(), LineError> {
    if let Err(e) = check_name("topic", &topic) {
        write.write_all(error_reply(e).as_bytes()).await?;
        return Ok(());
    }
    let id = names::topic_id(&topic);
    let (messages_tx, messages) = mpsc::channel(SUBSCRIBER_MESSAGES_QUEUED_MAX);
    let watch = Command::Watch {
        topic: id,
        messages: messages_tx,
    };
    if commands.send(watch).await.is_err() {
        write
            .write_all(error_reply("the node stopped".into()).as_bytes())
            .await?;
        return Ok(());
    }
    let accepted = ask(commands, move |ticket| ServiceRequest::Subscribe {
        ticket,
        topic: id,
    })
    .await;
    let reply = match accepted {
        Ok(ServiceOutput::Accepted { result: Ok(()), .. }) => json!({"ok": true, "topic": topic}),
        Ok(ServiceOutput::Accepted { result: Err(e), .. }) => {
            json!({"ok": false, "error": e.to_string()})
        }
        Ok(other) => json!({"ok": false, "error": format!("unexpected answer {other:?}")}),
        Err(e) => json!({"ok": false, "error": e}),
    };
    write.write_all(format!("{reply}\n").as_bytes()).await?;
    if reply["ok"] != json!(true) {
        return Ok(());
    }
    let result = pass_messages(reader, write, messages, &topic).await;
    // `messages` is gone with `pass_messages`: the dispatcher sees this watcher closed.
    let _ = commands.send(Command::Unwatch { topic: id }).await;
    result
}

/// Write each message as a line until the client or the dispatcher closes.
async fn pass_messages(
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut messages: mpsc::Receiver<TopicMessage>,
    topic: &str,
) -> Result<(), LineError> {
    let mut ignored = Vec::new();
    loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(TopicMessage { data, anycast }) = message else { return Ok(()) };
                let text = String::from_utf8_lossy(&data);
                let line = if anycast {
                    json!({"topic": topic, "message": text, "anycast": true})
                } else {
                    json!({"topic": topic, "message": text})
                };
                write.write_all(format!("{line}\n").as_bytes()).await?;
            }
            // Anything the client sends now is ignored; its closing ends the subscription.
            read = tokio::io::AsyncReadExt::read_buf(&mut reader, &mut ignored) => {
                ignored.clear();
                if read? == 0 {
                    return Ok(());
                }
            }
        }
    }
}

fn id_hex(id: OverlayId) -> String {
    format!("{:032x}", id.0)
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Joining { .. } => "joining",
        Phase::Joined => "joined",
        Phase::JoinFailed => "join_failed",
        Phase::Left => "left",
    }
}

/// The `status` reply.
pub fn status_json(status: &ServiceStatus) -> Value {
    json!({
        "ok": true,
        "node": status.me.addr.0,
        "id": id_hex(status.me.id),
        "joined": status.dht_phase == Phase::Joined && status.multicast_phase == Phase::Joined,
        "dht_phase": phase_name(status.dht_phase),
        "multicast_phase": phase_name(status.multicast_phase),
        "leaf_set": status.dht_leaf_set_len,
        "multicast_leaf_set": status.multicast_leaf_set_len,
        "leaf_set_members": status.dht_leaf_set.iter().map(|id| id_hex(*id)).collect::<Vec<_>>(),
        "multicast_leaf_set_members": status.multicast_leaf_set.iter().map(|id| id_hex(*id)).collect::<Vec<_>>(),
        "leaf_set_size": status.leaf_set_size,
        "routing_table": status.routing_table_len,
        "stored_objects": status.stored_objects,
        "stored_bytes": status.stored_bytes,
        "cached_bytes": status.cached_bytes,
        "subscribed_topics": status.subscribed_topics,
    })
}
