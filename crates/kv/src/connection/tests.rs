//! Tests of the RESP front end with a stand-in backend: pipelines answered in order across the
//! pipeline bound, the update size bound, local commands, the reply timeout, the waiting bound.

use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A stand-in backend: answers `GET <key>` with the key's submission number on the connection,
/// never answers `GET stall`, and records every key submitted.
#[derive(Default)]
struct CountingBackend {
    submitted: Mutex<Vec<Vec<u8>>>,
    stalled: Mutex<Vec<oneshot::Sender<Reply>>>,
}

impl Backend for CountingBackend {
    type Connection = i64;

    fn connect(&self, _id: u64) -> i64 {
        0
    }

    async fn submit(&self, count: &mut i64, command: Command) -> PendingReply {
        let Command::Get { key } = command else {
            return ready(Reply::Error("ERR only GET here".into()));
        };
        self.submitted.lock().expect("lock").push(key.clone());
        if key == b"stall" {
            let (tx, rx) = oneshot::channel();
            self.stalled.lock().expect("lock").push(tx);
            return rx;
        }
        *count += 1;
        ready(Reply::Integer(*count))
    }
}

async fn start(limits: FrontEndLimits) -> (SocketAddr, Arc<CountingBackend>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let backend = Arc::new(CountingBackend::default());
    tokio::spawn(serve_resp(listener, Arc::clone(&backend), limits));
    (addr, backend)
}

/// Send `request` and read until `expected` bytes arrived.
async fn exchange(addr: SocketAddr, request: &[u8], expected: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_exact(&mut got),
    )
    .await
    .expect("answered in time")
    .expect("read");
    got
}

use std::net::SocketAddr;

#[tokio::test]
async fn a_pipeline_longer_than_the_bound_is_answered_in_order() {
    let limits = FrontEndLimits {
        pipeline_commands_max: 2,
        ..FrontEndLimits::default()
    };
    let (addr, backend) = start(limits).await;
    let request = b"GET a\r\nGET b\r\nPING\r\nGET c\r\nGET d\r\nGET e\r\n";
    let expected = b":1\r\n:2\r\n+PONG\r\n:3\r\n:4\r\n:5\r\n";
    assert_eq!(exchange(addr, request, expected).await, expected.to_vec());
    let submitted = backend.submitted.lock().expect("lock").clone();
    assert_eq!(
        submitted,
        vec![
            b"a".to_vec(),
            b"b".to_vec(),
            b"c".to_vec(),
            b"d".to_vec(),
            b"e".to_vec()
        ],
        "PING never reached the backend"
    );
}

#[tokio::test]
async fn a_command_over_the_update_bound_is_refused_at_the_edge() {
    let (addr, backend) = start(FrontEndLimits::default()).await;
    let value = "v".repeat(UPDATE_OP_BYTES_MAX);
    let request = format!(
        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{value}\r\n",
        value.len()
    );
    let args = vec![b"SET".to_vec(), b"k".to_vec(), value.into_bytes()];
    let len = Command::parse(&args, &Limits::DEFAULT)
        .expect("valid")
        .wire_len();
    assert!(len > UPDATE_OP_BYTES_MAX);
    let error = format!(
        "-ERR command of {len} bytes exceeds the replicated update limit of {UPDATE_OP_BYTES_MAX} bytes\r\n"
    );
    let got = exchange(addr, request.as_bytes(), error.as_bytes()).await;
    assert_eq!(String::from_utf8_lossy(&got), error);
    assert!(backend.submitted.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn an_unanswered_command_times_out_and_later_ones_still_answer() {
    let limits = FrontEndLimits {
        reply_timeout_ms: 50,
        ..FrontEndLimits::default()
    };
    let (addr, _backend) = start(limits).await;
    let expected = format!("-{REPLY_TIMEOUT_ERROR}\r\n:1\r\n");
    let got = exchange(addr, b"GET stall\r\nGET x\r\n", expected.as_bytes()).await;
    assert_eq!(String::from_utf8_lossy(&got), expected);
}

#[test]
fn the_waiting_table_is_bounded() {
    let waiting: Waiting<u64> = Waiting::new(2);
    let mut first = waiting.wait(1, None).expect("room");
    let _second = waiting.wait(2, None).expect("room");
    assert_eq!(
        waiting.wait(3, None).err(),
        Some(Reply::Error(WAITING_FULL_ERROR.into()))
    );
    waiting.answer(&1, Reply::ok());
    assert_eq!(first.try_recv(), Ok(Reply::ok()));
    assert_eq!(waiting.len(), 1);
    assert!(waiting.wait(3, None).is_ok(), "an answer frees room");
    waiting.abandon_all();
    assert!(waiting.is_empty());
}
