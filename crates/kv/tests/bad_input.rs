//! Bad input against the voting proxy and against a server's own RESP port: malformed RESP,
//! requests over the documented limits ([`stockade_kv::limits`], [`RespLimits`]), unknown
//! commands, and a client that disconnects in the middle of a pipeline. Each case checks the
//! exact error text, whether the connection stays open as Redis keeps it, and that valid commands
//! work afterwards. One in-process cluster (four servers, f = 1, and a proxy) serves every test.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::SharedCluster;
use redis::Commands;
use stockade_kv::limits::{ARGS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use stockade_kv::RespLimits;
use stockade_replication::messages::UPDATE_OP_BYTES_MAX;

/// The cluster every test of this file uses.
fn service() -> &'static SharedCluster {
    static SERVICE: OnceLock<SharedCluster> = OnceLock::new();
    SERVICE.get_or_init(|| SharedCluster::start(5))
}

fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream
}

/// Read one reply line (every reply these tests expect is one line).
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            other => panic!(
                "reply line cut short ({other:?}) after {:?}",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).expect("utf-8 reply")
}

/// Whether the peer closed the connection (EOF or reset).
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// PING and a SET/GET round trip work on `stream`.
fn serves(stream: &mut TcpStream, key: &str) {
    stream.write_all(b"PING\r\n").expect("sent");
    assert_eq!(read_line(stream), "+PONG");
    let set = format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$2\r\nok\r\n", key.len());
    stream.write_all(set.as_bytes()).expect("sent");
    assert_eq!(read_line(stream), "+OK");
    let get = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    stream.write_all(get.as_bytes()).expect("sent");
    assert_eq!(read_line(stream), "$2");
    assert_eq!(read_line(stream), "ok");
}

/// Send `request` on a new connection: the reply is the protocol error `error`, the connection
/// is closed after it (as Redis does), and a new connection is served.
fn protocol_error_closes(addr: SocketAddr, request: &[u8], error: &str) {
    let mut stream = raw(addr);
    stream.write_all(request).expect("sent");
    assert_eq!(read_line(&mut stream), error, "for {request:?}");
    assert!(closed(&mut stream), "closed after {error}");
    serves(&mut raw(addr), "after-protocol-error");
}

/// Send `request` on `stream`: the reply is `error` and the same connection serves on.
fn error_keeps_open(stream: &mut TcpStream, request: &[u8], error: &str) {
    stream.write_all(request).expect("sent");
    assert_eq!(read_line(stream), error);
    serves(stream, "after-command-error");
}

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn malformed_resp(addr: SocketAddr) {
    let cases: [(&[u8], &str); 6] = [
        // A type byte other than '$' inside a request.
        (
            b"*1\r\n+GET\r\n",
            "-ERR Protocol error: expected '$', got '+'",
        ),
        (
            b"*2\r\n:3\r\n",
            "-ERR Protocol error: expected '$', got ':'",
        ),
        // Negative bulk lengths (a request has no null bulk).
        (b"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length"),
        // Non-digits in the lengths.
        (b"*x\r\n", "-ERR Protocol error: invalid multibulk length"),
        (
            b"*1\r\n$3a\r\nGET\r\n",
            "-ERR Protocol error: invalid bulk length",
        ),
        // A bulk string longer than its length says.
        (
            b"*1\r\n$3\r\nGETXX\r\n",
            "-ERR Protocol error: expected CRLF after bulk string",
        ),
    ];
    for (request, error) in cases {
        protocol_error_closes(addr, request, error);
    }
}

