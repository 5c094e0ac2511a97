//! Checks that the Rust toolchain building sluice has the `wasm32-wasip2`
//! target its plugins are built for, and adds it with rustup where it can.
//!
//! This crate's build script runs the check as early as cargo schedules it
//! (the crate has no dependencies to wait for); `sluice-plugin-build` runs it
//! again right before building the plugins, in case the target went away
//! after the build script last ran.

mod wasm_target;

pub use wasm_target::{Ensured, TARGET, TargetError, Toolchain, ensure, ensure_for, libdir};

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// Held by each test for its whole run. A test writing a script while
    /// another forks lets the child inherit the script's open file between
    /// fork and exec, and running the script then fails with ETXTBSY ("Text
    /// file busy"); one test at a time avoids that.
    fn serial() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A shell script at `dir/name`.
    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// A fake toolchain under `root/toolchains/stable-test`: a `rustc` that
    /// prints its sysroot, and a `rustup` that runs `rustup_body`.
    fn fake(root: &Path, rustup_body: Option<&str>) -> (Toolchain, std::path::PathBuf) {
        let sysroot = root.join("toolchains").join("stable-test");
        std::fs::create_dir_all(sysroot.join("bin")).expect("mkdir");
        let rustc = script(
            &sysroot.join("bin"),
            "rustc",
            &format!("echo '{}'", sysroot.display()),
        );
        let rustup = rustup_body.map(|body| script(root, "rustup", body));
        (
            Toolchain {
                rustc: rustc.into(),
                rustup,
                rustup_toolchain: Some("stable".into()),
            },
            sysroot,
        )
    }

    fn install(sysroot: &Path) {
        let lib = libdir(sysroot);
        std::fs::create_dir_all(&lib).expect("mkdir");
        std::fs::write(lib.join("libcore-0123.rlib"), "").expect("write");
    }

    #[test]
    fn an_installed_target_is_left_alone() {
        let _serial = serial();
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        let (toolchain, sysroot) = fake(root, Some("exit 7"));
        install(&sysroot);
        assert_eq!(
            ensure_for(&toolchain),
            Ok(Ensured::Present {
                sysroot: sysroot.clone()
            })
        );
    }

    #[test]
    fn rustup_adds_a_missing_target_to_the_toolchain_in_use() {
        let _serial = serial();
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        let args = root.join("args");
        let sysroot = root.join("toolchains").join("stable-test");
        let body = format!(
            "echo \"$@\" > '{}'\nmkdir -p '{lib}' && touch '{lib}/libcore-abc.rlib'",
            args.display(),
            lib = libdir(&sysroot).display()
        );
        let (toolchain, sysroot) = fake(root, Some(&body));
        assert_eq!(
            ensure_for(&toolchain),
            Ok(Ensured::Added {
                sysroot,
                toolchain: "stable-test".into()
            })
        );
        // The toolchain is named by its directory, not the proxy's `stable`.
        assert_eq!(
            std::fs::read_to_string(args).expect("rustup ran").trim(),
            "target add wasm32-wasip2 --toolchain stable-test"
        );
    }

    #[test]
    fn a_failing_rustup_is_one_line_that_says_what_to_run() {
        let _serial = serial();
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        let (toolchain, _) = fake(
            root,
            Some(
                "echo 'info: downloading component' >&2\necho 'error: could not download file' >&2\nexit 1",
            ),
        );
        let error = ensure_for(&toolchain).expect_err("rustup failed");
        let text = error.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.contains("`rustup target add wasm32-wasip2 --toolchain stable-test` failed")
                && text.contains("error: could not download file")
                && text.ends_with("run it yourself, then build again"),
            "{text}"
        );
    }

    #[test]
    fn without_rustup_the_error_says_what_to_install() {
        let _serial = serial();
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        let (toolchain, sysroot) = fake(root, None);
        let error = ensure_for(&toolchain).expect_err("no rustup");
        assert_eq!(error, TargetError::NoRustup { sysroot });
        assert!(
            error
                .to_string()
                .contains("(with rustup: `rustup target add wasm32-wasip2`)"),
            "{error}"
        );

        // A toolchain outside rustup's directory, with no proxy name.
        let plain = tempfile::tempdir().expect("tempdir");
        let plain = plain.path();
        let rustc = script(plain, "rustc", &format!("echo '{}'", plain.display()));
        let unmanaged = Toolchain {
            rustc: rustc.into(),
            rustup: Some(script(plain, "rustup", "exit 0")),
            rustup_toolchain: None,
        };
        assert!(matches!(
            ensure_for(&unmanaged),
            Err(TargetError::NoRustup { .. })
        ));
    }

    #[test]
    fn a_broken_rustc_is_reported() {
        let _serial = serial();
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path();
        let toolchain = Toolchain {
            rustc: root.join("no-such-rustc").into(),
            rustup: None,
            rustup_toolchain: None,
        };
        assert!(matches!(
            ensure_for(&toolchain),
            Err(TargetError::Rustc { .. })
        ));
    }
}
