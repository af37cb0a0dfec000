//! `stockade keygen`: one node's key files: the Noise static key of its links (runtime), its
//! Ed25519 signing key and its BLS key with a proof of possession (crypto). Secret files are
//! created with mode 0600; `public.toml` lists the public halves for other nodes' configs.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use stockade_core::Wire;
use stockade_crypto::bls::BlsSecretKey;
use stockade_crypto::ed25519::SigningKey;
use stockade_runtime::StaticKeypair;

use crate::cli::KeygenArgs;
use crate::headline::Verdict;

/// The Noise static private key (the runtime's key file format).
pub const NOISE_KEY_FILE: &str = "noise.key";
/// The Ed25519 secret key, hex.
pub const ED25519_KEY_FILE: &str = "ed25519.key";
/// The BLS secret key, hex.
pub const BLS_KEY_FILE: &str = "bls.key";
/// The public halves.
pub const PUBLIC_FILE: &str = "public.toml";

/// A node's public keys, as `public.toml` holds them (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeys {
    /// Noise static public key (peers' `public_key` in runtime configs).
    pub noise: String,
    /// Ed25519 verifying key.
    pub ed25519: String,
    /// BLS public key.
    pub bls: String,
    /// BLS proof of possession of `bls`.
    pub bls_pop: String,
}

/// Run `stockade keygen`.
pub fn run(args: &KeygenArgs) -> anyhow::Result<Verdict> {
    let public = write_node_keys(&args.dir, args.force)?;
    println!("wrote {} (mode 0600):", args.dir.display());
    for file in [NOISE_KEY_FILE, ED25519_KEY_FILE, BLS_KEY_FILE] {
        println!("  {file}");
    }
    println!(
        "public keys ({PUBLIC_FILE}):\n  noise   {}\n  ed25519 {}\n  bls     {}",
        public.noise, public.ed25519, public.bls
    );
    Ok(Verdict::Passed)
}

/// Generate fresh keys from the OS's randomness and write them into `dir` (created if missing).
/// Refuses to replace existing key files unless `force`.
pub fn write_node_keys(dir: &Path, force: bool) -> anyhow::Result<PublicKeys> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating key directory {}", dir.display()))?;
    let paths: Vec<PathBuf> = [NOISE_KEY_FILE, ED25519_KEY_FILE, BLS_KEY_FILE, PUBLIC_FILE]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    if !force {
        if let Some(existing) = paths.iter().find(|p| p.exists()) {
            bail!(
                "{} exists; pass --force to replace this node's keys",
                existing.display()
            );
        }
    }
    let noise = StaticKeypair::generate().context("generating the Noise static key")?;
    noise
        .save(&dir.join(NOISE_KEY_FILE))
        .context("writing the Noise key")?;
    let ed25519 = SigningKey::generate(&mut OsRng);
    write_secret(&dir.join(ED25519_KEY_FILE), &ed25519.to_hex())?;
    let bls = BlsSecretKey::generate(&mut OsRng);
    write_secret(&dir.join(BLS_KEY_FILE), &bls.to_hex())?;
    let public = PublicKeys {
        noise: noise.public().to_string(),
        ed25519: ed25519.verifying_key().to_hex(),
        bls: bls.public_key().to_hex(),
        bls_pop: hex::encode(bls.prove_possession().to_bytes()),
    };
    let text = toml::to_string(&public).context("encoding public.toml")?;
    std::fs::write(dir.join(PUBLIC_FILE), text)
        .with_context(|| format!("writing {}", dir.join(PUBLIC_FILE).display()))?;
    Ok(public)
}

/// Write `text` to a new file only its owner can read.
pub fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))
}

/// Read an Ed25519 secret written by `keygen`, refusing a file others can read.
pub fn load_ed25519(path: &Path) -> anyhow::Result<SigningKey> {
    let text = read_secret_text(path)?;
    SigningKey::from_hex(text.trim()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Read a BLS secret written by `keygen`, refusing a file others can read.
pub fn load_bls(path: &Path) -> anyhow::Result<BlsSecretKey> {
    let text = read_secret_text(path)?;
    BlsSecretKey::from_hex(text.trim()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The text of a secret key file, after checking that only its owner can read it.
fn read_secret_text(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} has mode {:o}; a secret key must be readable by its owner only (chmod 600)",
            path.display(),
            mode & 0o777
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_secret_files_0600_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let public = write_node_keys(dir.path(), false).expect("keygen");
        for file in [NOISE_KEY_FILE, ED25519_KEY_FILE, BLS_KEY_FILE] {
            let mode = std::fs::metadata(dir.path().join(file))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let loaded = load_ed25519(&dir.path().join(ED25519_KEY_FILE)).expect("loads");
        assert_eq!(loaded.verifying_key().to_hex(), public.ed25519);
        let bls = load_bls(&dir.path().join(BLS_KEY_FILE)).expect("loads");
        assert_eq!(bls.public_key().to_hex(), public.bls);
        assert!(StaticKeypair::load(&dir.path().join(NOISE_KEY_FILE)).is_ok());
        assert!(
            write_node_keys(dir.path(), false).is_err(),
            "existing keys are kept"
        );
        let replaced = write_node_keys(dir.path(), true).expect("forced");
        assert_ne!(replaced.ed25519, public.ed25519);
    }
}
