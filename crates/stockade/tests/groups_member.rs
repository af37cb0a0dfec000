//! `stockade groups member` end to end: three real member processes on loopback form one
//! LA-group (paper 000) and member 0's files show every member and the attestations among them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stockade_runtime::{write_local_cluster, LinkConfig, LocalClusterPlan};

/// Members in the test's group.
const MEMBERS: u32 = 3;
/// How long the group is given to form.
const FORM_WITHIN: Duration = Duration::from_secs(15);
/// How long a member is given to stop after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(5);

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

fn append_group(path: &Path, section: &str) {
    let mut text = std::fs::read_to_string(path).expect("reading a node config");
    text.push_str(section);
    std::fs::write(path, text).expect("writing a member config");
}

/// Poll `path` until `accept` says its text is complete, or give up at `deadline`.
fn wait_for(path: &PathBuf, deadline: Instant, accept: impl Fn(&str) -> bool) -> Option<String> {
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
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

#[test]
fn three_member_processes_form_one_group_with_attestations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base_port =
        stockade::kv_bench::free_base_port(MEMBERS as u16).expect("free loopback ports");
    let plan = LocalClusterPlan {
        nodes: MEMBERS,
        base_port,
        metrics_base_port: None,
        link: LinkConfig::default(),
    };
    let configs = write_local_cluster(dir.path(), &plan).expect("writing node configs");
    let mut members = Members(Vec::new());
    let deadline = Instant::now() + FORM_WITHIN;

    append_group(
        &configs[0],
        "\n[group]\ncreate = true\nattest = [1, 2]\ned25519_seed = 7\n",
    );
    members.0.push(start_member(dir.path(), 0));
    let group_file = dir.path().join("out0/group.txt");
    let group = wait_for(&group_file, deadline, |t| t.trim().len() == 40)
        .expect("member 0 wrote its group id");

    for i in 1..MEMBERS {
        let neighbours: Vec<String> = (0..MEMBERS)
            .filter(|&j| j != i)
            .map(|j| j.to_string())
            .collect();
        append_group(
            &configs[i as usize],
            &format!(
                "\n[group]\njoin = \"{}\"\ncontacts = [0]\nattest = [{}]\ned25519_seed = 7\n",
                group.trim(),
                neighbours.join(", ")
            ),
        );
        members.0.push(start_member(dir.path(), i));
    }

    let view = wait_for(&dir.path().join("out0/view.txt"), deadline, |t| {
        t.lines().any(|l| l.trim() == "view 0 1 2")
    });
    let view = view.unwrap_or_else(|| {
        panic!(
            "member 0's view never listed all 3 members: {:?}",
            std::fs::read_to_string(dir.path().join("out0/view.txt"))
        )
    });
    assert!(
        view.starts_with(&format!("group {}", group.trim())),
        "{view}"
    );

    let every_attestation = |t: &str| {
        (0..MEMBERS).all(|a| {
            (0..MEMBERS)
                .filter(|&b| b != a)
                .all(|b| t.contains(&format!("n{a} -> n{b};")))
        })
    };
    let dot = wait_for(
        &dir.path().join("out0/graph.dot"),
        deadline,
        every_attestation,
    );
    assert!(
        dot.is_some(),
        "graph.dot never held all 6 attestations: {:?}",
        std::fs::read_to_string(dir.path().join("out0/graph.dot"))
    );
    let svg = std::fs::read_to_string(dir.path().join("out0/graph.svg")).expect("graph.svg");
    assert!(svg.contains("<svg"), "graph.svg is SVG");

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
