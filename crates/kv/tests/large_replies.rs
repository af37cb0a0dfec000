//! Replies larger than one Prime reply carries (16 KiB) through the voting proxy and a server's
//! own RESP port: GET of a 100 KiB value, MGET of many keys, KEYS *, HGETALL of a big hash.
//! The replicas vote on the reply's digest and the proxy fetches the bytes
//! ([`stockade_kv::large_reply`]).

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use common::SharedCluster;
use redis::Commands;
use stockade_kv::large_reply::INLINE_RESULT_BYTES_MAX;
use stockade_replication::messages::UPDATE_OP_BYTES_MAX;

fn service() -> &'static SharedCluster {
    static SERVICE: OnceLock<SharedCluster> = OnceLock::new();
    SERVICE.get_or_init(|| SharedCluster::start(6))
}

fn connect(addr: SocketAddr) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("connects");
    con.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    con
}

#[test]
fn get_of_a_100_kib_value_built_by_append() {
    let mut proxy = connect(service().proxy);
    let chunk: String = (0..10 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut expected = String::new();
    for _ in 0..10 {
        let len: usize = proxy.append("big", &chunk).expect("APPEND");
        expected.push_str(&chunk);
        assert_eq!(len, expected.len());
    }
    assert!(expected.len() > 6 * INLINE_RESULT_BYTES_MAX);
    let through_proxy: String = proxy.get("big").expect("GET through the proxy");
    assert_eq!(through_proxy.len(), expected.len());
    assert_eq!(through_proxy, expected);
    let mut server = connect(service().server);
    let on_server: String = server.get("big").expect("GET on a server");
    assert_eq!(on_server, expected);
    // One SET carries at most one replicated update: the documented limit, with a clear error.
    let too_big = "x".repeat(UPDATE_OP_BYTES_MAX);
    let error = proxy
        .set::<_, _, ()>("too-big", &too_big)
        .expect_err("over the update limit");
    assert!(
        error
            .to_string()
            .contains("exceeds the replicated update limit of 16384 bytes"),
        "{error}"
    );
}

#[test]
fn mget_keys_and_hgetall_larger_than_a_prime_reply() {
    let mut proxy = connect(service().proxy);
    let value = "v".repeat(500);
    let keys: Vec<String> = (0..200).map(|i| format!("many:{i:04}")).collect();
    for batch in keys.chunks(25) {
        let pairs: Vec<(&String, &String)> = batch.iter().map(|k| (k, &value)).collect();
        let _: () = proxy.mset(&pairs).expect("MSET");
    }
    let values: Vec<String> = proxy.mget(&keys).expect("MGET of 100 KB");
    assert_eq!(values.len(), 200);
    assert!(values.iter().all(|v| *v == value));

    let names: Vec<String> = (0..2000).map(|i| format!("name:{i:05}")).collect();
    for batch in names.chunks(250) {
        let pairs: Vec<(&String, u8)> = batch.iter().map(|k| (k, 1)).collect();
        let _: () = proxy.mset(&pairs).expect("MSET");
    }
    let mut listed: Vec<String> = proxy.keys("name:*").expect("KEYS");
    listed.sort();
    assert_eq!(listed, names);
    assert!(names.iter().map(|n| n.len() + 2).sum::<usize>() > INLINE_RESULT_BYTES_MAX);

    let fields: Vec<(String, String)> = (0..1500)
        .map(|i| (format!("field-{i:05}"), format!("{i}")))
        .collect();
    for batch in fields.chunks(300) {
        let _: () = proxy.hset_multiple("wide", batch).expect("HSET");
    }
    let mut all: Vec<(String, String)> = proxy.hgetall("wide").expect("HGETALL");
    all.sort();
    assert_eq!(all, fields);
    let encoded_len: usize = all.iter().map(|(f, v)| f.len() + v.len() + 4).sum();
    assert!(encoded_len > INLINE_RESULT_BYTES_MAX, "{encoded_len}");

    // A server's own clients get the same large replies.
    let mut server = connect(service().server);
    let on_server: Vec<String> = server.mget(&keys).expect("MGET on a server");
    assert_eq!(on_server, values);
}
