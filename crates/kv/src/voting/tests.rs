//! Exact-effect tests of the voting client: each handler is called with a hand-built `Context`
//! and its effects are compared with what the rules require.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use stockade_core::{Effect, Time};
use stockade_crypto::scheme::SimulationKeys;
use stockade_crypto::CryptoMode;
use stockade_replication::auth::body_digest;
use stockade_replication::Ed25519MerkleAuth;

use super::*;
use crate::limits::Limits;

const ME: NodeId = NodeId(10);
const SERVERS: u32 = 4;

fn keys() -> SimulationKeys {
    SimulationKeys::new(CryptoMode::SimFast, 3)
}

fn auth_for(keys: &SimulationKeys, me: u32) -> Ed25519MerkleAuth {
    Ed25519MerkleAuth::new(
        keys.signer(me),
        (0..SERVERS).map(|i| keys.verifier(i)).collect(),
    )
}

fn config() -> VotingConfig {
    let mut cfg = VotingConfig::new((0..SERVERS).map(NodeId).collect(), 1, 100, 7);
    cfg.lanes = 2;
    cfg.retries_max = 2;
    cfg
}

fn client() -> VotingClient {
    // The client's own signer is never used; node 0's key stands in.
    VotingClient::new(config(), Box::new(auth_for(&keys(), 0)))
}

fn call(
    client: &mut VotingClient,
    f: impl FnOnce(&mut VotingClient, &mut Context<'_, VotingClient>),
) -> Vec<Effect<VotingClient>> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tokens = 0;
    let mut cx = Context::new(Time::from_millis(5), ME, &mut rng, &mut tokens, Vec::new());
    f(client, &mut cx);
    cx.into_effects()
}

fn command(line: &str) -> Command {
    let args: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
    Command::parse(&args, &Limits::DEFAULT).expect("valid")
}

fn request(client: &mut VotingClient, tag: u64, line: &str) -> Vec<Effect<VotingClient>> {
    let command = command(line);
    call(client, |c, cx| {
        c.on_request(cx, VoteRequest { tag, command })
    })
}

fn signed_reply(
    server: u32,
    client: u64,
    seq: u64,
    global_seq: u64,
    reply: &Reply,
) -> PrimeMessage {
    let body = PrimeReply {
        client: ClientId(client),
        incarnation: 7,
        seq,
        global_seq,
        result: reply.to_bytes(),
    };
    let signer = ParticipantId(server as u16);
    let tag = auth_for(&keys(), server)
        .sign_batch(&[body_digest(signer, &body)])
        .remove(0);
    PrimeMessage::Reply(Signed { signer, body, tag })
}

fn deliver(client: &mut VotingClient, message: PrimeMessage) -> Vec<Effect<VotingClient>> {
    call(client, |c, cx| c.on_message(cx, NodeId(0), message))
}

