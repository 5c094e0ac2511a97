//! `sluice plugins keygen`, `sign`, `verify`, `push` and `pull`: a
//! publisher's side of plugin identity, and the operator's way to fetch
//! plugins. The checks themselves are [`crate::identity`]'s and the
//! registry client [`crate::oci`]'s.

use crate::config::{Config, Overrides};
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// A command that ran to the end and refuses what it was given (a
/// signature that does not hold, a moved tag): exit status 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

/// `sluice plugins keygen`.
pub fn keygen(name: &str, dir: &Path) -> anyhow::Result<()> {
    if !crate::registry::model::valid_plugin_name(name) {
        anyhow::bail!(
            "publisher name {name:?} must be lower-case letters, digits and `-`, starting with a letter"
        );
    }
    let (key, secret, public) = crate::identity::keygen(dir, name)?;
    println!(
        "wrote {} (secret: keep it private) and {}\nkey id {}\n\n\
         To trust this publisher, add to the config:\n\n[plugins.publishers]\n{name} = \"{}\"",
        secret.display(),
        public.display(),
        key.id(),
        key.openssh(name)
    );
    Ok(())
}

/// `sluice plugins sign`: the file signed in place (through a temporary
/// file and a rename, so a watching server never reads half of it), or its
/// signature written beside it.
pub fn sign(file: &Path, key: &Path, out: Option<PathBuf>, detached: bool) -> anyhow::Result<()> {
    let key = crate::identity::SigningKey::read(key)?;
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let (signed, signature) = key
        .sign(&wasm)
        .with_context(|| format!("signing {}", file.display()))?;
    let (target, bytes) = if detached {
        let default = crate::identity::detached_path(file);
        (out.unwrap_or(default), signature)
    } else {
        (out.unwrap_or_else(|| file.to_path_buf()), signed)
    };
    write_atomically(&target, &bytes)?;
    println!(
        "signed {} with key {} ({})",
        file.display(),
        key.public().id(),
        if detached {
            format!("signature in {}", target.display())
        } else {
            format!("written to {}", target.display())
        }
    );
    Ok(())
}

