//! Section 3: from spawning `sluice serve` to the first `tools/list`
//! answered over stdio, with the compiled cache cold and warm.

use crate::stats::{Samples, Table};
use anyhow::{Context as _, bail};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// What a desktop host sends first: initialize, initialized, tools/list.
const HANDSHAKE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
    "\n",
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    "\n",
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#,
    "\n",
);

/// One start: the time to the tools/list answer, and how many tools it had.
async fn start_once(url: &str, config: &Path) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--database-url")
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("spawning sluice")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    stdin.write_all(HANDSHAKE.as_bytes()).await?;
    stdin.flush().await?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let answer = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.next_line().await? {
            let message: serde_json::Value = serde_json::from_str(&line)?;
            if message["id"] == 2 {
                return Ok::<_, anyhow::Error>(message);
            }
        }
        bail!("sluice closed stdout before answering tools/list")
    })
    .await
    .context("no tools/list answer within 300 s")??;
    let elapsed = started.elapsed();
    let tools = answer["result"]["tools"]
        .as_array()
        .with_context(|| format!("tools/list failed: {answer}"))?
        .len();
    drop(stdin);
    child.kill().await?;
    Ok((elapsed, tools))
}

pub async fn run(
    url: &str,
    plugin_dir: &Path,
    generated: &[String],
    plugins: usize,
    quick: bool,
) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let config_for = |cache: &Path, name: &str| -> anyhow::Result<std::path::PathBuf> {
        let path = work.path().join(name);
        std::fs::write(
            &path,
            crate::setup::config_toml(plugin_dir, cache, generated),
        )?;
        Ok(path)
    };

    let cold_runs = if quick { 1 } else { 3 };
    let mut cold = Vec::new();
    let mut tools = 0;
    for run in 0..cold_runs {
        let cache = work.path().join(format!("cold-cache-{run}"));
        let (elapsed, n) =
            start_once(url, &config_for(&cache, &format!("cold-{run}.toml"))?).await?;
        cold.push(elapsed);
        tools = n;
    }
    // The last cold run's cache is now warm.
    let warm_config = config_for(
        &work.path().join(format!("cold-cache-{}", cold_runs - 1)),
        "warm.toml",
    )?;
    let warm_runs = if quick { 5 } else { 20 };
    let mut warm = Vec::new();
    for _ in 0..warm_runs {
        let (elapsed, n) = start_once(url, &warm_config).await?;
        if n != tools {
            bail!("a warm start listed {n} tools, a cold one {tools}");
        }
        warm.push(elapsed);
    }

    let mut table = Table::new(&["compiled cache", "starts", "min ms", "p50 ms", "max ms"]);
    for (label, runs) in [("cold (empty)", cold), ("warm", warm)] {
        let s = Samples::new(runs, Duration::ZERO);
        table.row(vec![
            label.to_string(),
            s.len().to_string(),
            format!("{:.0}", s.min().as_secs_f64() * 1e3),
            format!("{:.0}", s.p50().as_secs_f64() * 1e3),
            format!("{:.0}", s.max().as_secs_f64() * 1e3),
        ]);
    }
    println!("## 3. Cold start\n");
    println!(
        "Spawn of `sluice serve` (stdio) to the answer of the first `tools/list`, with \
         {plugins} plugins ({} generated) serving {tools} tools. The client sends \
         initialize, initialized and tools/list at once, as desktop hosts do; the time \
         includes connecting to PostgreSQL.\n",
        generated.len()
    );
    table.print();
    Ok(())
}
