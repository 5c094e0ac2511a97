//! Plugin identity: `sluice plugins keygen/sign/verify`, signatures
//! required once publishers are trusted, grants bound to a publisher or a
//! digest, `plugins check` showing who published each plugin, and hot
//! reload verifying a replaced file again.

use crate::support::{fresh_db, plugin_wasm, spawn_at, text_of};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs `sluice <args…>` in `work` (whose `sluice.toml`, if any, is the
/// config); (exit code, stdout, stderr).
fn sluice(work: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(work)
        .stdin(Stdio::null())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Makes publisher `name`'s key pair in `work`; returns its public key line.
fn keygen(work: &Path, name: &str) -> String {
    let (code, out, err) = sluice(work, &["plugins", "keygen", name]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::read_to_string(work.join(format!("{name}.pub")))
        .unwrap()
        .trim()
        .to_string()
}

/// Copies the built plugin `package` to `dir/file`, signed with
/// `work/key.key` when `key` is given.
fn place(work: &Path, package: &str, dir: &Path, file: &str, key: Option<&str>) -> PathBuf {
    let path = dir.join(file);
    std::fs::copy(plugin_wasm(package), &path).unwrap();
    if let Some(key) = key {
        let key = format!("{key}.key");
        let (code, out, err) = sluice(
            work,
            &["plugins", "sign", path.to_str().unwrap(), "--key", &key],
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    path
}

/// `sluice plugins check --plugins dir` with `config`; (exit code, stdout).
fn check(work: &Path, config: &str, dir: &Path) -> (i32, String) {
    std::fs::write(work.join("sluice.toml"), config).unwrap();
    let (code, out, err) = sluice(
        work,
        &["plugins", "check", "--plugins", dir.to_str().unwrap()],
    );
    (code, format!("{out}\n--- log ---\n{err}"))
}

/// The block of `check` output about plugin `name`, or about the file
/// `source` when it failed.
fn block<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in:\n{text}"));
    let rest = &text[at..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn keygen_sign_and_verify_and_a_changed_byte_fails() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (code, out, err) = sluice(w, &["plugins", "keygen", "acme"]);
    assert_eq!(code, 0, "{out}{err}");
    let public = std::fs::read_to_string(w.join("acme.pub")).unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert!(
        out.contains(&format!("acme = \"{}\"", public.trim())),
        "keygen prints the config entry:\n{out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(w.join("acme.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, _, err) = sluice(w, &["plugins", "keygen", "acme"]);
    assert_eq!(code, 1, "an existing key is never overwritten");
    assert!(err.contains("acme.key"), "{err}");
    keygen(w, "other");

    let plugin = place(w, "hello", w, "hello.wasm", Some("acme"));
    let file = plugin.to_str().unwrap();
    let (code, out, err) = sluice(w, &["plugins", "verify", file, "--pub", "acme.pub"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("signed by acme (key "), "{out}");
    assert!(out.contains("sha256:"), "{out}");
    let (code, out, err) = sluice(w, &["plugins", "verify", file, "--pub", "other.pub"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("unknown key"), "{err}");

    // One byte of code changed after signing.
    let mut bytes = std::fs::read(&plugin).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0x01;
    std::fs::write(&plugin, &bytes).unwrap();
    let (code, out, err) = sluice(w, &["plugins", "verify", file, "--pub", "acme.pub"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("changed since it was signed"), "{err}");

    // Detached: the file is left as it was, and its `.sig` is found.
    let detached = w.join("detached");
    std::fs::create_dir(&detached).unwrap();
    let plain = place(w, "hello", &detached, "hello.wasm", None);
    let (code, out, err) = sluice(
        w,
        &[
            "plugins",
            "sign",
            plain.to_str().unwrap(),
            "--key",
            "acme.key",
            "--detached",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(plugin_wasm("hello")).unwrap()
    );
    assert!(detached.join("hello.wasm.sig").is_file());
    let (code, out, err) = sluice(
        w,
        &[
            "plugins",
            "verify",
            plain.to_str().unwrap(),
            "--pub",
            "acme.pub",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");

    // --publisher names a key of the config's [plugins.publishers].
    std::fs::write(
        w.join("sluice.toml"),
        format!("[plugins.publishers]\nacme = \"{}\"\n", public.trim()),
    )
    .unwrap();
    let (code, out, err) = sluice(
        w,
        &[
            "plugins",
            "verify",
            plain.to_str().unwrap(),
            "--publisher",
            "acme",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = sluice(w, &["plugins", "verify", file, "--publisher", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("nobody") && err.contains("acme"), "{err}");
}

#[test]
fn trusted_publishers_make_signatures_required() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let acme = keygen(w, "acme");
    keygen(w, "stranger");
    let dir = tempfile::tempdir().unwrap();
    place(w, "hello", dir.path(), "hello.wasm", Some("acme"));
    place(w, "test-reporter", dir.path(), "reporter.wasm", None);
    place(
        w,
        "test-trapper",
        dir.path(),
        "trapper.wasm",
        Some("stranger"),
    );
    // Signed by acme, then one byte of its code changed.
    let changed = place(w, "test-looper", dir.path(), "looper.wasm", Some("acme"));
    let mut bytes = std::fs::read(&changed).unwrap();
    let at = bytes.len() - 500;
    bytes[at] ^= 0x01;
    std::fs::write(&changed, &bytes).unwrap();
    let config = format!("[plugins.publishers]\nacme = \"{acme}\"\n");

    let (code, text) = check(w, &config, dir.path());
    assert_eq!(code, 1, "{text}");
    let hello = block(&text, "hello ");
    assert!(hello.contains("publisher acme (key "), "{hello}");
    assert!(hello.contains("digest    sha256:"), "{hello}");
    let unsigned = block(
        &text,
        &dir.path().join("reporter.wasm").display().to_string(),
    );
    assert!(
        unsigned.contains("FAILED: refused: its signature is unsigned")
            && unsigned.contains("require_signature = false"),
        "{unsigned}"
    );
    let stranger = block(
        &text,
        &dir.path().join("trapper.wasm").display().to_string(),
    );
    assert!(stranger.contains("signed by an unknown key"), "{stranger}");
    let looper = block(&text, &dir.path().join("looper.wasm").display().to_string());
    assert!(
        looper.contains("INVALID signature") && looper.contains("changed since it was signed"),
        "{looper}"
    );
    assert!(
        !text.contains("\ntest-trapper "),
        "a refused plugin is never described:\n{text}"
    );

    // Opting out: unsigned files load, and say so.
    let (code, text) = check(
        w,
        &format!("{config}[plugins]\nrequire_signature = false\n"),
        dir.path(),
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        block(&text, "test-reporter ").contains("publisher unsigned"),
        "{text}"
    );
    // First-party plugins are trusted as the binary is.
    assert!(
        block(&text, "sql-read ").contains("publisher first-party"),
        "{text}"
    );

    // Signatures required with no publisher to trust: every file refused,
    // and the log says why before the refusals do.
    let (code, text) = check(w, "[plugins]\nrequire_signature = true\n", dir.path());
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("require_signature = true and no [plugins.publishers]"),
        "{text}"
    );
    assert!(!text.contains("\nhello "), "{text}");

    // A grant naming a publisher that is not configured is a config error.
    let (code, text) = check(
        w,
        &format!("{config}[plugins.grants.hello]\npublisher = \"acmee\"\n"),
        dir.path(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "publisher \"acmee\" is not a [plugins.publishers] entry; the publishers are acme"
        ),
        "{text}"
    );
}

#[test]
fn a_bound_grant_applies_only_to_its_publisher_or_digest() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let acme = keygen(w, "acme");
    let other = keygen(w, "other");
    let dir = tempfile::tempdir().unwrap();
    place(
        w,
        "test-reporter",
        dir.path(),
        "reporter.wasm",
        Some("other"),
    );
    let publishers = format!("[plugins.publishers]\nacme = \"{acme}\"\nother = \"{other}\"\n");
    let grant = "[plugins.grants.test-reporter]\nread = [\"public.books\", \"public.authors\"]\ncatalog = true\n";

    // Bound to acme, claimed by a plugin other signed: nothing granted.
    let (code, text) = check(
        w,
        &format!("{publishers}{grant}publisher = \"acme\"\n"),
        dir.path(),
    );
    assert_eq!(code, 1, "{text}");
    let reporter = block(&text, "test-reporter ");
    assert!(reporter.contains("publisher other (key "), "{reporter}");
    assert!(
        reporter.contains(
            "WITHHELD  [plugins.grants.test-reporter] is bound to publisher acme, and this plugin's signature is other"
        ),
        "{reporter}"
    );
    assert!(reporter.contains("effective: -"), "{reporter}");
    assert!(text.contains("grant withheld"), "the log says why:\n{text}");

    // Bound to its real publisher: granted.
    let (code, text) = check(
        w,
        &format!("{publishers}{grant}publisher = \"other\"\n"),
        dir.path(),
    );
    assert_eq!(code, 0, "{text}");
    let reporter = block(&text, "test-reporter ");
    assert!(reporter.contains("effective: public.books"), "{reporter}");
    let digest = reporter
        .lines()
        .find_map(|l| l.trim().strip_prefix("digest    "))
        .unwrap()
        .to_string();

    // Bound to its digest: granted; to another digest: withheld.
    let (code, text) = check(
        w,
        &format!("{publishers}{grant}digest = \"{digest}\"\n"),
        dir.path(),
    );
    assert_eq!(code, 0, "{text}");
    let wrong = format!("sha256:{}", "0".repeat(64));
    let (code, text) = check(
        w,
        &format!("{publishers}{grant}digest = \"{wrong}\"\n"),
        dir.path(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        block(&text, "test-reporter ").contains(&format!(
            "is bound to digest {wrong}, and this plugin is {digest}"
        )),
        "{text}"
    );
    let (code, text) = check(
        w,
        &format!("{publishers}{grant}digest = \"sha256:abc\"\n"),
        dir.path(),
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("digest \"sha256:abc\" must be sha256:"),
        "{text}"
    );

    // Two plugins of one name from two publishers, the impostor's file
    // sorting first: the bound one gets the grant and is served.
    let both = tempfile::tempdir().unwrap();
    place(
        w,
        "test-reporter",
        both.path(),
        "a-impostor.wasm",
        Some("other"),
    );
    place(w, "test-reporter", both.path(), "b-real.wasm", Some("acme"));
    let (code, text) = check(
        w,
        &format!("{publishers}{grant}publisher = \"acme\"\n"),
        both.path(),
    );
    assert_eq!(code, 1, "the impostor is reported:\n{text}");
    let impostor = block(&text, "a-impostor.wasm)");
    assert!(impostor.contains("WITHHELD"), "{impostor}");
    let real = block(&text, "b-real.wasm)");
    assert!(real.contains("publisher acme (key "), "{real}");
    assert!(real.contains("effective: public.books"), "{real}");
    assert!(
        !real.contains("WITHHELD") && !real.contains("idle"),
        "{real}"
    );
    assert!(!text.contains("already loaded"), "{text}");

    // The default reader, bound to a publisher that did not sign it, gets
    // nothing either: not even its default `public.*`.
    let (code, text) = check(
        w,
        &format!("{publishers}[plugins.grants.sql-read]\npublisher = \"acme\"\n"),
        dir.path(),
    );
    assert_eq!(code, 1, "{text}");
    let reader = block(&text, "sql-read ");
    assert!(reader.contains("WITHHELD  [plugins.grants.sql-read] is bound to publisher acme, and this plugin's signature is first-party"), "{reader}");
    assert!(
        reader.contains("granted: -              effective: -"),
        "{reader}"
    );
    assert!(
        reader.contains("catalog   requested: yes            granted: no"),
        "{reader}"
    );
}

#[tokio::test]
async fn a_replaced_file_that_fails_verification_leaves_the_previous_version_serving() {
    let db = fresh_db().await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let acme = keygen(w, "acme");
    let dir = tempfile::tempdir().unwrap();
    place(w, "hello", dir.path(), "hello.wasm", Some("acme"));
    let log_path = w.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let config = format!("[plugins.publishers]\nacme = \"{acme}\"\n");
    let server = spawn_at(&db.url, &config, Some(dir.path()), Stdio::from(log)).await;
    let hi = server.call("hello", json!({"name": "Ada"})).await;
    assert_eq!(text_of(&hi), "Hello, Ada!");

    // An unsigned copy replaces it, and a signed plugin arrives in the
    // same change, which tells us the rescan ran.
    let seen = server.tool_list_changes();
    let staging = tempfile::tempdir().unwrap();
    let unsigned = place(w, "hello", staging.path(), "hello.wasm", None);
    std::fs::rename(&unsigned, dir.path().join("hello.wasm")).unwrap();
    let trapper = place(
        w,
        "test-trapper",
        staging.path(),
        "trapper.wasm",
        Some("acme"),
    );
    std::fs::rename(&trapper, dir.path().join("trapper.wasm")).unwrap();
    server.wait_tool_list_changed(seen).await;
    let hi = server.call("hello", json!({"name": "Grace"})).await;
    assert_eq!(text_of(&hi), "Hello, Grace!");
    server.shutdown().await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("previous version keeps serving")
                && l.contains("hello.wasm")
                && l.contains("its signature is unsigned")),
        "{log}"
    );
}

/// A throwaway OCI registry (Debian's `docker-registry`, the CNCF
/// distribution registry) on a loopback port, storing into a temporary
/// directory; stopped when dropped.
struct OciRegistry {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a registry, or `None` when `docker-registry` is not installed
/// (outside CI only: `.ci/run` installs it, and there it must run).
fn start_registry() -> Option<OciRegistry> {
    if !crate::support::tool_available(
        "docker-registry",
        "Debian package docker-registry",
        "the OCI registry tests",
    ) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let registry = OciRegistry {
        child,
        addr,
        _dir: dir,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        use std::io::{Read as _, Write as _};
        let answer = std::net::TcpStream::connect(&registry.addr).and_then(|mut s| {
            s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        });
        if answer.is_ok_and(|t| t.starts_with("HTTP/1.0 200") || t.starts_with("HTTP/1.1 200")) {
            return Some(registry);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "docker-registry did not start on {}",
            registry.addr
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The file the registry keeps a blob in (the distribution registry's
/// filesystem layout).
fn blob_path(registry: &OciRegistry, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    registry
        ._dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// The `digest` line of `sluice plugins pull`'s output: `(sha256:…)`.
fn pulled_digest(out: &str) -> String {
    let start = out.find("(sha256:").unwrap_or_else(|| panic!("{out}")) + 1;
    out[start..start + 71].to_string()
}

#[tokio::test]
async fn plugins_travel_through_an_oci_registry_and_only_trusted_ones_land() {
    let Some(registry) = start_registry() else {
        return;
    };
    let db = fresh_db().await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let acme = keygen(w, "acme");
    keygen(w, "mallory");
    let staging = tempfile::tempdir().unwrap();
    let hello = place(w, "hello", staging.path(), "hello.wasm", Some("acme"));
    let unsigned = place(w, "hello", staging.path(), "plain.wasm", None);
    let forged = place(
        w,
        "test-trapper",
        staging.path(),
        "forged.wasm",
        Some("mallory"),
    );
    let reference = |repo: &str| format!("{}/plugins/{repo}:1.0", registry.addr);
    let push = |file: &Path, to: &str| sluice(w, &["plugins", "push", file.to_str().unwrap(), to]);

    // Push: only a file that carries its signature.
    let (code, out, err) = push(&hello, &reference("hello"));
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = push(&unsigned, &reference("plain"));
    assert_eq!(code, 1);
    assert!(err.contains("carries no signature"), "{err}");
    let (code, out, err) = push(&forged, &reference("trapper"));
    assert_eq!(code, 0, "{out}{err}");

    // A serving sluice trusts acme and watches the plugin directory.
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[plugins]\ndir = {:?}\n\n[plugins.publishers]\nacme = \"{acme}\"\n",
        dir.path()
    );
    std::fs::write(w.join("sluice.toml"), &config).unwrap();
    let server = spawn_at(&db.url, &config, None, Stdio::null()).await;
    let seen = server.tool_list_changes();

    // Mallory's plugin is fetched, checked, and not written.
    let (code, out, err) = sluice(w, &["plugins", "pull", &reference("trapper")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("not written") && err.contains("unknown key"),
        "{err}"
    );
    assert!(!dir.path().join("trapper.wasm").exists());

    // Sign, push, pull, serve, call: acme's lands byte for byte, and the
    // server serves it.
    let (code, out, err) = sluice(w, &["plugins", "pull", &reference("hello")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("signed by acme (key "), "{out}");
    let digest = pulled_digest(&out);
    assert_eq!(
        std::fs::read(dir.path().join("hello.wasm")).unwrap(),
        std::fs::read(&hello).unwrap()
    );
    server.wait_tool_list_changed(seen).await;
    let hi = server.call("hello", json!({"name": "Ada"})).await;
    assert_eq!(text_of(&hi), "Hello, Ada!");
    server.shutdown().await;
    let lock = std::fs::read_to_string(dir.path().join("plugins.lock")).unwrap();
    assert!(
        lock.contains(&reference("hello")) && lock.contains(&digest) && lock.contains("hello.wasm"),
        "{lock}"
    );
    assert!(
        !lock.contains("trapper"),
        "a refused pull is not locked:\n{lock}"
    );

    // The same layout read back with --locked, after the file is gone.
    std::fs::remove_file(dir.path().join("hello.wasm")).unwrap();
    let (code, out, err) = sluice(w, &["plugins", "pull", "--locked"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(dir.path().join("hello.wasm")).unwrap(),
        std::fs::read(&hello).unwrap()
    );

    // The tag moves (acme signs and pushes other content under it):
    // --locked refuses, and the file stays as it was.
    let moved = place(w, "test-looper", staging.path(), "moved.wasm", Some("acme"));
    let (code, out, err) = push(&moved, &reference("hello"));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = sluice(w, &["plugins", "pull", &reference("hello"), "--locked"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("moved: the lock file has sha256:"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("hello.wasm")).unwrap(),
        std::fs::read(&hello).unwrap()
    );
    let (code, _, err) = sluice(
        w,
        &["plugins", "pull", &reference("never-pulled"), "--locked"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("is not in"), "{err}");

    // Tampered with in the registry: the blob no longer matches its
    // digest, the pull fails, and nothing is written.
    let (code, out, err) = push(&hello, &reference("tampered"));
    assert_eq!(code, 0, "{out}{err}");
    let blob = blob_path(&registry, &digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let (code, out, err) = sluice(
        w,
        &[
            "plugins",
            "pull",
            &reference("tampered"),
            "--dir",
            elsewhere.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("Invalid digest"), "{err}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);

    // An explicit key trusts mallory for one pull; an unknown tag fails.
    let other = tempfile::tempdir().unwrap();
    let (code, out, err) = sluice(
        w,
        &[
            "plugins",
            "pull",
            &reference("trapper"),
            "--dir",
            other.path().to_str().unwrap(),
            "--pub",
            "mallory.pub",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(other.path().join("trapper.wasm").is_file());
    let (code, _, err) = sluice(w, &["plugins", "pull", &reference("nothing")]);
    assert_eq!(code, 1);
    assert!(err.to_lowercase().contains("manifest unknown"), "{err}");
}

/// An unsigned copy of the real sql-write, dropped in while signatures are
/// required and a write grant waits for its name: refused, never served,
/// and the table is unchanged.
#[tokio::test]
async fn an_unsigned_plugin_claiming_a_write_grant_changes_nothing() {
    use sqlx::Connection as _;
    let db = fresh_db().await;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let acme = keygen(w, "acme");
    let dir = tempfile::tempdir().unwrap();
    let log_path = w.join("serve.log");
    let config = format!(
        "[plugins]\nfirst_party = false\nexpected = [\"sql-write\"]\n\n[plugins.publishers]\nacme = \"{acme}\"\n\n\
         [plugins.grants.sql-write]\nwrite = [\"public.books\"]\n"
    );
    let server = spawn_at(
        &db.url,
        &config,
        Some(dir.path()),
        Stdio::from(std::fs::File::create(&log_path).unwrap()),
    )
    .await;
    let count = || async {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM books")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    let before = count().await;
    let staging = tempfile::tempdir().unwrap();
    let impostor = place(w, "sql-write", staging.path(), "sql-write.wasm", None);
    std::fs::rename(&impostor, dir.path().join("sql-write.wasm")).unwrap();
    // A signed plugin in the same change tells us the rescan ran.
    let seen = server.tool_list_changes();
    let marker = place(w, "hello", staging.path(), "hello.wasm", Some("acme"));
    std::fs::rename(&marker, dir.path().join("hello.wasm")).unwrap();
    server.wait_tool_list_changed(seen).await;
    let tools: Vec<String> = server
        .list_tools()
        .await
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(tools.contains(&"hello".to_string()), "{tools:?}");
    assert!(!tools.contains(&"insert_record".to_string()), "{tools:?}");
    let refused = server
        .try_call(
            "insert_record",
            json!({"table": "books", "data": {"title": "Impostor", "author_id": 1}}),
        )
        .await;
    assert!(
        refused.is_err() || refused.as_ref().is_ok_and(|r| r.is_error == Some(true)),
        "{refused:?}"
    );
    server.shutdown().await;
    assert_eq!(count().await, before);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("sql-write.wasm")
                && l.contains("refused: its signature is unsigned")),
        "{log}"
    );
}
