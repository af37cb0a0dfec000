//! One real daemon in-process (a lone first node over the runtime, control on a free loopback
//! port), driven through the blocking client: put/get/remove/publish/anycast/subscribe round
//! trips, and every refusal of the control interface: malformed requests, oversized names, values
//! and lines, nothing to remove, no subscriber, and the connection bound.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use std::io::{BufRead, BufReader, Read, Write};

use stockade_runtime::{LinkConfig, NodeConfig, StaticKeypair};
use tokio::sync::oneshot;

use super::control::names::NAME_BYTES_MAX;
use super::daemon::CONTROL_CONNECTIONS_MAX;
use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A running lone daemon; dropping it stops the daemon and its runtime.
struct LoneDaemon {
    control: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl LoneDaemon {
    fn start() -> LoneDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let key_file = dir.path().join("noise.key");
        StaticKeypair::generate()
            .expect("key")
            .save(&key_file)
            .expect("saved");
        let config = OverlayNodeConfig {
            node: NodeConfig {
                id: 0,
                listen: "127.0.0.1:0".parse().expect("literal"),
                key_file,
                peers: Vec::new(),
                data_dir: dir.path().join("data"),
                metrics: None,
                link: LinkConfig::default(),
            },
            overlay: OverlaySettings {
                bootstrap: None,
                control: "127.0.0.1:0".parse().expect("literal"),
                certificate_authority: None,
                certificate: None,
                replicas: 1,
                join_timeout_ms: None,
                join_attempts_max: None,
            },
        };
        config.validate().expect("valid config");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio");
        let daemon = runtime
            .block_on(OverlayDaemon::start(config))
            .expect("daemon starts");
        let control = daemon.control;
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(daemon.run_until(async {
            let _ = stopped.await;
        }));
        LoneDaemon {
            control,
            stop: Some(stop),
            runtime,
            _dir: dir,
        }
    }

    fn client(&self) -> ControlClient {
        ControlClient::connect(self.control, TIMEOUT).expect("connects")
    }
}

impl Drop for LoneDaemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Give the node its turn to stop before the runtime goes.
        self.runtime
            .block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
    }
}

