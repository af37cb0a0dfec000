//! The replicated service for real, in one process: four Prime servers (f = 1) and a voting
//! proxy as tokio tasks on loopback, talking Noise over UDP, each server with its own redb data
//! directory; a `redis` crate client talks RESP to the proxy and to a server.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{configs, free_base_port, start_all, SERVERS};
use redis::Commands;
use stockade_kv::cluster::{cluster_down, cluster_status, cluster_up, RESP_PORT_OFFSET};
use stockade_kv::replicated::{PersistOutbox, ReplicatedKv};
use stockade_kv::server::start_server;
use stockade_kv::{Command, Limits, Reply};
use stockade_runtime::RedbStore;

fn connect(addr: SocketAddr) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connects");
    con.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    con
}

/// Run blocking client code off the runtime's workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_get_through_the_voting_proxy_and_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let configs = configs(dir.path(), 0);
    let (servers, proxy) = start_all(&configs).await;
    let proxy_addr = proxy.resp_addr();
    let server_addr = servers[1].as_ref().expect("running").resp_addr();
    blocking(move || {
        let mut con = connect(proxy_addr);
        let pong: String = redis::cmd("PING").query(&mut con).expect("ping");
        assert_eq!(pong, "PONG", "connection-local, answered by the proxy");
        for i in 0..10 {
            let _: () = con.set(format!("k{i}"), format!("v{i}")).expect("SET");
        }
        for i in 0..10 {
            let v: String = con.get(format!("k{i}")).expect("GET");
            assert_eq!(v, format!("v{i}"));
        }
        let missing: Option<String> = con.get("nothing").expect("GET");
        assert_eq!(missing, None);
        // A pipeline is answered in order.
        let (a, b, n): (String, String, i64) = redis::pipe()
            .set("p", "1")
            .ignore()
            .get("k1")
            .get("k2")
            .incr("p", 5)
            .query(&mut con)
            .expect("pipeline");
        assert_eq!((a.as_str(), b.as_str(), n), ("v1", "v2", 6));

        // A client that trusts server 1 sees the same state through its own RESP port.
        let mut local = connect(server_addr);
        let v: String = local.get("k3").expect("GET on a server");
        assert_eq!(v, "v3");
        let _: () = local.set("from-server", "yes").expect("SET on a server");
        let v: String = con.get("from-server").expect("GET through the proxy");
        assert_eq!(v, "yes");
    })
    .await;
    proxy.shutdown().await.expect("proxy stops");
    for s in servers.into_iter().flatten() {
        s.shutdown().await.expect("server stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_acknowledged_write_and_recovers_from_redb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut configs = configs(dir.path(), 1);
    // The proxy's lanes send through server 2 first (its home server), the one killed below, so
    // the proxy must re-send through another server.
    configs[SERVERS].proxy.home_server = 2;
    configs[SERVERS].proxy.retry_timeout_ms = 300;
    let (mut servers, proxy) = start_all(&configs).await;
    let proxy_addr = proxy.resp_addr();

    let writes_before_kill = 10;
    let writes = 30;
    let (killed_tx, killed_rx) = std::sync::mpsc::channel::<()>();
    let (kill_tx, mut kill_rx) = tokio::sync::mpsc::channel::<()>(1);
    let writer = tokio::task::spawn_blocking(move || {
        let mut con = connect(proxy_addr);
        let mut acknowledged = Vec::new();
        for i in 0..writes {
            if i == writes_before_kill {
                kill_tx.blocking_send(()).expect("ask for the kill");
                killed_rx.recv().expect("killed");
            }
            let _: () = con
                .set(format!("w{i}"), i)
                .expect("acknowledged with one server down");
            acknowledged.push(i);
        }
        acknowledged
    });
    kill_rx.recv().await.expect("kill request");
    // Server 2 dies as with kill -9, in the middle of the writes.
    servers[2].take().expect("running").abort();
    killed_tx.send(()).expect("writer waits");
    let acknowledged = writer.await.expect("writer");
    assert_eq!(acknowledged.len(), writes as usize);

    // Every acknowledged write is there.
    let values: Vec<Option<i64>> = blocking(move || {
        let mut con = connect(proxy_addr);
        (0..writes)
            .map(|i| con.get(format!("w{i}")).expect("GET"))
            .collect()
    })
    .await;
    assert_eq!(
        values,
        (0..writes).map(|i| Some(i as i64)).collect::<Vec<_>>()
    );

    // Server 2 restarts from its data directory and catches up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let restarted = start_server(&configs[2]).await.expect("server 2 restarts");
    assert!(
        restarted.recovered_slot() > 0,
        "the data directory held the slots executed before the kill"
    );
    let local_addr = restarted.resp_addr();
    // Its own clients write through its RESP port at once: Prime recovered its PO-REQUEST
    // numbers, so it originates updates again (under a new client incarnation).
    let own_port_value: String = blocking(move || {
        let mut con = connect(local_addr);
        let _: () = con
            .set("after-restart", "own-port")
            .expect("a restarted server serves its own RESP port");
        let mut through_proxy = connect(proxy_addr);
        through_proxy
            .get("after-restart")
            .expect("GET through the proxy")
    })
    .await;
    assert_eq!(own_port_value, "own-port", "the write was replicated");
    // Writes go on through the proxy while server 2 catches up.
    blocking(move || {
        let mut con = connect(proxy_addr);
        for i in writes..writes + 5 {
            let _: () = con.set(format!("w{i}"), i).expect("SET");
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    restarted.shutdown().await.expect("server 2 stops");

    // What server 2 made durable holds every write, including those made while it was down.
    let store = RedbStore::open(&configs[2].node.data_dir).expect("redb");
    let durable = store.snapshot().expect("snapshot");
    let kv = ReplicatedKv::recover(&durable, Limits::DEFAULT, PersistOutbox::default())
        .expect("recovers");
    for i in 0..writes + 5 {
        let get = Command::Get {
            key: format!("w{i}").into_bytes(),
        };
        assert_eq!(
            kv.state().query(0, &get),
            Reply::bulk(i.to_string()),
            "w{i} on server 2"
        );
    }
    let own = Command::Get {
        key: b"after-restart".to_vec(),
    };
    assert_eq!(kv.state().query(0, &own), Reply::bulk("own-port"));

    let stats = proxy.shutdown().await.expect("proxy stops");
    assert!(
        stats.resends > 0,
        "the proxy re-sent around the killed server: {stats:?}"
    );
    assert_eq!((stats.failed, stats.lies), (0, 0), "{stats:?}");
    for s in servers.into_iter().flatten() {
        s.shutdown().await.expect("server stops");
    }
}

/// A stand-in for the `stockade` executable: a shell that keeps its arguments and sleeps, so the
/// launcher's pid files, re-runs and stop can be checked without the CLI crate.
fn fake_stockade(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-stockade.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\nsleep 30 &\ntrap 'kill $!; exit 0' TERM\nwait\n",
    )
    .expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn cluster_up_status_down_with_pid_files() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let exe = fake_stockade(scratch.path());
    let dir = scratch.path().join("cluster");
    let base = free_base_port(2);
    let proxy = cluster_up(&dir, SERVERS, 1, base, &exe).expect("up");
    assert_eq!(
        proxy,
        SocketAddr::from(([127, 0, 0, 1], base + RESP_PORT_OFFSET + SERVERS as u16))
    );
    let status = cluster_status(&dir).expect("status");
    let rows = status.as_array().expect("an array");
    assert_eq!(rows.len(), SERVERS + 1);
    assert!(
        rows.iter().all(|r| r["pid"].is_u64()),
        "all running: {status}"
    );
    assert_eq!(rows[SERVERS]["role"], "proxy");
    assert_eq!(
        rows[0]["resp"],
        format!("127.0.0.1:{}", base + RESP_PORT_OFFSET)
    );

    // Re-running starts nothing new.
    let pids: Vec<u64> = rows
        .iter()
        .map(|r| r["pid"].as_u64().unwrap_or(0))
        .collect();
    cluster_up(&dir, SERVERS, 1, base, &exe).expect("up again");
    let again = cluster_status(&dir).expect("status");
    let pids_again: Vec<u64> = again
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["pid"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(pids, pids_again, "the same processes");

    // A stopped member is restarted alone.
    std::process::Command::new("kill")
        .arg(pids[1].to_string())
        .status()
        .expect("kill");
    std::thread::sleep(Duration::from_millis(200));
    assert!(cluster_status(&dir).expect("status")[1]["pid"].is_null());
    cluster_up(&dir, SERVERS, 1, base, &exe).expect("up again");
    let third = cluster_status(&dir).expect("status");
    assert!(third[1]["pid"].is_u64());
    assert_ne!(third[1]["pid"].as_u64(), Some(pids[1]));
    assert_eq!(third[0]["pid"].as_u64(), Some(pids[0]));

    assert_eq!(cluster_down(&dir).expect("down"), SERVERS + 1);
    let after = cluster_status(&dir).expect("status");
    assert!(after
        .as_array()
        .expect("array")
        .iter()
        .all(|r| r["pid"].is_null()));
    assert!(
        cluster_up(&dir, 5, 1, base, &exe).is_ok(),
        "existing files are reused whatever the arguments"
    );
    cluster_down(&dir).expect("down");
}

/// `write_cluster` deals one (2f+1)-of-(3f+1) threshold key: each server's share in its own
/// owner-only file, the public key set in every server's configuration; any three servers' shares
/// combine into a signature every server accepts. The proxy gets none and is refused as a server.
#[test]
fn write_cluster_deals_one_threshold_key_to_the_servers() {
    use std::os::unix::fs::PermissionsExt;
    use stockade_replication::{MessageAuth, ParticipantId};
    let dir = tempfile::tempdir().expect("tempdir");
    let configs = configs(dir.path(), 11);
    let mut auths: Vec<_> = configs[..SERVERS]
        .iter()
        .map(|c| c.server_auth().expect("server keys"))
        .collect();
    for c in &configs[..SERVERS] {
        let share = c.replication.threshold_share_file.as_ref().expect("share");
        let mode = std::fs::metadata(share)
            .expect("share file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{} is readable by others", share.display());
    }
    let digest = [7u8; 32];
    let mut ignore = |_| {};
    let shares: Vec<_> = auths
        .iter_mut()
        .enumerate()
        .skip(1)
        .map(|(i, a)| (ParticipantId(i as u16), a.sign_share(&digest, &mut ignore)))
        .collect();
    assert_eq!(auths[0].shares_needed(), Some(3));
    let combined = auths[0]
        .combine_shares(&digest, &shares, &mut ignore)
        .expect("three shares combine");
    assert!(combined.invalid.is_empty());
    assert!(auths[2].verify_combined(&digest, &combined.proof, &mut ignore));
    let proxy = &configs[SERVERS];
    assert_eq!(proxy.replication.threshold_share_file, None);
    let refused = proxy.server_auth().err().map(|e| e.to_string());
    assert!(
        refused.is_some_and(|m| m.contains("threshold_key_set")),
        "a proxy configuration cannot run a server"
    );
}
