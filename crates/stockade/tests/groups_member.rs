//! `stockade groups member` end to end: each member gets its own keys from `stockade keygen`, its
//! configuration lists the others' public keys, and three real member processes on loopback form
//! one LA-group (paper 000). `stockade groups view` reads member 0's view from the running
//! daemon; when a member is killed, the others' liveness monitors withdraw their attestations and
//! the view drops it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_success, last_line_json, stockade};

/// Members in the test's group.
const MEMBERS: u32 = 3;
/// How long the group is given to form.
const FORM_WITHIN: Duration = Duration::from_secs(20);
/// How long a killed member may stay in the others' views: misses_max probes plus the validity.
const DROP_WITHIN: Duration = Duration::from_secs(20);
/// Members 1 and 2 start this long after member 0: longer than an attestation lives, so their
/// attestations would look expired to member 0 if members compared process-relative clocks.
const START_APART: Duration = Duration::from_millis(5000);
/// How long a member is given to stop after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(5);
/// The `[group]` periods every member runs with: short, so a lost member shows quickly.
const GROUP_PERIODS: &str = "attestation_validity_ms = 4000\nrefresh_interval_ms = 1000\nprobe_interval_ms = 300\nview_publish_ms = 200\n\n[group.monitor]\nkind = \"liveness\"\nmisses_max = 2\n";

/// The member processes; killed when the test ends, whether it passed or not.
struct Members(Vec<Child>);

