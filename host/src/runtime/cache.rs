//! Compiled components on disk, so a restart compiles nothing it compiled
//! before.
//!
//! An entry's name is a SHA-256 of the component's bytes and of wasmtime's
//! `precompile_compatibility_hash` (the wasmtime version and every engine
//! setting that shapes the code), so a changed plugin, a new wasmtime or a
//! different engine config misses instead of loading stale code. Entries
//! beyond the size cap are evicted least recently used first.
//!
//! Entries are native code that is loaded without verification: the
//! directory is created private (0700) and must be writable by sluice alone.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from the cache: nothing compiled.
    CacheHit,
    /// Compiled and written to the cache.
    CacheMiss,
    /// Compiled; there is no cache.
    Uncached,
}

/// The on-disk cache of compiled components.
#[derive(Debug, Clone)]
pub struct CompiledCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash
/// becomes part of a stable file name.
struct Sha(Sha256);

impl Hasher for Sha {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

const SUFFIX: &str = ".cwasm";

impl CompiledCache {
    /// Opens (creating) the cache directory.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<CompiledCache> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            max_bytes,
        })
    }

    fn entry(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let mut sha = Sha(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut sha);
        sha.0.update(wasm);
        let digest = sha.0.finalize();
        let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}{SUFFIX}"))
    }

    /// Whether `wasm` has an entry for `engine` (it may still prove
    /// unusable when loaded).
    pub fn contains(&self, engine: &Engine, wasm: &[u8]) -> bool {
        self.entry(engine, wasm).is_file()
    }

    /// The component for `wasm`: from the cache, or compiled and stored.
    /// Blocking; a broken or unwritable entry only costs a compile.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, Origin)> {
        let path = self.entry(engine, wasm);
        if path.is_file() {
            // SAFETY: entries are written only by `store` below from
            // `Component::serialize`, in a directory only sluice may write
            // (see the module docs); the name binds them to this engine.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    // Touched, so eviction drops the least recently used.
                    if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                        let _ = file.set_modified(SystemTime::now());
                    }
                    return Ok((component, Origin::CacheHit));
                }
                Err(e) => {
                    tracing::warn!(entry = %path.display(), "unusable compiled-cache entry, recompiling: {e:#}")
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        match self.store(&path, &component) {
            Ok(()) => self.evict(&path),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), "cannot write the compiled cache: {e:#}")
            }
        }
        Ok((component, Origin::CacheMiss))
    }

    /// Writes atomically: a concurrent reader sees the whole entry or none.
    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let bytes = component.serialize()?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.persist(path)?;
        Ok(())
    }

    /// Removes the least recently used entries until the cache fits its cap,
    /// keeping `newest` (just written) whatever its size.
    fn evict(&self, newest: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(SUFFIX) && e.path() != newest)
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let newest_len = std::fs::metadata(newest).map_or(0, |m| m.len());
        let mut total: u64 = newest_len + files.iter().map(|f| f.1).sum::<u64>();
        files.sort();
        for (_, len, path) in files {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn second_load_is_a_hit_and_a_changed_engine_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompiledCache::open(dir.path(), u64::MAX).unwrap();
        let wasm = wat_component();
        let engine = engine();
        assert_eq!(
            cache.load_or_compile(&engine, &wasm).unwrap().1,
            Origin::CacheMiss
        );
        assert_eq!(
            cache.load_or_compile(&engine, &wasm).unwrap().1,
            Origin::CacheHit
        );
        let mut other = wasmtime::Config::new();
        other
            .wasm_component_model(true)
            .cranelift_opt_level(wasmtime::OptLevel::None);
        let other = Engine::new(&other).unwrap();
        assert_eq!(
            cache.load_or_compile(&other, &wasm).unwrap().1,
            Origin::CacheMiss
        );
        // A corrupt entry is recompiled, not trusted.
        std::fs::write(cache.entry(&engine, &wasm), b"garbage").unwrap();
        assert_eq!(
            cache.load_or_compile(&engine, &wasm).unwrap().1,
            Origin::CacheMiss
        );
    }

    #[test]
    fn eviction_keeps_the_cache_under_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        // Room for nothing: each new entry evicts the ones before it.
        let cache = CompiledCache::open(dir.path(), 1).unwrap();
        cache.load_or_compile(&engine, &wat_component()).unwrap();
        // Component::new reads the text format too (wasmtime's `wat` feature).
        let second = b"(component (core module))".to_vec();
        cache.load_or_compile(&engine, &second).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].path(), cache.entry(&engine, &second));
    }

    fn wat_component() -> Vec<u8> {
        b"(component (core module (func (export \"f\") (result i32) i32.const 42)))".to_vec()
    }
}
