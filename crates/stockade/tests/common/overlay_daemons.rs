//! Real overlay daemons for the integration tests: `stockade overlay run` processes started from
//! the files `stockade::overlay_cmd::local` writes, killed (SIGKILL) when the guard drops, on
//! failure too; and one-line requests to their control ports.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use stockade::overlay_cmd::local::LocalNode;
use stockade_overlay::net::{ClientError, ControlClient, ControlRequest};

/// How long one control request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The daemons, in the order started; dropping it kills every one still running.
#[derive(Default)]
pub struct Daemons {
    children: Vec<Option<Child>>,
}

impl Daemons {
    /// Start `node`'s daemon, its output going to its log file in `dir`.
    pub fn start(&mut self, node: &LocalNode, dir: &Path) {
        let log = std::fs::File::create(node.log_path(dir)).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_stockade"))
            .args(["overlay", "run", "--config"])
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("the binary starts");
        self.children.push(Some(child));
    }

    /// Kill the `index`-th daemon started (SIGKILL), unless it is already gone.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for index in 0..self.children.len() {
            self.kill(index);
        }
    }
}

/// One request on a fresh control connection to `node`.
pub fn request(node: &LocalNode, request: &ControlRequest) -> Result<Value, ClientError> {
    ControlClient::connect(node.control, REQUEST_TIMEOUT)?.request(request)
}

/// `node`'s status, or `None` when it does not answer.
pub fn status(node: &LocalNode) -> Option<Value> {
    request(node, &ControlRequest::Status).ok()
}
