//! Who published a plugin, and whether it changed since: Ed25519
//! signatures in the WebAssembly module-signature format (the `wasmsign2`
//! crate: a custom section at the front of the component, or the same bytes
//! detached), the operator's trusted publishers, and content digests.
//!
//! A signature covers every byte of the component after the signature
//! section, so changing one byte of code or manifest invalidates it.
//! Everything here is a pure function of bytes: the loader decides what an
//! identity earns ([`crate::registry`]).

use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use wasmsign2::{KeyPair, Module, PublicKey, PublicKeySet, SecretKey, WSError};

/// The file name suffix of a detached signature: `x.wasm.sig` signs
/// `x.wasm`.
pub const DETACHED_SUFFIX: &str = ".sig";
/// Where the detached signature of the plugin at `file` is: `file.sig`.
pub fn detached_path(file: &Path) -> PathBuf {
    let mut path = file.as_os_str().to_owned();
    path.push(DETACHED_SUFFIX);
    PathBuf::from(path)
}

/// The detached signature beside the plugin at `file`, if there is one,
/// read up to [`MAX_SIGNATURE_BYTES`] and one byte more (so that a larger
/// one is refused as such, not cut to size).
pub fn read_detached(file: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let signature = match std::fs::File::open(detached_path(file)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    signature
        .take(MAX_SIGNATURE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// The largest signature section or detached signature read. One signature
/// is about 100 bytes; this allows hundreds.
pub const MAX_SIGNATURE_BYTES: usize = 64 * 1024;

/// Why a key, a signature or a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{what}: not an Ed25519 public key (expected an OpenSSH `ssh-ed25519 …` line or PEM)")]
    PublicKey { what: String },
    #[error("{path}: not an Ed25519 secret key in PEM")]
    SecretKey { path: PathBuf },
    #[error("publishers {first} and {second} have the same key; each key names one publisher")]
    DuplicateKey { first: String, second: String },
    #[error("not a WebAssembly component or module: {0}")]
    Malformed(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A public key and its key id: the first 12 bytes of HMAC-SHA256 keyed
/// with `key_id` over the key, as `wasmsign2` derives it, in hex.
#[derive(Debug, Clone)]
pub struct Key {
    key: PublicKey,
    id: String,
}

impl Key {
    /// Parses a public key: an OpenSSH `ssh-ed25519` line (what `sluice
    /// plugins keygen` writes), PEM, or DER. `what` names it in errors.
    pub fn parse(text: &[u8], what: &str) -> Result<Key, IdentityError> {
        let key = PublicKey::from_any(text.trim_ascii()).map_err(|_| IdentityError::PublicKey {
            what: what.to_string(),
        })?;
        Ok(Key::new(key))
    }

    fn new(key: PublicKey) -> Key {
        let key = PublicKey {
            pk: key.pk,
            key_id: None,
        }
        .attach_default_key_id();
        let id = hex(key.key_id().map(Vec::as_slice).unwrap_or_default());
        Key { key, id }
    }

    /// The key id, in hex.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as one OpenSSH line, `ssh-ed25519 <base64> <comment>`.
    pub fn openssh(&self, comment: &str) -> String {
        use base64::Engine as _;
        const ALGORITHM: &[u8] = b"ssh-ed25519";
        let raw: &[u8] = self.key.pk.as_ref();
        let mut blob = Vec::with_capacity(4 + ALGORITHM.len() + 4 + raw.len());
        for part in [ALGORITHM, raw] {
            blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
            blob.extend_from_slice(part);
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(blob);
        format!("ssh-ed25519 {encoded} {comment}")
    }
}

/// The publishers the operator trusts, by name (`[plugins.publishers]`).
#[derive(Debug, Clone, Default)]
pub struct Publishers {
    keys: Vec<(String, Key)>,
}

impl Publishers {
    /// The publishers of `[plugins.publishers]`: each name's key, parsed.
    /// Two names with one key are an error: a signature must name one
    /// publisher.
    pub fn new(config: &BTreeMap<String, String>) -> Result<Publishers, IdentityError> {
        let mut keys: Vec<(String, Key)> = Vec::new();
        for (name, text) in config {
            let key = Key::parse(text.as_bytes(), &format!("[plugins.publishers] {name}"))?;
            if let Some((first, _)) = keys.iter().find(|(_, k)| k.id == key.id) {
                return Err(IdentityError::DuplicateKey {
                    first: first.clone(),
                    second: name.clone(),
                });
            }
            keys.push((name.clone(), key));
        }
        Ok(Publishers { keys })
    }

    /// One publisher, trusted for this check alone (`verify --pub`).
    pub fn single(name: &str, key: Key) -> Publishers {
        Publishers {
            keys: vec![(name.to_string(), key)],
        }
    }

    /// The key of publisher `name`.
    pub fn get(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|(n, _)| n == name).map(|(_, k)| k)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn name_of(&self, key_id: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(_, k)| k.id == key_id)
            .map(|(n, _)| n.as_str())
    }
}

/// A trusted publisher whose signature on a plugin verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub publisher: String,
    pub key_id: String,
}

/// What a plugin's signature says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// Built into the sluice binary, and trusted as the binary is.
    FirstParty,
    /// Declared tools: the operator's own file (or config table), served
    /// by the built-in `sql-tools`; configuration, trusted as the config is.
    Declared,
    /// No signature, embedded or detached.
    Unsigned,
    /// Signed, and verified by these trusted publishers' keys.
    Verified(Vec<Signer>),
    /// Signed by keys that no trusted publisher holds (their ids), so the
    /// signature proves nothing here.
    UnknownKey(Vec<String>),
    /// A signature that does not hold: made with a trusted publisher's key
    /// over different bytes (the file changed since it was signed), or
    /// malformed.
    Invalid(String),
}

/// Who a plugin is: its content digest and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sha256:<hex>` of the file's bytes, as a grant's `digest` names it.
    pub digest: String,
    pub signature: Signature,
}

impl Identity {
    /// A first-party plugin's identity.
    pub fn first_party(wasm: &[u8]) -> Identity {
        Identity {
            digest: digest(wasm),
            signature: Signature::FirstParty,
        }
    }

    /// The identity of declared tools whose declaration is `content` (the
    /// file's bytes): a grant's `digest` binds to the file.
    pub fn declared(content: &[u8]) -> Identity {
        Identity {
            digest: digest(content),
            signature: Signature::Declared,
        }
    }

    /// Whether `publisher` signed it.
    pub fn signed_by(&self, publisher: &str) -> bool {
        matches!(&self.signature, Signature::Verified(signers)
            if signers.iter().any(|s| s.publisher == publisher))
    }

    /// Whether a trusted publisher signed it, or it is first-party.
    pub fn trusted(&self) -> bool {
        matches!(
            self.signature,
            Signature::FirstParty | Signature::Declared | Signature::Verified(_)
        )
    }

    /// Its signature in a few words: `acme (key 1a2b…)`, `unsigned`, ….
    pub fn describe(&self) -> String {
        match &self.signature {
            Signature::FirstParty => "first-party (built into sluice)".to_string(),
            Signature::Declared => {
                "declared tools (the operator's, served by the built-in sql-tools)".to_string()
            }
            Signature::Unsigned => "unsigned".to_string(),
            Signature::Verified(signers) => signers
                .iter()
                .map(|s| format!("{} (key {})", s.publisher, s.key_id))
                .collect::<Vec<_>>()
                .join(", "),
            Signature::UnknownKey(ids) if ids.is_empty() => {
                "signed by an unknown key (no key id): not a trusted publisher's".to_string()
            }
            Signature::UnknownKey(ids) => format!(
                "signed by an unknown key ({}): not a trusted publisher's",
                ids.join(", ")
            ),
            Signature::Invalid(why) => format!("INVALID signature: {why}"),
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    digest_text(&Sha256::digest(bytes).into())
}

/// `sha256:<hex>` of a SHA-256 already computed.
fn digest_text(sha256: &[u8; 32]) -> String {
    format!("sha256:{}", hex(sha256))
}

/// Whether `text` is a digest as [`digest`] writes it.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Who signed `wasm`, by its embedded signature or `detached`, as far as
/// `publishers` tell. Malformed input gives [`Signature::Invalid`], never
/// a panic: every length in the file is checked against the bytes there
/// before the signature parser allocates for it.
pub fn identify(wasm: &[u8], detached: Option<&[u8]>, publishers: &Publishers) -> Identity {
    identify_hashed(&Sha256::digest(wasm).into(), wasm, detached, publishers)
}

/// [`identify`], with the SHA-256 of `wasm` already computed.
pub fn identify_hashed(
    sha256: &[u8; 32],
    wasm: &[u8],
    detached: Option<&[u8]>,
    publishers: &Publishers,
) -> Identity {
    Identity {
        digest: digest_text(sha256),
        signature: signature(wasm, detached, publishers),
    }
}

/// The signature part of [`identify`].
pub fn signature(wasm: &[u8], detached: Option<&[u8]>, publishers: &Publishers) -> Signature {
    let embedded = match framing::sections(wasm) {
        Ok(embedded) => embedded,
        Err(why) => return Signature::Invalid(why),
    };
    let header = match (detached, embedded) {
        (Some(bytes), _) => bytes,
        (None, Some(bytes)) => bytes,
        (None, None) => return Signature::Unsigned,
    };
    if let Err(why) = framing::signature_data(header) {
        return Signature::Invalid(format!("malformed signature: {why}"));
    }
    let info = match wasmsign2::signature_info_from_detached(header) {
        Ok(info) => info,
        Err(e) => return Signature::Invalid(format!("unreadable signature: {e}")),
    };
    if !info.is_signed() {
        return Signature::Unsigned;
    }
    let key_ids: Vec<String> = info.key_ids().iter().map(|id| hex(id)).collect();
    let mut set = PublicKeySet::empty();
    for (_, key) in &publishers.keys {
        // Ids are unique (checked when the publishers were read).
        let _ = set.insert(key.key.clone());
    }
    // wasmsign2 reads an embedded signature itself; a detached one is
    // checked against the file as it is.
    match set.verify(&mut Cursor::new(wasm), detached) {
        Ok(valid) => {
            let mut signers: Vec<Signer> = valid
                .into_iter()
                .filter_map(|pk| {
                    let id = hex(pk.key_id().map(Vec::as_slice).unwrap_or_default());
                    publishers.name_of(&id).map(|name| Signer {
                        publisher: name.to_string(),
                        key_id: id,
                    })
                })
                .collect();
            signers.sort_by(|a, b| a.publisher.cmp(&b.publisher));
            Signature::Verified(signers)
        }
        Err(WSError::NoSignatures) => Signature::Unsigned,
        Err(_) => {
            let known: Vec<&str> = key_ids
                .iter()
                .filter_map(|id| publishers.name_of(id))
                .collect();
            if known.is_empty() {
                Signature::UnknownKey(key_ids)
            } else {
                Signature::Invalid(format!(
                    "made with the key of {} but over other bytes: the file changed since it was signed",
                    known.join(", ")
                ))
            }
        }
    }
}

/// A new key pair for publisher `name`: `dir/NAME.key` (PEM, mode 0600)
/// and `dir/NAME.pub` (one OpenSSH line). Neither file may exist already.
/// Returns the public key.
pub fn keygen(dir: &Path, name: &str) -> Result<(Key, PathBuf, PathBuf), IdentityError> {
    let pair = KeyPair::generate();
    let key = Key::new(pair.pk);
    let secret_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    write_new(&secret_path, pair.sk.to_pem().as_bytes(), 0o600)?;
    let public = format!("{}\n", key.openssh(name));
    if let Err(e) = write_new(&public_path, public.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&secret_path);
        return Err(e);
    }
    Ok((key, secret_path, public_path))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), IdentityError> {
    use std::io::Write as _;
    let io = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// A secret key read from a PEM file that `keygen` wrote.
pub struct SigningKey {
    secret: SecretKey,
    public: Key,
}

impl SigningKey {
    pub fn read(path: &Path) -> Result<SigningKey, IdentityError> {
        let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = || IdentityError::SecretKey {
            path: path.to_path_buf(),
        };
        let secret = SecretKey::from_pem(&text).map_err(|_| bad())?;
        let public = Key::new(PublicKey {
            pk: secret.sk.public_key(),
            key_id: None,
        });
        Ok(SigningKey { secret, public })
    }

    pub fn public(&self) -> &Key {
        &self.public
    }

    /// `wasm` signed: the component with the signature section at its
    /// front (replacing any earlier one), and that section's payload, the
    /// detached signature.
    pub fn sign(&self, wasm: &[u8]) -> Result<(Vec<u8>, Vec<u8>), IdentityError> {
        framing::sections(wasm).map_err(IdentityError::Malformed)?;
        let module = Module::deserialize(&mut Cursor::new(wasm))
            .map_err(|e| IdentityError::Malformed(e.to_string()))?;
        let signed = self
            .secret
            .sign(module, self.public.key.key_id())
            .map_err(|e| IdentityError::Sign(e.to_string()))?;
        let mut out = Vec::with_capacity(wasm.len() + 256);
        signed
            .serialize(&mut out)
            .map_err(|e| IdentityError::Sign(e.to_string()))?;
        let detached = framing::sections(&out)
            .map_err(IdentityError::Sign)?
            .map(<[u8]>::to_vec)
            .ok_or_else(|| IdentityError::Sign("no signature section was written".into()))?;
        Ok((out, detached))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Bounds checks on the structures `wasmsign2` parses, made before it
/// parses them: it allocates each length it reads before reading the bytes,
/// so a forged length in a small file would ask for gigabytes.
mod framing {
    use super::MAX_SIGNATURE_BYTES;

    const MODULE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const COMPONENT: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    const SIGNATURE_SECTION: &[u8] = b"signature";
    /// wasmsign2's own caps on hashes and signatures.
    const MAX_COUNT: u32 = 64;

    struct Reader<'a> {
        bytes: &'a [u8],
    }

    impl<'a> Reader<'a> {
        fn byte(&mut self) -> Result<u8, String> {
            let (&b, rest) = self.bytes.split_first().ok_or("truncated")?;
            self.bytes = rest;
            Ok(b)
        }

        fn u32(&mut self) -> Result<u32, String> {
            let mut v: u32 = 0;
            for i in 0..5 {
                let b = self.byte()?;
                v |= u32::from(b & 0x7f) << (i * 7);
                if b & 0x80 == 0 {
                    return Ok(v);
                }
            }
            Err("a length is not a valid LEB128 u32".into())
        }

        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            if n > self.bytes.len() {
                return Err(format!(
                    "a length of {n} bytes runs past the end ({} left)",
                    self.bytes.len()
                ));
            }
            let (head, rest) = self.bytes.split_at(n);
            self.bytes = rest;
            Ok(head)
        }

        fn slice(&mut self) -> Result<&'a [u8], String> {
            let n = self.u32()? as usize;
            self.take(n)
        }

        fn count(&mut self) -> Result<u32, String> {
            let n = self.u32()?;
            if n > MAX_COUNT {
                return Err(format!("{n} entries, more than {MAX_COUNT}"));
            }
            Ok(n)
        }
    }

    /// Checks that every section's length fits in the file, and returns
    /// the embedded signature's payload: the first section, when it is the
    /// signature custom section.
    pub(super) fn sections(wasm: &[u8]) -> Result<Option<&[u8]>, String> {
        let mut r = Reader { bytes: wasm };
        let header = r.take(8).map_err(|_| "too short".to_string())?;
        if header != MODULE && header != COMPONENT {
            return Err("no WebAssembly header".into());
        }
        let mut embedded = None;
        let mut first = true;
        while !r.bytes.is_empty() {
            let id = r.byte()?;
            let payload = r.slice()?;
            if id == 0 {
                let mut p = Reader { bytes: payload };
                let name = p.slice()?;
                if name == SIGNATURE_SECTION && first {
                    if p.bytes.len() > MAX_SIGNATURE_BYTES {
                        return Err("the signature section is larger than 64 KiB".into());
                    }
                    embedded = Some(p.bytes);
                }
            }
            first = false;
        }
        Ok(embedded)
    }

    /// Checks a signature section's payload (the format of a detached
    /// signature) the way wasmsign2 will read it.
    pub(super) fn signature_data(bytes: &[u8]) -> Result<(), String> {
        if bytes.len() > MAX_SIGNATURE_BYTES {
            return Err("larger than 64 KiB".into());
        }
        let mut r = Reader { bytes };
        for _ in 0..3 {
            // Version, content type and hash function: one byte each.
            if r.byte()? & 0x80 != 0 {
                return Err("a header byte is not a 7-bit value".into());
            }
        }
        for _ in 0..r.count()? {
            let mut set = Reader { bytes: r.slice()? };
            let hashes = set.count()?;
            set.take(hashes as usize * 32)?;
            for _ in 0..set.count()? {
                let mut one = Reader {
                    bytes: set.slice()?,
                };
                one.slice()?; // key id
                one.byte()?; // algorithm
                one.slice()?; // signature
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: its header alone, then a custom section so
    /// there is content to sign.
    fn component() -> Vec<u8> {
        let mut wasm = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        let name = b"sluice-test";
        let body = b"some content";
        wasm.push(0);
        wasm.push((1 + name.len() + body.len()) as u8);
        wasm.push(name.len() as u8);
        wasm.extend_from_slice(name);
        wasm.extend_from_slice(body);
        wasm
    }

    fn signing_key(dir: &Path, name: &str) -> (SigningKey, Key) {
        let (key, secret, public) = keygen(dir, name).expect("keygen");
        let read = Key::parse(&std::fs::read(public).expect("pub"), "test").expect("parse");
        assert_eq!(read.id(), key.id());
        (SigningKey::read(&secret).expect("secret"), key)
    }

    fn publishers(entries: &[(&str, &Key)]) -> Publishers {
        let config: BTreeMap<String, String> = entries
            .iter()
            .map(|(n, k)| (n.to_string(), k.openssh(n)))
            .collect();
        Publishers::new(&config).expect("publishers")
    }

    #[test]
    fn a_signature_verifies_and_names_its_publisher() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (acme, acme_pub) = signing_key(dir.path(), "acme");
        let (_, other_pub) = signing_key(dir.path(), "other");
        let (signed, detached) = acme.sign(&component()).expect("sign");
        let trusted = publishers(&[("acme", &acme_pub), ("other", &other_pub)]);

        let id = identify(&signed, None, &trusted);
        assert!(id.signed_by("acme"), "{id:?}");
        assert!(!id.signed_by("other"));
        assert_eq!(id.digest, digest(&signed));
        // The same signature, detached, over the unsigned file.
        let id = identify(&component(), Some(&detached), &trusted);
        assert!(id.signed_by("acme"), "{id:?}");
        // Signing again replaces the signature instead of adding one.
        let (again, _) = acme.sign(&signed).expect("sign again");
        assert_eq!(again, signed);
    }

    #[test]
    fn any_changed_byte_after_the_signature_invalidates_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (acme, acme_pub) = signing_key(dir.path(), "acme");
        let trusted = publishers(&[("acme", &acme_pub)]);
        let (signed, _) = acme.sign(&component()).expect("sign");
        let content_start = signed.len() - component().len() + 8;
        for at in content_start..signed.len() {
            let mut changed = signed.clone();
            changed[at] ^= 0x01;
            let id = identify(&changed, None, &trusted);
            assert!(!id.trusted(), "byte {at} changed, still {id:?}");
        }
        let mut changed = signed.clone();
        *changed.last_mut().expect("bytes") ^= 0x20;
        assert!(matches!(
            identify(&changed, None, &trusted).signature,
            Signature::Invalid(_)
        ));
    }

    #[test]
    fn unknown_keys_and_unsigned_files_are_told_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (acme, acme_pub) = signing_key(dir.path(), "acme");
        let (_, other_pub) = signing_key(dir.path(), "other");
        let (signed, _) = acme.sign(&component()).expect("sign");
        let only_other = publishers(&[("other", &other_pub)]);
        assert_eq!(
            identify(&signed, None, &only_other).signature,
            Signature::UnknownKey(vec![acme_pub.id().to_string()])
        );
        assert_eq!(
            identify(&component(), None, &only_other).signature,
            Signature::Unsigned
        );
        assert_eq!(
            identify(&signed, None, &Publishers::default()).signature,
            Signature::UnknownKey(vec![acme_pub.id().to_string()])
        );
    }

    #[test]
    fn the_same_key_under_two_names_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, key) = signing_key(dir.path(), "acme");
        let config = BTreeMap::from([
            ("a".to_string(), key.openssh("a")),
            ("b".to_string(), key.openssh("b")),
        ]);
        assert!(matches!(
            Publishers::new(&config),
            Err(IdentityError::DuplicateKey { .. })
        ));
        let bad = BTreeMap::from([("a".to_string(), "ssh-ed25519 AAAA".to_string())]);
        assert!(Publishers::new(&bad).is_err());
    }

    #[test]
    fn keygen_does_not_overwrite_and_keeps_the_secret_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, secret, _) = keygen(dir.path(), "acme").expect("keygen");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&secret)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(keygen(dir.path(), "acme").is_err());
    }

    /// Every truncation, and forged lengths in the signature, give an
    /// answer without panicking or allocating for the forged length.
    #[test]
    fn malformed_signatures_are_refused_without_trusting_their_lengths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (acme, acme_pub) = signing_key(dir.path(), "acme");
        let trusted = publishers(&[("acme", &acme_pub)]);
        let (signed, detached) = acme.sign(&component()).expect("sign");
        for end in 0..signed.len() {
            let id = identify(&signed[..end], None, &trusted);
            assert!(!id.trusted(), "truncated at {end}");
        }
        for end in 0..detached.len() {
            let id = identify(&component(), Some(&detached[..end]), &trusted);
            assert!(!id.trusted(), "detached truncated at {end}");
        }
        // Each byte of the detached signature set to a LEB128 prefix of a
        // huge length.
        for at in 0..detached.len() {
            let mut forged = detached.clone();
            forged[at] = 0xff;
            forged.splice(at + 1..at + 1, [0xff, 0xff, 0xff, 0x0f]);
            let id = identify(&component(), Some(&forged), &trusted);
            assert!(!id.trusted(), "forged at {at}");
            // The count of signed hash sets, and the length of the first.
            if at == 3 || at == 4 {
                assert!(framing::signature_data(&forged).is_err(), "forged at {at}");
            }
        }
        assert!(framing::sections(b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f").is_err());
        assert!(is_digest(&digest(b"x")));
        assert!(!is_digest("sha256:XYZ"));
    }
}