impl Drop for Members {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The loopback addresses of one member.
struct Addresses {
    links: String,
    view: String,
}

fn addresses(base_port: u16, i: u32) -> Addresses {
    let port = |offset: u32| base_port + (offset + i) as u16;
    Addresses {
        links: format!("127.0.0.1:{}", port(0)),
        view: format!("127.0.0.1:{}", port(MEMBERS)),
    }
}

/// `stockade keygen` for member `i`; returns its public.toml.
fn keygen(dir: &Path, i: u32) -> toml::Table {
    let keys_dir = dir.join(format!("keys{i}"));
    let out = stockade(&["keygen", "--dir", keys_dir.to_str().expect("utf-8 path")]);
    assert_success(&out);
    let text = std::fs::read_to_string(keys_dir.join("public.toml")).expect("public.toml");
    toml::from_str(&text).expect("public.toml is TOML")
}

/// Member `i`'s configuration: its addresses and keys directory, every other member as a
/// `[[peer]]` with its public keys, and `group`.
fn write_config(dir: &Path, base_port: u16, publics: &[toml::Table], i: u32, group: &str) {
    let own = addresses(base_port, i);
    let mut text = format!(
        "id = {i}\nlisten = \"{}\"\nkeys_dir = \"keys{i}\"\ndata_dir = \"data{i}\"\nview_listen = \"{}\"\n",
        own.links, own.view
    );
    for (j, public) in publics.iter().enumerate() {
        let j = j as u32;
        if j == i {
            continue;
        }
        text.push_str(&format!(
            "\n[[peer]]\nid = {j}\naddr = \"{}\"\n",
            addresses(base_port, j).links
        ));
        for field in ["noise", "ed25519", "bls", "bls_pop"] {
            text.push_str(&format!("{field} = {}\n", public[field]));
        }
    }
    text.push_str(&format!("\n[group]\n{group}{GROUP_PERIODS}"));
    std::fs::write(dir.join(format!("node{i}.toml")), text).expect("writing a member config");
}

fn start_member(dir: &Path, i: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stockade"))
        .args(["groups", "member", "--config"])
        .arg(format!("node{i}.toml"))
        .args(["--out", &format!("out{i}"), "--print-every", "1"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting stockade groups member")
}

/// Poll `read` until `accept` says its text is complete, or give up at `deadline`.
fn wait_for(
    deadline: Instant,
    read: impl Fn() -> Option<String>,
    accept: impl Fn(&str) -> bool,
) -> Option<String> {
    loop {
        if let Some(text) = read() {
            if accept(&text) {
                return Some(text);
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_file(path: PathBuf) -> impl Fn() -> Option<String> {
    move || std::fs::read_to_string(&path).ok()
}

/// `stockade groups view --member ADDR ARGS`, its standard output if it succeeded.
fn groups_view(addr: &str, args: &[&str]) -> Option<(String, serde_json::Value)> {
    let out = stockade(&[&["groups", "view", "--member", addr], args].concat());
    out.status.success().then(|| {
        let json = last_line_json(&out);
        (String::from_utf8_lossy(&out.stdout).into_owned(), json)
    })
}

#[test]
fn members_with_their_own_keys_form_a_group_that_groups_view_reads_and_drops_a_killed_member() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base_port = stockade::kv_bench::free_base_port(2 * MEMBERS as u16).expect("free ports");
    let publics: Vec<toml::Table> = (0..MEMBERS).map(|i| keygen(dir.path(), i)).collect();
    let mut members = Members(Vec::new());
    let deadline = Instant::now() + FORM_WITHIN;

    write_config(
        dir.path(),
        base_port,
        &publics,
        0,
        "create = true\nattest = [1, 2]\n",
    );
    members.0.push(start_member(dir.path(), 0));
    let group = wait_for(
        deadline,
        read_file(dir.path().join("out0/group.txt")),
        |t| t.trim().len() == 40,
    )
    .expect("member 0 wrote its group id");
    let group = group.trim().to_string();
    std::thread::sleep(START_APART);
    let deadline = Instant::now() + FORM_WITHIN;

    for i in 1..MEMBERS {
        let others: Vec<String> = (0..MEMBERS)
            .filter(|&j| j != i)
            .map(|j| j.to_string())
            .collect();
        let section = format!(
            "join = \"{group}\"\ncontacts = [0]\nattest = [{}]\n",
            others.join(", ")
        );
        write_config(dir.path(), base_port, &publics, i, &section);
        members.0.push(start_member(dir.path(), i));
    }

    let every_attestation = |t: &str| {
        (0..MEMBERS).all(|a| {
            (0..MEMBERS)
                .filter(|&b| b != a)
                .all(|b| t.contains(&format!("n{a} -> n{b};")))
        })
    };
    let dot = wait_for(
        deadline,
        read_file(dir.path().join("out0/graph.dot")),
        every_attestation,
    );
    assert!(
        dot.is_some(),
        "graph.dot never held all 6 attestations: {:?}",
        std::fs::read_to_string(dir.path().join("out0/graph.dot"))
    );
    let view = std::fs::read_to_string(dir.path().join("out0/view.txt")).expect("view.txt");
    assert!(
        view.starts_with(&format!("group {group}\nview 0 1 2\n")),
        "{view}"
    );

    // `groups view` asks the running daemon, prints the view and writes the pictures.
    let view_addr = addresses(base_port, 0).view;
    let pictures = dir.path().join("pictures");
    let (text, headline) = groups_view(
        &view_addr,
        &["--out", pictures.to_str().expect("utf-8 path")],
    )
    .expect("groups view succeeds");
    assert!(
        text.contains("view of member 0 (3 members): 0 1 2"),
        "{text}"
    );
    assert!(text.contains("  1 attests 0 2"), "{text}");
    assert_eq!(headline["group"], group.as_str());
    assert_eq!(headline["view_size"], 3);
    assert_eq!(headline["attestations"], 6);
    // The member collected a compact transcript signed by all three (their BLS keys from keygen).
    let signed_by_all = wait_for(
        deadline,
        || groups_view(&view_addr, &[]).map(|(_, headline)| headline.to_string()),
        |h| h.contains("\"transcript_signers\":[0,1,2]"),
    );
    assert!(
        signed_by_all.is_some(),
        "no transcript signed by every member: {:?}",
        groups_view(&view_addr, &[])
    );
    let dot = std::fs::read_to_string(pictures.join("graph.dot")).expect("graph.dot");
    assert_eq!(dot.matches(" -> ").count(), 6, "{dot}");
    let svg = std::fs::read_to_string(pictures.join("graph.svg")).expect("graph.svg");
    assert_eq!(svg.matches("<circle").count(), 3, "{svg}");

    // Kill member 2: the liveness monitors of 0 and 1 withdraw, its own attestations expire, and
    // member 0's view drops it.
    members.0[2].kill().expect("killing member 2");
    let drop_deadline = Instant::now() + DROP_WITHIN;
    let dropped = wait_for(
        drop_deadline,
        || groups_view(&view_addr, &[]).map(|(text, _)| text),
        |text| text.contains("view of member 0 (2 members): 0 1\n"),
    );
    let dropped = dropped.unwrap_or_else(|| {
        panic!(
            "member 0's view kept member 2: {:?}",
            groups_view(&view_addr, &[])
        )
    });
    assert!(
        !dropped.contains(" -> n2;"),
        "nobody attests member 2:\n{dropped}"
    );
    assert!(
        dropped.contains("n0 -> n1;") && dropped.contains("n1 -> n0;"),
        "{dropped}"
    );

    // SIGTERM stops a member cleanly (exit status 0), within a bound.
    let pid = members.0[0].id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(
        sent.is_ok_and(|s| s.success()),
        "sending SIGTERM to member 0"
    );
    let stop_deadline = Instant::now() + STOP_WITHIN;
    let status = loop {
        if let Some(status) = members.0[0].try_wait().expect("polling member 0") {
            break status;
        }
        assert!(Instant::now() < stop_deadline, "member 0 ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "member 0 stopped with {status}");
}

#[test]
fn a_member_without_keys_or_with_a_foreign_proof_of_possession_refuses_to_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base_port = stockade::kv_bench::free_base_port(2 * MEMBERS as u16).expect("free ports");
    let mut publics: Vec<toml::Table> = (0..2).map(|i| keygen(dir.path(), i)).collect();
    write_config(dir.path(), base_port, &publics, 0, "create = true\n");
    let run = |dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_stockade"))
            .args([
                "groups",
                "member",
                "--config",
                "node0.toml",
                "--out",
                "out0",
            ])
            .current_dir(dir)
            .output()
            .expect("the binary runs")
    };

    std::fs::remove_file(dir.path().join("keys0/bls.key")).expect("removing a key");
    let out = run(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("stockade keygen --dir keys0"), "{stderr}");

    let other = keygen(dir.path(), 2);
    publics[1].insert("bls_pop".into(), other["bls_pop"].clone());
    std::fs::remove_dir_all(dir.path().join("keys0")).expect("removing keys0");
    publics[0] = keygen(dir.path(), 0);
    write_config(dir.path(), base_port, &publics, 0, "create = true\n");
    let out = run(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("[[peer]] id = 1") && stderr.contains("does not prove possession"),
        "{stderr}"
    );
}
