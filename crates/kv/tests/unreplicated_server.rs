//! The unreplicated baseline server over real TCP on 127.0.0.1, driven by the `redis` crate (an
//! unmodified client) and by raw sockets for what a client library would never send.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use redis::Commands;
use stockade_kv::limits::Limits;
use stockade_kv::unreplicated::{UnreplicatedConfig, UnreplicatedServer, MAX_CLIENTS_REPLY};

/// Start a server on its own thread and runtime; returns its address.
fn start(config: UnreplicatedConfig) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
            let server = UnreplicatedServer::bind(addr, config).await.expect("bind");
            tx.send(server.local_addr().expect("local address"))
                .expect("report address");
            server.run().await.expect("server runs");
        });
    });
    rx.recv().expect("server started")
}

fn client(addr: SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("client")
        .get_connection()
        .expect("connects")
}

/// A raw socket with a safety timeout so a broken server fails the test instead of hanging it.
fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("reads until the server closes");
    out
}

#[test]
fn redis_crate_client_works_end_to_end() {
    let addr = start(UnreplicatedConfig::default());
    let mut con = client(addr);
    let _: () = con.set("greeting", "hello").expect("SET");
    let got: String = con.get("greeting").expect("GET");
    assert_eq!(got, "hello");
    let n: i64 = con.incr("counter", 5).expect("INCRBY");
    assert_eq!(n, 5);
    let _: () = con
        .hset_multiple("h", &[("a", "1"), ("b", "2")])
        .expect("HSET");
    let all: HashMap<String, String> = con.hgetall("h").expect("HGETALL");
    assert_eq!(all.len(), 2);
    let old: Option<String> = redis::cmd("SET")
        .arg("greeting")
        .arg("bye")
        .arg("GET")
        .query(&mut con)
        .expect("SET GET");
    assert_eq!(old.as_deref(), Some("hello"));
    for i in 0..50 {
        let _: () = con.set(format!("scan:{i}"), i).expect("SET");
    }
    let scanned: Vec<String> = con
        .scan_match("scan:*")
        .expect("SCAN")
        .collect::<Result<_, _>>()
        .expect("SCAN items");
    assert_eq!(
        scanned.len(),
        50,
        "the client library follows our integer cursors to the end"
    );
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
    assert_eq!(pong, "PONG");
}

#[test]
fn errors_are_replies_and_the_connection_survives() {
    let addr = start(UnreplicatedConfig {
        limits: Limits {
            key_bytes_max: 16,
            ..Limits::DEFAULT
        },
        ..Default::default()
    });
    let mut con = client(addr);
    let e = redis::cmd("FROBNICATE")
        .arg("a")
        .query::<()>(&mut con)
        .expect_err("unknown command");
    assert!(
        e.to_string()
            .contains("unknown command 'FROBNICATE', with args beginning with: 'a'"),
        "{e}"
    );
    let e = con
        .set::<_, _, ()>("k".repeat(17), "v")
        .expect_err("key too large");
    assert!(
        e.to_string()
            .contains("key of 17 bytes exceeds the limit of 16 bytes"),
        "{e}"
    );
    let _: () = con.hset("h", "f", "v").expect("HSET");
    let e = con.get::<_, String>("h").expect_err("wrong type");
    assert!(
        e.to_string()
            .contains("Operation against a key holding the wrong kind of value"),
        "{e}"
    );
    let ok: i64 = con.incr("n", 1).expect("the connection still works");
    assert_eq!(ok, 1);
}

#[test]
fn pipelines_are_answered_in_order() {
    let addr = start(UnreplicatedConfig {
        output_bytes_max: 512,
        ..Default::default()
    });
    let mut con = client(addr);
    let mut pipe = redis::pipe();
    for i in 0..2_000 {
        pipe.cmd("INCR").arg("pipelined");
        pipe.cmd("GET").arg("pipelined");
        let _ = i;
    }
    let replies: Vec<redis::Value> = pipe.query(&mut con).expect("pipeline");
    assert_eq!(replies.len(), 4_000);
    assert_eq!(replies[3_998], redis::Value::Int(2_000));
    assert_eq!(replies[3_999], redis::Value::BulkString(b"2000".to_vec()));
}

#[test]
fn malformed_resp_gets_a_protocol_error_then_close() {
    let addr = start(UnreplicatedConfig::default());
    let mut s = raw(addr);
    s.write_all(b"*1\r\n$4\r\nPING\r\n*abc\r\n").expect("write");
    assert_eq!(
        read_to_close(&mut s),
        b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n".to_vec()
    );
    let mut s = raw(addr);
    let huge = format!("*1\r\n${}\r\n", 2 * stockade_kv::limits::VALUE_BYTES_MAX);
    s.write_all(huge.as_bytes()).expect("write");
    assert_eq!(
        read_to_close(&mut s),
        b"-ERR Protocol error: invalid bulk length\r\n".to_vec()
    );
    let mut con = client(addr);
    let _: () = con
        .set("still", "up")
        .expect("the server still serves others");
}

#[test]
fn disconnect_mid_pipeline_keeps_complete_commands_only() {
    let addr = start(UnreplicatedConfig::default());
    {
        let mut s = raw(addr);
        s.write_all(b"SET a 1\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\n12")
            .expect("write");
        let mut first = [0u8; 10];
        s.read_exact(&mut first)
            .expect("both complete commands answered");
        assert_eq!(&first, b"+OK\r\n+OK\r\n");
    } // dropped with the third command half sent
    {
        // A client that pipelines a lot and leaves without reading the replies.
        let mut s = raw(addr);
        let mut burst = Vec::new();
        for _ in 0..5_000 {
            burst.extend_from_slice(b"INCR burst\r\n");
        }
        s.write_all(&burst).expect("write");
    }
    let mut con = client(addr);
    let (a, b, c): (Option<String>, Option<String>, Option<String>) = redis::cmd("MGET")
        .arg("a")
        .arg("b")
        .arg("c")
        .query(&mut con)
        .expect("MGET");
    assert_eq!(
        (a.as_deref(), b.as_deref(), c),
        (Some("1"), Some("2"), None)
    );
}

#[test]
fn resp3_hello_and_quit() {
    let addr = start(UnreplicatedConfig::default());
    let mut s = raw(addr);
    s.write_all(b"HSET h f v\r\nHELLO 3\r\n").expect("write");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).expect("read");
    assert!(
        buf[..n].starts_with(b":1\r\n"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(b"HGETALL h\r\nGET nothing\r\nQUIT\r\n")
        .expect("write");
    let rest = read_to_close(&mut s);
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.ends_with("%1\r\n$1\r\nf\r\n$1\r\nv\r\n_\r\n+OK\r\n"),
        "RESP3 map and null, then OK and close: {text:?}"
    );
}

#[test]
fn connection_limit_refuses_extra_clients() {
    let addr = start(UnreplicatedConfig {
        connections_max: 2,
        ..Default::default()
    });
    let mut first = client(addr);
    let mut second = client(addr);
    let _: () = first.set("x", 1).expect("first served");
    let _: () = second.set("y", 2).expect("second served");
    let mut third = raw(addr);
    assert_eq!(read_to_close(&mut third), MAX_CLIENTS_REPLY.to_vec());
    drop(first);
    // The freed slot is eventually reused; retry until the server has noticed the close.
    let mut served = false;
    for _ in 0..200 {
        let mut s = raw(addr);
        s.write_all(b"PING\r\n").expect("write");
        let mut reply = [0u8; 7];
        if s.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n" {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(served, "a slot frees when a client leaves");
}