fn over_the_limits(addr: SocketAddr) {
    // A bulk string one byte over the bound is refused from its header, before any of it arrives.
    let header = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", VALUE_BYTES_MAX + 1);
    assert_eq!(RespLimits::DEFAULT.bulk_bytes_max, VALUE_BYTES_MAX);
    protocol_error_closes(
        addr,
        header.as_bytes(),
        "-ERR Protocol error: invalid bulk length",
    );
    // Too many arguments, from the count alone.
    let count = format!("*{}\r\n", ARGS_MAX + 1);
    protocol_error_closes(
        addr,
        count.as_bytes(),
        "-ERR Protocol error: invalid multibulk length",
    );
    // An inline request longer than 64 KiB with no end of line.
    protocol_error_closes(
        addr,
        &vec![b'a'; RespLimits::DEFAULT.inline_bytes_max + 1],
        "-ERR Protocol error: too big inline request",
    );
    // Well-formed but over a command limit: an error reply, and the connection stays open.
    let mut stream = raw(addr);
    let long_key = vec![b'k'; KEY_BYTES_MAX + 1];
    error_keeps_open(
        &mut stream,
        &multibulk(&[b"SET", &long_key, b"v"]),
        &format!(
            "-ERR key of {} bytes exceeds the limit of {KEY_BYTES_MAX} bytes",
            KEY_BYTES_MAX + 1
        ),
    );
    // A value within the value limit but over what one replicated update carries.
    let value = vec![b'v'; UPDATE_OP_BYTES_MAX];
    let request = multibulk(&[b"SET", b"big", &value]);
    stream.write_all(&request).expect("sent");
    let reply = read_line(&mut stream);
    assert!(
        reply.starts_with("-ERR command of ")
            && reply.ends_with(&format!(
                "bytes exceeds the replicated update limit of {UPDATE_OP_BYTES_MAX} bytes"
            )),
        "{reply}"
    );
    serves(&mut stream, "after-update-limit");
}

fn unknown_commands(addr: SocketAddr) {
    let mut stream = raw(addr);
    error_keeps_open(
        &mut stream,
        &multibulk(&[b"FOO", b"a", b"b"]),
        "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' ",
    );
    // A first byte that is no RESP type starts an inline command, as in Redis.
    error_keeps_open(
        &mut stream,
        b"+PING\r\n",
        "-ERR unknown command '+PING', with args beginning with: ",
    );
    // Redis commands stockade does not implement are unknown commands too.
    error_keeps_open(
        &mut stream,
        &multibulk(&[b"LPUSH", b"list", b"x"]),
        "-ERR unknown command 'LPUSH', with args beginning with: 'list' 'x' ",
    );
}

/// 100 pipelined SETs and the start of a 101st, then the client hangs up without reading: every
/// complete command still executes, the partial one does not, and the service goes on.
fn disconnect_mid_pipeline(addr: SocketAddr, prefix: &str) {
    let mut pipeline = Vec::new();
    for i in 0..100 {
        pipeline.extend_from_slice(&multibulk(&[
            b"SET",
            format!("{prefix}{i}").as_bytes(),
            i.to_string().as_bytes(),
        ]));
    }
    pipeline.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$7\r\npartial\r\n$5\r\nva");
    let mut stream = raw(addr);
    stream.write_all(&pipeline).expect("sent");
    drop(stream);

    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let mut con = client.get_connection().expect("a new client connects");
    con.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let keys: Vec<String> = (0..100).map(|i| format!("{prefix}{i}")).collect();
    let expected: Vec<Option<i64>> = (0..100).map(Some).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let values: Vec<Option<i64>> = con.mget(&keys).expect("MGET");
        if values == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline not executed: {values:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let partial: Option<String> = con.get("partial").expect("GET");
    assert_eq!(partial, None, "the incomplete command was not executed");
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
    assert_eq!(pong, "PONG");
}

#[test]
fn proxy_answers_malformed_resp_with_protocol_errors_and_serves_new_connections() {
    malformed_resp(service().proxy);
}

#[test]
fn server_answers_malformed_resp_with_protocol_errors_and_serves_new_connections() {
    malformed_resp(service().server);
}

#[test]
fn proxy_refuses_requests_over_the_limits() {
    over_the_limits(service().proxy);
}

#[test]
fn server_refuses_requests_over_the_limits() {
    over_the_limits(service().server);
}

#[test]
fn proxy_answers_unknown_commands_and_keeps_the_connection() {
    unknown_commands(service().proxy);
}

#[test]
fn server_answers_unknown_commands_and_keeps_the_connection() {
    unknown_commands(service().server);
}

#[test]
fn proxy_executes_a_pipeline_whose_client_hung_up_and_serves_on() {
    disconnect_mid_pipeline(service().proxy, "proxy-pipe-");
}

#[test]
fn server_executes_a_pipeline_whose_client_hung_up_and_serves_on() {
    disconnect_mid_pipeline(service().server, "server-pipe-");
}