fn write_atomically(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".sluice-")
        .tempfile_in(dir)
        .with_context(|| format!("writing {}", target.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(target)
        .map_err(|e| anyhow::anyhow!("writing {}: {}", target.display(), e.error))?;
    Ok(())
}

/// The publishers to check a plugin against: the key in `public`, or the
/// config's `[plugins.publishers]` (only `publisher`, when named).
fn trusted_publishers(
    publisher: Option<String>,
    public: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<crate::identity::Publishers> {
    use crate::identity::{Key, Publishers};
    let publishers = match public {
        Some(path) => {
            let text =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let key = Key::parse(&text, &path.display().to_string())?;
            let name = path.file_stem().map_or_else(
                || "the key".to_string(),
                |s| s.to_string_lossy().into_owned(),
            );
            Publishers::single(&name, key)
        }
        None => {
            let config = Config::load(&Overrides {
                config_file: config,
                ..Overrides::default()
            })?;
            let all = Publishers::new(&config.plugins.publishers)?;
            match publisher {
                Some(name) => {
                    let key = all.get(&name).cloned().ok_or_else(|| {
                        let known: Vec<&String> = config.plugins.publishers.keys().collect();
                        anyhow::anyhow!(
                            "no publisher {name:?} in [plugins.publishers] (it has: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        )
                    })?;
                    Publishers::single(&name, key)
                }
                None if all.is_empty() => anyhow::bail!(
                    "nothing to verify against: pass --pub KEY, or trust publishers in the \
                     config's [plugins.publishers]"
                ),
                None => all,
            }
        }
    };
    Ok(publishers)
}

/// `sluice plugins push`.
pub async fn push(file: &Path, reference: &str, insecure: bool) -> anyhow::Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let none = crate::identity::Publishers::default();
    match crate::identity::signature(&wasm, None, &none) {
        crate::identity::Signature::Unsigned => anyhow::bail!(
            "{} carries no signature: sign it first (`sluice plugins sign`, without --detached, \
             so the signature travels in the file)",
            file.display()
        ),
        crate::identity::Signature::Invalid(why) => {
            anyhow::bail!("{}: its signature is malformed: {why}", file.display())
        }
        _ => {}
    }
    let digest = crate::identity::digest(&wasm);
    let registry = crate::oci::Registry::new(reference, insecure)?;
    let url = registry.push(wasm, &digest).await?;
    println!(
        "pushed {} to {} ({digest})",
        file.display(),
        registry.reference(),
    );
    println!("manifest: {url}");
    Ok(())
}

/// `sluice plugins pull`: nothing is written unless a trusted signature
/// holds (and, with `locked`, the reference resolves as the lock file
/// says).
pub async fn pull(
    reference: Option<String>,
    locked: bool,
    dir: Option<PathBuf>,
    public: Option<PathBuf>,
    config_file: Option<PathBuf>,
    insecure: bool,
) -> anyhow::Result<()> {
    use crate::oci::{Lock, Locked, Registry};
    let config = Config::load(&Overrides {
        config_file: config_file.clone(),
        plugin_dir: dir,
        ..Overrides::default()
    })?;
    let dir = config.plugins.dir.clone().ok_or_else(|| {
        anyhow::anyhow!("no plugin directory: pass --dir DIR or set [plugins] dir in the config")
    })?;
    let publishers = trusted_publishers(None, public, config_file)?;
    let limit = config.plugins.max_file_mb.saturating_mul(1024 * 1024);
    let mut lock = Lock::read(&dir)?;
    let lock_path = dir.join(crate::oci::LOCK_FILE);
    let references: Vec<String> = match reference {
        Some(reference) => vec![reference],
        None => lock.entries.iter().map(|e| e.reference.clone()).collect(),
    };
    if references.is_empty() {
        anyhow::bail!("{} records no plugin to pull", lock_path.display());
    }
    for reference in references {
        let registry = Registry::new(&reference, insecure)?;
        let resolved = registry.reference();
        let pinned = if locked {
            let entry = lock
                .get(&resolved)
                .ok_or_else(|| anyhow::anyhow!("{resolved} is not in {}", lock_path.display()))?;
            Some(entry.clone())
        } else {
            None
        };
        let pulled = registry
            .pull(limit, pinned.as_ref().map(|p| p.manifest.as_str()))
            .await?;
        let identity = crate::identity::identify(&pulled.bytes, None, &publishers);
        if !identity.trusted() {
            return Err(Refused(format!(
                "{resolved}: not written: {}; digest {}",
                identity.describe(),
                identity.digest
            ))
            .into());
        }
        let file = match &pinned {
            Some(pinned) if pinned.digest != identity.digest => {
                return Err(Refused(format!(
                    "{resolved}: not written: its component is {}, and the lock file has {}",
                    identity.digest, pinned.digest
                ))
                .into());
            }
            Some(pinned) => pinned.file.clone(),
            None => registry.file_name(),
        };
        let target = dir.join(&file);
        write_atomically(&target, &pulled.bytes)?;
        println!(
            "pulled {resolved} ({}), signed by {}, into {}",
            identity.digest,
            identity.describe(),
            target.display()
        );
        if pinned.is_none() {
            lock.record(Locked {
                reference: resolved,
                manifest: pulled.manifest,
                digest: identity.digest,
                file,
            });
            write_atomically(&lock_path, lock.render()?.as_bytes())?;
        }
    }
    Ok(())
}

/// `sluice plugins verify`: exits 1 (a [`Refused`]) unless a trusted
/// signature holds.
pub fn verify(
    file: &Path,
    publisher: Option<String>,
    public: Option<PathBuf>,
    config: Option<PathBuf>,
) -> anyhow::Result<()> {
    let publishers = trusted_publishers(publisher, public, config)?;
    let wasm = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut identity = crate::identity::identify(&wasm, None, &publishers);
    if identity.signature == crate::identity::Signature::Unsigned
        && let Some(detached) = crate::identity::read_detached(file)
            .with_context(|| format!("reading the detached signature of {}", file.display()))?
    {
        identity.signature = crate::identity::signature(&wasm, Some(&detached), &publishers);
    }
    if identity.trusted() {
        println!(
            "{}: signed by {}; digest {}",
            file.display(),
            identity.describe(),
            identity.digest
        );
        Ok(())
    } else {
        Err(Refused(format!(
            "{}: {}; digest {}",
            file.display(),
            identity.describe(),
            identity.digest
        ))
        .into())
    }
}
