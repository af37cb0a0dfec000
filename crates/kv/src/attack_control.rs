//! Changing a misbehaving server's attack while it runs (demonstrations and tests only): a server
//! whose `[attack]` section names a `control_file` reads that file every [`POLL_PERIOD_MS`] and,
//! when its contents change, hands the new [`AttackSwitches`] to its replica
//! ([`ReplicaRequest::SetAttack`]). No file, or an empty one, is a correct server. The file lives on
//! the server's own machine, so only someone who can already change its configuration can use it.
//!
//! ```toml
//! delay_pre_prepares_ms = 450        # as leader, propose once per 450 ms
//! equivocate_pre_prepares = false    # as leader, show different pre-prepares to different servers
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stockade_replication::Attack;
use tokio::sync::mpsc;

use crate::replica::ReplicaRequest;
use crate::service_config::check_attack_delay;

/// How often the control file is read.
pub const POLL_PERIOD_MS: u64 = 50;
/// Longest control file read, in bytes (anything longer is refused and reported).
pub const CONTROL_FILE_BYTES_MAX: u64 = 4096;

/// The contents of a control file: Prime's attack switches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackSwitches {
    /// As leader, propose at most once per this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_pre_prepares_ms: Option<u64>,
    /// As leader, sign two different pre-prepares per slot and show each to half the servers.
    #[serde(default)]
    pub equivocate_pre_prepares: bool,
}

impl AttackSwitches {
    /// Parse and check a control file's text.
    pub fn parse(text: &str) -> Result<AttackSwitches, String> {
        let switches: AttackSwitches = toml::from_str(text).map_err(|e| e.to_string())?;
        check_attack_delay(switches.delay_pre_prepares_ms)?;
        Ok(switches)
    }

    /// The switches as Prime's [`Attack`].
    pub fn attack(&self) -> Attack {
        Attack {
            pre_prepare_delay: self.delay_pre_prepares_ms.map(Duration::from_millis),
            equivocate_pre_prepares: self.equivocate_pre_prepares,
            ..Attack::default()
        }
    }

    /// The file text that sets these switches.
    pub fn to_text(&self) -> String {
        // Two plain fields: serialising cannot fail.
        toml::to_string(self).unwrap_or_default()
    }
}

/// What the control file says now: `Ok(None)` when there is no file (a correct server).
async fn read_switches(path: &PathBuf) -> Result<Option<AttackSwitches>, String> {
    let text = match tokio::fs::read(path).await {
        Ok(bytes) if bytes.len() as u64 > CONTROL_FILE_BYTES_MAX => {
            return Err(format!("longer than {CONTROL_FILE_BYTES_MAX} bytes"))
        }
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    AttackSwitches::parse(&text).map(Some)
}

/// Follow `path` until the replica stops: every change of its contents becomes a
/// [`ReplicaRequest::SetAttack`]. A file that does not parse is reported and leaves the switches
/// as they were.
pub async fn follow_control_file(path: PathBuf, requests: mpsc::Sender<ReplicaRequest>) {
    let mut current = AttackSwitches::default();
    let mut reported_error = None;
    loop {
        match read_switches(&path).await {
            Ok(switches) => {
                reported_error = None;
                let switches = switches.unwrap_or_default();
                if switches != current {
                    eprintln!(
                        "ATTACK CONTROL {}: attack switches now {switches:?}",
                        path.display()
                    );
                    if requests
                        .send(ReplicaRequest::SetAttack(switches.attack()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    current = switches;
                }
            }
            Err(e) if reported_error.as_ref() != Some(&e) => {
                eprintln!("ATTACK CONTROL {}: ignored: {e}", path.display());
                reported_error = Some(e);
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(POLL_PERIOD_MS)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_parse_check_and_print_back() {
        let delay = AttackSwitches::parse("delay_pre_prepares_ms = 450").expect("valid");
        assert_eq!(
            delay.attack().pre_prepare_delay,
            Some(Duration::from_millis(450))
        );
        assert_eq!(AttackSwitches::parse(&delay.to_text()), Ok(delay));
        assert_eq!(AttackSwitches::parse(""), Ok(AttackSwitches::default()));
        assert!(AttackSwitches::parse("delay_pre_prepares_ms = 0").is_err());
        assert!(AttackSwitches::parse("crash = true").is_err());
    }

    #[tokio::test]
    async fn each_change_of_the_file_reaches_the_replica_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server0.attack");
        let (tx, mut rx) = mpsc::channel(4);
        let follower = tokio::spawn(follow_control_file(path.clone(), tx));
        let equivocate = AttackSwitches {
            equivocate_pre_prepares: true,
            ..AttackSwitches::default()
        };
        std::fs::write(&path, equivocate.to_text()).expect("written");
        assert_eq!(
            rx.recv().await,
            Some(ReplicaRequest::SetAttack(equivocate.attack()))
        );
        std::fs::write(&path, "not toml [").expect("written");
        std::fs::remove_file(&path).expect("removed");
        assert_eq!(
            rx.recv().await,
            Some(ReplicaRequest::SetAttack(Attack::default())),
            "no file: a correct server again"
        );
        follower.abort();
        assert!(rx.try_recv().is_err(), "nothing more");
    }
}