fn refusal(result: Result<serde_json::Value, ClientError>) -> String {
    match result {
        Err(ClientError::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_lone_daemon_serves_put_get_publish_and_subscribe() {
    let daemon = LoneDaemon::start();
    let mut client = daemon.client();
    let status = client.request(&ControlRequest::Status).expect("status");
    assert_eq!(status["joined"], true, "{status}");
    assert_eq!(status["leaf_set"], 0);

    let put = ControlRequest::Put {
        key: "colour".into(),
        value: "blue".into(),
    };
    let reply = client.request(&put).expect("put");
    assert_eq!(
        (reply["replicas"].as_u64(), reply["complete"].as_bool()),
        (Some(1), Some(true))
    );
    let newer = ControlRequest::Put {
        key: "colour".into(),
        value: "red".into(),
    };
    client
        .request(&newer)
        .expect("a newer version replaces the value");
    let got = client
        .request(&ControlRequest::Get {
            key: "colour".into(),
        })
        .expect("get");
    assert_eq!(
        (got["found"].as_bool(), got["value"].as_str()),
        (Some(true), Some("red"))
    );
    let missing = client
        .request(&ControlRequest::Get {
            key: "nothing".into(),
        })
        .expect("get");
    assert_eq!(missing["found"], false);

    let mut subscriber = daemon.client();
    subscriber
        .request(&ControlRequest::Subscribe {
            topic: "news".into(),
        })
        .expect("subscribed");
    client
        .request(&ControlRequest::Publish {
            topic: "news".into(),
            message: "hello".into(),
        })
        .expect("published");
    let line = subscriber.next_line().expect("a line").expect("open");
    assert_eq!(
        (line["topic"].as_str(), line["message"].as_str()),
        (Some("news"), Some("hello"))
    );
    let status = client.request(&ControlRequest::Status).expect("status");
    assert_eq!(status["subscribed_topics"], 1);
    assert_eq!(status["stored_objects"], 1);
}

#[test]
fn the_control_interface_refuses_bad_requests_with_reasons() {
    let daemon = LoneDaemon::start();
    let mut client = daemon.client();
    let long_name = "n".repeat(NAME_BYTES_MAX + 1);
    let reason = refusal(client.request(&ControlRequest::Get { key: long_name }));
    assert!(reason.contains("1 to 1024 bytes"), "{reason}");
    let big = "v".repeat(crate::dht::OBJECT_BYTES_MAX + 1);
    let reason = refusal(client.request(&ControlRequest::Put {
        key: "k".into(),
        value: big,
    }));
    assert!(reason.contains("the limit is"), "{reason}");
    let reason = refusal(client.request(&ControlRequest::Publish {
        topic: "t".into(),
        message: "m".repeat(crate::scribe::messages::SCRIBE_DATA_BYTES_MAX + 1),
    }));
    assert!(reason.contains("the limit is"), "{reason}");

    // Raw lines: a malformed request is answered and the connection goes on; an overlong line
    // is answered and ends the connection.
    let mut raw = TcpStream::connect(daemon.control).expect("connects");
    raw.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut reader = BufReader::new(raw.try_clone().expect("clone"));
    raw.write_all(b"{\"op\":\"delete\"}\n{\"op\":\"status\"}\n")
        .expect("sent");
    let mut line = String::new();
    reader.read_line(&mut line).expect("reply");
    assert!(
        line.contains("\"ok\":false") && line.contains("not a control request"),
        "{line}"
    );
    line.clear();
    reader.read_line(&mut line).expect("reply");
    assert!(line.contains("\"ok\":true"), "{line}");
    let overlong = vec![b'x'; control::CONTROL_LINE_BYTES_MAX + 2];
    // The daemon may close before reading everything; only its reply matters.
    let _ = raw.write_all(&overlong);
    line.clear();
    reader.read_line(&mut line).expect("reply");
    assert!(line.contains("longer than"), "{line}");
    let mut rest = Vec::new();
    let closed = reader.read_to_end(&mut rest);
    assert!(
        closed.is_err() || rest.is_empty(),
        "the connection ends after an overlong line"
    );
}

#[test]
fn connections_beyond_the_bound_are_refused_and_others_still_served() {
    let daemon = LoneDaemon::start();
    let mut open: Vec<ControlClient> = Vec::new();
    for _ in 0..CONTROL_CONNECTIONS_MAX {
        let mut client = daemon.client();
        // A served request proves the connection holds a slot.
        client.request(&ControlRequest::Status).expect("served");
        open.push(client);
    }
    let mut extra = daemon.client();
    let reason = match extra.next_line() {
        Err(ClientError::Refused(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(
        reason.contains("control connections already open"),
        "{reason}"
    );
    drop(open.pop());
    // The freed slot is served again (the daemon notices the close on its own time).
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let mut client = daemon.client();
        if client.request(&ControlRequest::Status).is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was never freed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn remove(client: &mut ControlClient, key: &str) -> Result<serde_json::Value, ClientError> {
    client.request(&ControlRequest::Remove { key: key.into() })
}

#[test]
fn a_removed_value_is_gone_and_only_an_existing_value_can_be_removed() {
    let daemon = LoneDaemon::start();
    let mut writer = daemon.client();
    let put = ControlRequest::Put {
        key: "colour".into(),
        value: "blue".into(),
    };
    let stored = writer.request(&put).expect("put");
    let mut other = daemon.client();
    let removed = remove(&mut other, "colour").expect("removed");
    assert_eq!(
        (
            removed["removed"].as_u64(),
            removed["complete"].as_bool(),
            &removed["id"]
        ),
        (Some(1), Some(true), &stored["id"]),
        "{removed}"
    );
    let get = ControlRequest::Get {
        key: "colour".into(),
    };
    assert_eq!(writer.request(&get).expect("get")["found"], false);
    let reason = refusal(remove(&mut other, "colour"));
    assert!(reason.contains("nothing to remove"), "{reason}");
    let reason = refusal(remove(&mut other, "never stored"));
    assert!(reason.contains("nothing to remove"), "{reason}");
    let reason = refusal(remove(&mut other, &"n".repeat(NAME_BYTES_MAX + 1)));
    assert!(reason.contains("1 to 1024 bytes"), "{reason}");
    let reason = refusal(remove(&mut other, ""));
    assert!(reason.contains("1 to 1024 bytes"), "{reason}");

    // A value put again after its removal is found again, and removed again.
    writer.request(&put).expect("put again");
    assert_eq!(writer.request(&get).expect("get")["value"], "blue");
    remove(&mut other, "colour").expect("removed again");
    assert_eq!(writer.request(&get).expect("get")["found"], false);
}

fn anycast(
    client: &mut ControlClient,
    topic: &str,
    message: &str,
) -> Result<serde_json::Value, ClientError> {
    client.request(&ControlRequest::Anycast {
        topic: topic.into(),
        message: message.into(),
    })
}

fn subscribed(daemon: &LoneDaemon, topic: &str) -> ControlClient {
    let mut client = daemon.client();
    client
        .request(&ControlRequest::Subscribe {
            topic: topic.into(),
        })
        .expect("subscribed");
    client
}

/// The lines `subscriber` reads up to and including the multicast `marker`.
fn lines_until(subscriber: &mut ControlClient, marker: &str) -> Vec<serde_json::Value> {
    let mut lines = Vec::new();
    loop {
        let line = subscriber.next_line().expect("a line").expect("open");
        let done = line["message"] == marker && line.get("anycast").is_none();
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[test]
fn an_anycast_goes_to_one_subscribed_connection_and_says_who_took_it() {
    let daemon = LoneDaemon::start();
    let mut first = subscribed(&daemon, "jobs");
    let mut second = subscribed(&daemon, "jobs");
    let mut client = daemon.client();
    let me = client.request(&ControlRequest::Status).expect("status")["id"].clone();
    for job in ["job 1", "job 2"] {
        let reply = anycast(&mut client, "jobs", job).expect("anycast");
        assert_eq!(
            (&reply["accepted"], &reply["by"], &reply["topic"]),
            (&serde_json::json!(true), &me, &serde_json::json!("jobs")),
            "{reply}"
        );
    }
    // A multicast after both anycasts marks the end of what each connection got.
    client
        .request(&ControlRequest::Publish {
            topic: "jobs".into(),
            message: "marker".into(),
        })
        .expect("published");
    let anycast_line =
        |job: &str| serde_json::json!({"topic": "jobs", "message": job, "anycast": true});
    let marker = serde_json::json!({"topic": "jobs", "message": "marker"});
    assert_eq!(
        lines_until(&mut first, "marker"),
        vec![anycast_line("job 1"), marker.clone()],
        "the connections take turns"
    );
    assert_eq!(
        lines_until(&mut second, "marker"),
        vec![anycast_line("job 2"), marker]
    );

    let nobody = anycast(&mut client, "empty topic", "hello?").expect("answered");
    assert_eq!(nobody["accepted"], false, "{nobody}");
    assert!(nobody.get("by").is_none());
    let too_big = "m".repeat(crate::scribe::messages::SCRIBE_DATA_BYTES_MAX + 1);
    let reason = refusal(anycast(&mut client, "jobs", &too_big));
    assert!(reason.contains("the limit is"), "{reason}");
    let reason = refusal(anycast(&mut client, "", "m"));
    assert!(reason.contains("1 to 1024 bytes"), "{reason}");

    // Once both subscribers hang up, the node leaves the topic by itself (the daemon notices the
    // closes on its own time), and the next anycast finds nobody: none is lost on a connection
    // that is gone.
    drop((first, second));
    let deadline = std::time::Instant::now() + TIMEOUT;
    while client.request(&ControlRequest::Status).expect("status")["subscribed_topics"] != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the node stays subscribed to a topic nobody listens to"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let reply = anycast(&mut client, "jobs", "anyone?").expect("answered");
    assert_eq!(reply["accepted"], false, "{reply}");
}
