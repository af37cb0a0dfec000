//! The conformance suite, run under both drivers: the same cases pass in the deterministic
//! simulator and as real processes on loopback (Noise over UDP).

use stockade::conformance::{
    fault_free, lossy_links, one_byzantine_node, ConformanceDriver, ProcessDriver, SimDriver,
};

fn processes(dir: &tempfile::TempDir) -> ProcessDriver {
    ProcessDriver {
        exe: env!("CARGO_BIN_EXE_stockade").into(),
        dir: dir.path().to_path_buf(),
    }
}

fn check(driver: &dyn ConformanceDriver, case: fn(&dyn ConformanceDriver) -> anyhow::Result<()>) {
    if let Err(e) = case(driver) {
        panic!("{e:#}");
    }
}

#[test]
fn simulator_fault_free() {
    check(&SimDriver { seed: 1 }, fault_free);
}

#[test]
fn simulator_lossy_links() {
    check(&SimDriver { seed: 2 }, lossy_links);
}

#[test]
fn simulator_one_byzantine_node() {
    check(&SimDriver { seed: 3 }, one_byzantine_node);
}

#[test]
fn processes_fault_free() {
    let dir = tempfile::tempdir().expect("temp dir");
    check(&processes(&dir), fault_free);
}

#[test]
fn processes_lossy_links() {
    let dir = tempfile::tempdir().expect("temp dir");
    check(&processes(&dir), lossy_links);
}

#[test]
fn processes_one_byzantine_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    check(&processes(&dir), one_byzantine_node);
}
