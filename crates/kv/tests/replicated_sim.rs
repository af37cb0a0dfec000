//! The replicated service in the deterministic simulator: four Prime servers replicating the
//! key-value state (f = 1) and one voting client, with one server lying in every reply, a server
//! that crashes and recovers from its durable store (and then serves its own clients), and
//! replies lost on the way to the voting client.

use std::time::Duration;

use stockade_core::{Context, MemStore, NodeId, PersistToken, Protocol};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;
use stockade_kv::replica::KvReplica;
use stockade_kv::replicated::ReplicatedKv;
use stockade_kv::voting::{VoteRequest, VotingClient, VotingConfig, VotingOutput, VotingTimer};
use stockade_kv::{Command, Limits, Reply};
use stockade_replication::app::{Application, ExecutedUpdate, RestoreError};
use stockade_replication::{
    ClientId, Digest, Ed25519MerkleAuth, Membership, ParticipantId, Prime, PrimeConfig,
    PrimeMessage, PrimeOutput, PrimeTimer, Quorums, SimulationAuths, Update,
};
use stockade_sim::{Byzantine, LinkSpec, SimConfig, Topology, World};

const SERVERS: u32 = 4;
const CLIENT: NodeId = NodeId(4);
const SEED: u64 = 21;

/// A server that executes correctly (its state and digests stay in step) but signs a forged
/// result in every reply: the voting client must outvote it.
struct LyingKv(ReplicatedKv);

impl Application for LyingKv {
    fn execute(&mut self, updates: &[ExecutedUpdate<'_>], timestamp_ms: u64) -> Vec<Vec<u8>> {
        let honest = self.0.execute(updates, timestamp_ms);
        let forged = stockade_core::Wire::to_bytes(&Reply::bulk("forged"));
        honest.iter().map(|_| forged.clone()).collect()
    }
    fn checkpoint(&self) -> Vec<u8> {
        self.0.checkpoint()
    }
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), RestoreError> {
        self.0.restore(snapshot)
    }
    fn digest(&self) -> Digest {
        self.0.digest()
    }
}