fn outputs(effects: &[Effect<VotingClient>]) -> Vec<VotingOutput> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver(o) => Some(o.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_command_goes_to_one_server_with_a_retry_timer() {
    let mut c = client();
    let effects = request(&mut c, 1, "SET k v");
    assert_eq!(effects.len(), 2, "{effects:?}");
    let Effect::Send { to, message, .. } = &effects[0] else {
        panic!("first a send: {effects:?}")
    };
    // Lane 0 is client 100; 100 mod 4 = server 0.
    assert_eq!(*to, NodeId(0));
    let PrimeMessage::ClientUpdate(update) = message else {
        panic!("a client update")
    };
    assert_eq!(
        (
            update.client,
            update.incarnation,
            update.seq,
            update.reply_to
        ),
        (ClientId(100), 7, 1, Some(ME))
    );
    assert_eq!(update.op, command("SET k v").to_bytes());
    assert!(matches!(
        effects[1],
        Effect::SetTimer { timer: VotingTimer::Retry(0), at } if at == Time::from_millis(505)
    ));
}

#[test]
fn answers_on_f_plus_one_matching_signed_replies() {
    let mut c = client();
    request(&mut c, 9, "SET k v");
    let first = deliver(&mut c, signed_reply(2, 100, 1, 4, &Reply::ok()));
    assert!(first.is_empty(), "one reply is not enough: {first:?}");
    let second = deliver(&mut c, signed_reply(3, 100, 1, 4, &Reply::ok()));
    assert_eq!(
        outputs(&second),
        vec![VotingOutput::Answer {
            tag: 9,
            reply: Reply::ok()
        }]
    );
    assert!(second.iter().any(|e| matches!(
        e,
        Effect::CancelTimer {
            timer: VotingTimer::Retry(0)
        }
    )));
    assert_eq!(c.in_flight(), 0);
    assert_eq!(c.stats().answered, 1);
    // A late matching reply changes nothing.
    assert!(deliver(&mut c, signed_reply(1, 100, 1, 4, &Reply::ok())).is_empty());
    assert_eq!(c.stats().lies, 0);
}

#[test]
fn a_lying_server_is_outvoted_and_counted() {
    let mut c = client();
    request(&mut c, 1, "GET k");
    let lie = deliver(&mut c, signed_reply(0, 100, 1, 4, &Reply::bulk("forged")));
    assert!(outputs(&lie).is_empty());
    deliver(&mut c, signed_reply(1, 100, 1, 4, &Reply::Nil));
    let effects = deliver(&mut c, signed_reply(2, 100, 1, 4, &Reply::Nil));
    assert_eq!(
        outputs(&effects),
        vec![
            VotingOutput::ServerLied {
                server: ParticipantId(0),
                client: ClientId(100),
                seq: 1
            },
            VotingOutput::Answer {
                tag: 1,
                reply: Reply::Nil
            }
        ]
    );
    // A liar after the answer is caught too.
    let late = deliver(&mut c, signed_reply(3, 100, 1, 9, &Reply::Nil));
    assert_eq!(
        outputs(&late),
        vec![VotingOutput::ServerLied {
            server: ParticipantId(3),
            client: ClientId(100),
            seq: 1
        }]
    );
    assert_eq!(c.stats().lies, 2);
}

#[test]
fn one_server_repeating_itself_is_one_vote() {
    let mut c = client();
    request(&mut c, 1, "GET k");
    deliver(&mut c, signed_reply(2, 100, 1, 4, &Reply::Nil));
    let again = deliver(&mut c, signed_reply(2, 100, 1, 4, &Reply::Nil));
    assert!(
        outputs(&again).is_empty(),
        "f+1 distinct servers are needed"
    );
    let changed = deliver(&mut c, signed_reply(2, 100, 1, 4, &Reply::bulk("x")));
    assert_eq!(
        outputs(&changed),
        vec![VotingOutput::ServerLied {
            server: ParticipantId(2),
            client: ClientId(100),
            seq: 1
        }],
        "two different signed results from one server"
    );
    assert_eq!(c.in_flight(), 1);
}

#[test]
fn forged_unsigned_or_foreign_replies_are_rejected() {
    let mut c = client();
    request(&mut c, 1, "GET k");
    // Server 1's reply claiming to be from server 2: the signature does not verify.
    let PrimeMessage::Reply(mut forged) = signed_reply(1, 100, 1, 4, &Reply::Nil) else {
        unreachable!()
    };
    forged.signer = ParticipantId(2);
    deliver(&mut c, PrimeMessage::Reply(forged.clone()));
    forged.signer = ParticipantId(9);
    deliver(&mut c, PrimeMessage::Reply(forged));
    // Another client's reply, and a reply for a sequence number not in flight.
    deliver(&mut c, signed_reply(1, 555, 1, 4, &Reply::Nil));
    deliver(&mut c, signed_reply(1, 100, 2, 4, &Reply::Nil));
    let effects = deliver(&mut c, signed_reply(3, 100, 1, 4, &Reply::Nil));
    assert!(outputs(&effects).is_empty(), "only one valid vote so far");
    assert_eq!(c.stats().rejected_replies, 4);
    // An empty result is an abstention (a recovering server), not a vote and not a lie.
    deliver(
        &mut c,
        signed_reply(0, 100, 1, 4, &Reply::Nil).with_empty_result(),
    );
    assert_eq!((c.stats().abstentions, c.stats().lies), (1, 0));
    assert_eq!(c.in_flight(), 1);
}

trait EmptyResult {
    fn with_empty_result(self) -> Self;
}

impl EmptyResult for PrimeMessage {
    fn with_empty_result(self) -> Self {
        let PrimeMessage::Reply(signed) = self else {
            return self;
        };
        let server = signed.signer.0 as u32;
        let body = PrimeReply {
            result: Vec::new(),
            ..signed.body
        };
        let tag = auth_for(&keys(), server)
            .sign_batch(&[body_digest(signed.signer, &body)])
            .remove(0);
        PrimeMessage::Reply(Signed {
            signer: signed.signer,
            body,
            tag,
        })
    }
}

#[test]
fn silence_resends_through_the_next_server_then_fails() {
    let mut c = client();
    request(&mut c, 4, "SET k v");
    for expected_server in [1, 2] {
        let effects = call(&mut c, |c, cx| c.on_timer(cx, VotingTimer::Retry(0)));
        assert_eq!(effects.len(), 2, "{effects:?}");
        assert!(
            matches!(&effects[0], Effect::Send { to, message: PrimeMessage::ClientUpdate(u), .. }
                if *to == NodeId(expected_server) && u.seq == 1),
            "the same update through server {expected_server}: {effects:?}"
        );
        assert!(matches!(
            effects[1],
            Effect::SetTimer {
                timer: VotingTimer::Retry(0),
                ..
            }
        ));
    }
    let effects = call(&mut c, |c, cx| c.on_timer(cx, VotingTimer::Retry(0)));
    assert_eq!(
        outputs(&effects),
        vec![VotingOutput::Failed {
            tag: 4,
            reason: FailReason::RetriesExhausted
        }],
        "retries_max = 2 re-sends, then the command fails"
    );
    assert_eq!((c.stats().resends, c.stats().failed), (2, 1));
    assert_eq!(c.in_flight(), 0);
    // The lane is free again and moves on to the next sequence number.
    let effects = request(&mut c, 5, "GET k");
    assert!(
        matches!(&effects[0], Effect::Send { message: PrimeMessage::ClientUpdate(u), .. } if u.seq == 2)
    );
}

#[test]
fn commands_in_flight_are_bounded_by_the_lanes() {
    let mut c = client();
    request(&mut c, 1, "SET a 1");
    let second = request(&mut c, 2, "SET b 1");
    assert!(
        matches!(&second[0], Effect::Send { to, message: PrimeMessage::ClientUpdate(u), .. }
            if *to == NodeId(1) && u.client == ClientId(101)),
        "lane 1 is client 101, sent through server 1: {second:?}"
    );
    assert_eq!(c.in_flight(), 2);
    let third = request(&mut c, 3, "SET c 1");
    assert_eq!(outputs(&third), vec![VotingOutput::Busy { tag: 3 }]);
    assert_eq!(third.len(), 1, "nothing sent");
    assert_eq!(c.stats().busy, 1);
    // An answer frees a lane.
    deliver(&mut c, signed_reply(0, 101, 1, 3, &Reply::ok()));
    deliver(&mut c, signed_reply(1, 101, 1, 3, &Reply::ok()));
    assert_eq!(c.in_flight(), 1);
    let fourth = request(&mut c, 4, "SET c 1");
    assert!(outputs(&fourth).is_empty());
    assert_eq!(c.in_flight(), 2);
    c.check_invariants().expect("invariants hold");
}

#[test]
fn with_a_home_server_every_lane_starts_there_and_a_silent_one_is_left() {
    let mut cfg = config();
    cfg.home_server = Some(2);
    let mut c = VotingClient::new(cfg, Box::new(auth_for(&keys(), 0)));
    let first_hops: Vec<NodeId> = [1, 2]
        .into_iter()
        .map(|tag| {
            let effects = request(&mut c, tag, "SET k v");
            match &effects[0] {
                Effect::Send { to, .. } => *to,
                other => panic!("a send first: {other:?}"),
            }
        })
        .collect();
    assert_eq!(
        first_hops,
        vec![NodeId(2), NodeId(2)],
        "both lanes start at home"
    );
    let effects = call(&mut c, |c, cx| c.on_timer(cx, VotingTimer::Retry(0)));
    assert!(
        matches!(&effects[0], Effect::Send { to, .. } if *to == NodeId(3)),
        "the silent home is left for the next server: {effects:?}"
    );
    assert_eq!(c.stats().resends, 1);
}