enum SimNode {
    Server(KvReplica),
    Liar(Box<Prime<LyingKv>>),
    Client(VotingClient),
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum SimTimer {
    Prime(PrimeTimer),
    Vote(VotingTimer),
}

/// What the harness asks a node to do: the voting client votes; a server admits an update of
/// one of its own clients (as its RESP port does).
#[derive(Debug)]
enum SimRequest {
    Vote(VoteRequest),
    Local(Update),
}

#[derive(Debug)]
enum SimOutput {
    Prime(PrimeOutput),
    Vote(VotingOutput),
}

/// A client's authenticator: it only checks the servers' replies.
fn client_auth(keys: &SimulationKeys, me: u32) -> Box<Ed25519MerkleAuth> {
    Box::new(Ed25519MerkleAuth::new(
        keys.signer(me),
        (0..SERVERS).map(|i| keys.verifier(i)).collect(),
    ))
}

/// A server's authenticator, with its share of the servers' threshold key.
fn auth(keys: &SimulationKeys, me: u32) -> Box<Ed25519MerkleAuth> {
    let dealt = SimulationAuths::deal(keys, Quorums::new(1, 0)).expect("dealt");
    Box::new(dealt.auth(ParticipantId(me as u16)))
}

fn membership() -> Membership {
    Membership::new((0..SERVERS).map(NodeId).collect()).expect("membership")
}

fn build(id: NodeId, store: &MemStore, liar: Option<u32>, cfg: PrimeConfig) -> SimNode {
    let keys = SimulationKeys::new(CryptoMode::SimFast, SEED);
    if id == CLIENT {
        let mut voting = VotingConfig::new((0..SERVERS).map(NodeId).collect(), 1, 1_000, 1);
        voting.retry_timeout = Duration::from_millis(300);
        return SimNode::Client(VotingClient::new(voting, client_auth(&keys, id.0)));
    }
    let me = ParticipantId(id.0 as u16);
    if liar == Some(id.0) {
        let app = LyingKv(ReplicatedKv::new(Limits::DEFAULT));
        let prime = Prime::new(cfg, membership(), me, auth(&keys, id.0), app).expect("prime");
        return SimNode::Liar(Box::new(prime));
    }
    let replica = KvReplica::recover(
        cfg,
        membership(),
        me,
        auth(&keys, id.0),
        store,
        Limits::DEFAULT,
    )
    .expect("replica");
    SimNode::Server(replica)
}

/// Run `call` on a child protocol and hand its outputs on, wrapped.
fn run_child<C: Protocol<Message = PrimeMessage>>(
    cx: &mut Context<'_, SimNode>,
    wrap_timer: impl Fn(C::Timer) -> SimTimer,
    wrap_output: impl Fn(C::Output) -> SimOutput,
    call: impl FnOnce(&mut Context<'_, C>),
) {
    for output in cx.child(|m| m, wrap_timer, call) {
        cx.deliver(wrap_output(output));
    }
}

macro_rules! dispatch {
    ($self:ident, $cx:ident, |$p:ident, $pcx:ident| $prime_call:expr, |$v:ident, $vcx:ident| $vote_call:expr) => {
        match $self {
            SimNode::Server($p) => {
                run_child($cx, SimTimer::Prime, SimOutput::Prime, |$pcx| $prime_call)
            }
            SimNode::Liar($p) => {
                run_child($cx, SimTimer::Prime, SimOutput::Prime, |$pcx| $prime_call)
            }
            SimNode::Client($v) => {
                run_child($cx, SimTimer::Vote, SimOutput::Vote, |$vcx| $vote_call)
            }
        }
    };
}

impl Protocol for SimNode {
    type Message = PrimeMessage;
    type Timer = SimTimer;
    type Request = SimRequest;
    type Output = SimOutput;

    fn on_start(&mut self, cx: &mut Context<'_, Self>) {
        dispatch!(self, cx, |p, c| p.on_start(c), |v, c| v.on_start(c));
    }

    fn on_message(&mut self, cx: &mut Context<'_, Self>, from: NodeId, message: PrimeMessage) {
        dispatch!(self, cx, |p, c| p.on_message(c, from, message), |v, c| v
            .on_message(c, from, message));
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Self>, timer: SimTimer) {
        match (self, timer) {
            (SimNode::Server(p), SimTimer::Prime(t)) => {
                run_child(cx, SimTimer::Prime, SimOutput::Prime, |c| p.on_timer(c, t))
            }
            (SimNode::Liar(p), SimTimer::Prime(t)) => {
                run_child(cx, SimTimer::Prime, SimOutput::Prime, |c| p.on_timer(c, t))
            }
            (SimNode::Client(v), SimTimer::Vote(t)) => {
                run_child(cx, SimTimer::Vote, SimOutput::Vote, |c| v.on_timer(c, t))
            }
            _ => {}
        }
    }

    fn on_request(&mut self, cx: &mut Context<'_, Self>, request: SimRequest) {
        match (self, request) {
            (SimNode::Client(v), SimRequest::Vote(request)) => {
                run_child(cx, SimTimer::Vote, SimOutput::Vote, |c| {
                    v.on_request(c, request)
                })
            }
            (SimNode::Server(p), SimRequest::Local(update)) => {
                run_child(cx, SimTimer::Prime, SimOutput::Prime, |c| {
                    p.on_request(c, update.into())
                })
            }
            _ => {}
        }
    }

    fn on_persisted(&mut self, cx: &mut Context<'_, Self>, token: PersistToken) {
        if let SimNode::Server(p) = self {
            run_child(cx, SimTimer::Prime, SimOutput::Prime, |c| {
                p.on_persisted(c, token)
            });
        }
    }

    fn check_invariants(&self) -> Result<(), stockade_core::InvariantViolation> {
        match self {
            SimNode::Server(p) => p.check_invariants(),
            SimNode::Liar(p) => p.check_invariants(),
            SimNode::Client(v) => v.check_invariants(),
        }
    }
}

fn world(name: &str, liar: Option<u32>) -> World<SimNode> {
    world_with(name, liar, PrimeConfig::new(1, 0))
}

fn world_with(name: &str, liar: Option<u32>, cfg: PrimeConfig) -> World<SimNode> {
    let topology = Topology::full_mesh(SERVERS + 1, LinkSpec::ideal(Duration::from_millis(2)));
    World::new(SimConfig::new(name, SEED), topology, move |id, store| {
        build(id, store, liar, cfg.clone())
    })
    .expect("world")
}

fn command(line: &str) -> Command {
    let args: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
    Command::parse(&args, &Limits::DEFAULT).expect("valid")
}

/// Submit `lines` at `at` (tags from `first_tag`), run for `run_for`, return the client's outputs.
fn submit_and_run(
    world: &mut World<SimNode>,
    first_tag: u64,
    lines: &[String],
    run_for: Duration,
) -> Vec<VotingOutput> {
    let at = world.now();
    for (i, line) in lines.iter().enumerate() {
        let request = VoteRequest {
            tag: first_tag + i as u64,
            command: command(line),
        };
        world.request_at(at, CLIENT, SimRequest::Vote(request));
    }
    world.run_for(run_for).expect("run");
    world
        .take_outputs()
        .into_iter()
        .filter_map(|d| match d.output {
            SimOutput::Vote(v) => Some(v),
            SimOutput::Prime(_) => None,
        })
        .collect()
}

fn answers(outputs: &[VotingOutput]) -> Vec<(u64, Reply)> {
    let mut answers: Vec<(u64, Reply)> = outputs
        .iter()
        .filter_map(|o| match o {
            VotingOutput::Answer { tag, reply } => Some((*tag, reply.clone())),
            _ => None,
        })
        .collect();
    answers.sort_by_key(|(tag, _)| *tag);
    answers
}

fn client_stats(world: &World<SimNode>) -> stockade_kv::voting::VotingStats {
    match world.protocol(CLIENT) {
        Some(SimNode::Client(v)) => v.stats().clone(),
        _ => panic!("node 4 is the client"),
    }
}

fn server_state_digest(world: &World<SimNode>, id: u32) -> (u64, [u8; 32]) {
    match world.protocol(NodeId(id)) {
        Some(SimNode::Server(p)) => (p.prime().executed_seq(), p.prime().app().state().digest()),
        _ => panic!("node {id} is an honest server"),
    }
}

#[test]
fn the_voting_client_outvotes_a_lying_server() {
    let mut world = world("kv-lying-server", Some(3));
    let sets: Vec<String> = (0..10).map(|i| format!("SET k{i} v{i}")).collect();
    let outputs = submit_and_run(&mut world, 0, &sets, Duration::from_secs(2));
    let set_answers = answers(&outputs);
    assert_eq!(set_answers.len(), 10, "{outputs:?}");
    assert!(set_answers.iter().all(|(_, r)| *r == Reply::ok()));

    let gets: Vec<String> = (0..10).map(|i| format!("GET k{i}")).collect();
    let outputs = submit_and_run(&mut world, 100, &gets, Duration::from_secs(2));
    let get_answers = answers(&outputs);
    let expected: Vec<(u64, Reply)> = (0..10)
        .map(|i| (100 + i, Reply::bulk(format!("v{i}"))))
        .collect();
    assert_eq!(get_answers, expected, "the forged value never wins");

    let stats = client_stats(&world);
    assert_eq!(stats.answered, 20);
    assert_eq!(stats.lies, 20, "every forged reply was caught: {stats:?}");
    assert!(outputs.iter().all(|o| !matches!(o,
        VotingOutput::ServerLied { server, .. } if *server != ParticipantId(3))));
    assert_eq!(stats.failed, 0);
}

#[test]
fn a_crashed_server_recovers_from_its_store_and_catches_up() {
    let mut world = world("kv-crash-recover", None);
    let first: Vec<String> = (0..10).map(|i| format!("SET a{i} {i}")).collect();
    assert_eq!(
        answers(&submit_and_run(
            &mut world,
            0,
            &first,
            Duration::from_secs(2)
        ))
        .len(),
        10
    );
    world.crash(NodeId(2)).expect("crash");
    let second: Vec<String> = (0..10).map(|i| format!("INCR a{i}")).collect();
    let outputs = submit_and_run(&mut world, 100, &second, Duration::from_secs(2));
    let expected: Vec<(u64, Reply)> = (0..10)
        .map(|i| (100 + i, Reply::Integer(i as i64 + 1)))
        .collect();
    assert_eq!(answers(&outputs), expected, "three servers keep answering");

    world.restart(NodeId(2)).expect("restart");
    let recovered_slot = match world.protocol(NodeId(2)) {
        Some(SimNode::Server(p)) => p.prime().app().executed_slot(),
        _ => panic!("server"),
    };
    assert!(
        recovered_slot > 0,
        "the store held the slots executed before the crash"
    );
    world.run_for(Duration::from_secs(3)).expect("run");
    let replayed_slots = world
        .take_outputs()
        .iter()
        .filter(|d| d.node == NodeId(2))
        .filter(|d| matches!(d.output, SimOutput::Prime(PrimeOutput::Executed { .. })))
        .count() as u64;
    assert!(
        replayed_slots >= recovered_slot,
        "slots re-executed through catch-up"
    );
    let (slot_0, digest_0) = server_state_digest(&world, 0);
    let (slot_2, digest_2) = server_state_digest(&world, 2);
    assert_eq!(slot_2, slot_0, "the restarted server caught up");
    assert_eq!(digest_2, digest_0, "with the same state");
    let skipped = match world.protocol(NodeId(2)) {
        Some(SimNode::Server(p)) => p.prime().app().skipped_updates(),
        _ => panic!("server"),
    };
    assert_eq!(
        skipped, 10,
        "the slots recovered from the store were not re-applied"
    );
}

/// An update of one of server 2's own clients (what its RESP port submits).
fn local_update(incarnation: u64, seq: u64, line: &str) -> Update {
    Update {
        client: ClientId(1 << 40),
        incarnation,
        seq,
        reply_to: None,
        op: stockade_core::Wire::to_bytes(&command(line)),
    }
}

/// Submit `lines` to server `id` as its own client's updates; run; return the local replies (by
/// sequence number) and every misbehaviour any server reported.
fn submit_locally(
    world: &mut World<SimNode>,
    id: u32,
    incarnation: u64,
    lines: &[String],
    run_for: Duration,
) -> (Vec<(u64, Reply)>, Vec<ParticipantId>) {
    let at = world.now();
    for (i, line) in lines.iter().enumerate() {
        let update = local_update(incarnation, i as u64 + 1, line);
        world.request_at(at, NodeId(id), SimRequest::Local(update));
    }
    world.run_for(run_for).expect("run");
    let mut replies = Vec::new();
    let mut accused = Vec::new();
    for delivery in world.take_outputs() {
        match delivery.output {
            // Catch-up re-executes the previous incarnation's updates (with empty results for
            // the slots the store held): those replies are for clients that are gone.
            SimOutput::Prime(PrimeOutput::Reply(reply))
                if delivery.node == NodeId(id) && reply.incarnation == incarnation =>
            {
                let answer = <Reply as stockade_core::Wire>::from_bytes(
                    &reply.result,
                    stockade_core::DecodeLimits::MESSAGE,
                )
                .expect("a reply");
                replies.push((reply.seq, answer));
            }
            SimOutput::Prime(PrimeOutput::Misbehaviour { participant, .. }) => {
                accused.push(participant)
            }
            _ => {}
        }
    }
    replies.sort_by_key(|(seq, _)| *seq);
    (replies, accused)
}

#[test]
fn a_restarted_server_serves_its_own_clients_again() {
    let mut world = world("kv-restart-own-clients", None);
    // Server 2 originates PO-REQUESTs for its own clients before the crash.
    let before: Vec<String> = (0..5).map(|i| format!("SET own{i} before")).collect();
    let (replies, accused) = submit_locally(&mut world, 2, 1, &before, Duration::from_secs(2));
    assert_eq!(replies.len(), 5, "{replies:?}");
    assert!(replies.iter().all(|(_, r)| *r == Reply::ok()));
    assert!(accused.is_empty());

    world.crash(NodeId(2)).expect("crash");
    let during: Vec<String> = (0..5).map(|i| format!("SET during{i} x")).collect();
    assert_eq!(
        answers(&submit_and_run(
            &mut world,
            0,
            &during,
            Duration::from_secs(2)
        ))
        .len(),
        5,
        "three servers keep answering"
    );

    world.restart(NodeId(2)).expect("restart");
    match world.protocol(NodeId(2)) {
        Some(SimNode::Server(p)) => assert!(
            p.prime().app().executed_slot() > 0,
            "the key-value state came back from the store"
        ),
        _ => panic!("server"),
    }
    // Its own clients (a new incarnation, as the RESP port uses) write at once.
    let after: Vec<String> = (0..5).map(|i| format!("SET own{i} after")).collect();
    let (replies, accused) = submit_locally(&mut world, 2, 2, &after, Duration::from_secs(3));
    let expected: Vec<(u64, Reply)> = (1..=5).map(|seq| (seq, Reply::ok())).collect();
    assert_eq!(
        replies, expected,
        "the restarted server's own writes succeed"
    );
    assert!(
        accused.is_empty(),
        "no server saw a reused PO-REQUEST number (equivocation): {accused:?}"
    );

    // The others executed them too: a voting read sees the new values and the states agree.
    let gets: Vec<String> = (0..5).map(|i| format!("GET own{i}")).collect();
    let outputs = submit_and_run(&mut world, 100, &gets, Duration::from_secs(2));
    let expected: Vec<(u64, Reply)> = (0..5).map(|i| (100 + i, Reply::bulk("after"))).collect();
    assert_eq!(answers(&outputs), expected);
    let (slot_0, digest_0) = server_state_digest(&world, 0);
    let (slot_2, digest_2) = server_state_digest(&world, 2);
    assert_eq!(
        (slot_2, digest_2),
        (slot_0, digest_0),
        "server 2 is in step"
    );
}

#[test]
fn a_lost_reply_is_retried_applies_once_and_the_retry_gets_the_cached_reply() {
    let mut world = world("kv-lost-reply", None);
    // Every reply of the first attempt is lost: the client hears nothing until after its first
    // retry deadline (300 ms).
    let start = world.now();
    world
        .set_adversary(
            CLIENT,
            Byzantine::new()
                .deaf_to((0..SERVERS).map(NodeId))
                .active_between(start, start + Duration::from_millis(250)),
        )
        .expect("adversary");
    let outputs = submit_and_run(
        &mut world,
        0,
        &["INCR counter".to_string()],
        Duration::from_secs(3),
    );
    let stats = client_stats(&world);
    assert!(stats.resends >= 1, "the client re-sent: {stats:?}");
    // Prime keeps the last reply per client and answers a re-sent, already executed update
    // with it (PRIME.md step 11): the re-send gets the original result, not silence.
    assert_eq!(
        answers(&outputs),
        vec![(0, Reply::Integer(1))],
        "the re-send is answered with the cached reply"
    );
    assert_eq!(stats.failed, 0, "{stats:?}");
    let outputs = submit_and_run(
        &mut world,
        10,
        &["GET counter".to_string()],
        Duration::from_secs(2),
    );
    assert_eq!(
        answers(&outputs),
        vec![(10, Reply::bulk("1"))],
        "executed once"
    );
}

#[test]
fn a_jump_restores_the_key_value_state_and_a_later_restart_recovers_it() {
    // Short retention, so that peers forget what the crashed server missed and must JUMP it to a
    // checkpoint (paper 004, section 4.5: state transfer).
    let mut cfg = PrimeConfig::new(1, 0);
    cfg.checkpoint_interval = 5;
    cfg.retained_slots_max = 10;
    cfg.po_window_max = 8;
    let mut world = world_with("kv-jump", None, cfg);
    let first: Vec<String> = (0..10).map(|i| format!("SET early{i} {i}")).collect();
    assert_eq!(
        answers(&submit_and_run(
            &mut world,
            0,
            &first,
            Duration::from_secs(1)
        ))
        .len(),
        10
    );
    world.crash(NodeId(2)).expect("crash");
    // Many slots while server 2 is down: one command per round, each its own slot.
    for round in 0..40u64 {
        let line = vec![format!("SET late{round} {round}")];
        let outputs = submit_and_run(&mut world, 100 + round, &line, Duration::from_millis(150));
        assert_eq!(answers(&outputs).len(), 1, "round {round}");
    }
    world.restart(NodeId(2)).expect("restart");
    world.run_for(Duration::from_secs(3)).expect("run");
    let jumped_to: Vec<u64> = world
        .take_outputs()
        .iter()
        .filter(|d| d.node == NodeId(2))
        .filter_map(|d| match d.output {
            SimOutput::Prime(PrimeOutput::Jumped { global_seq, .. }) => Some(global_seq),
            _ => None,
        })
        .collect();
    assert!(
        !jumped_to.is_empty(),
        "server 2 caught up by state transfer"
    );
    let (slot_0, digest_0) = server_state_digest(&world, 0);
    assert_eq!(
        server_state_digest(&world, 2),
        (slot_0, digest_0),
        "the jump restored the key-value state"
    );

    // What the jump (and the slots after it) persisted is what a later restart recovers.
    world.crash(NodeId(2)).expect("crash again");
    world.restart(NodeId(2)).expect("restart again");
    match world.protocol(NodeId(2)) {
        Some(SimNode::Server(p)) => {
            let app = p.prime().app();
            assert_eq!(
                app.executed_slot(),
                slot_0,
                "the store held the jumped state"
            );
            assert_eq!(app.state().digest(), digest_0, "every key, early and late");
        }
        _ => panic!("server"),
    }
}
