//! Section 6: sluice beside the reference server,
//! `@modelcontextprotocol/server-postgres@0.6.2` (npm; BEGIN READ ONLY,
//! query, ROLLBACK, none of sluice's guards), driven by the same clients
//! over stdio: a minimal JSON-RPC client (this file) and the official Python
//! SDK (`bench/peers.py`). The floor is the same query as one prepared
//! statement on one connection, no MCP at all.
//!
//! It also times both official SDKs' output-schema validation on each
//! first-party tool (`bench/peers.py`, `bench/peers-ts.mjs`).
//!
//! The bench installs the peers into the target directory on first use:
//! the reference server and the TypeScript SDK with npm, the Python SDK into
//! a virtualenv with pip.

use crate::stats::{self, Samples, Table};
use crate::support;
use anyhow::{Context as _, bail, ensure};
use serde_json::{Value as Json, json};
use sqlx::Connection as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const REFERENCE_PACKAGE: &str = "@modelcontextprotocol/server-postgres@0.6.2";
/// The official TypeScript SDK, for its output-schema validator.
const TS_SDK_PACKAGE: &str = "@modelcontextprotocol/sdk@1.32.2";
/// The official Python SDK, at the last 1.x: it validates every result
/// against the tool's output schema (2.x caches the compiled validator).
const PYTHON_SDK: &str = "mcp==1.30.0";

/// The point query, by primary key.
const POINT_SQL: &str = "SELECT film_id, title, rental_rate FROM film WHERE film_id = $1";

fn film_id(i: usize) -> i64 {
    (i % 1000) as i64 + 1
}

/// Where the peers are installed: kept between runs.
fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("peers")
}

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Sluice,
    Reference,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Server::Sluice => "sluice",
            Server::Reference => "reference (server-postgres 0.6.2)",
        }
    }

    /// sluice takes the id as a parameter; the reference server's `query`
    /// takes SQL only, so the id is a literal there.
    fn arguments(self, i: usize) -> Json {
        match self {
            Server::Sluice => json!({ "sql": POINT_SQL, "params": [film_id(i)] }),
            Server::Reference => {
                json!({ "sql": POINT_SQL.replace("$1", &film_id(i).to_string()) })
            }
        }
    }

    /// Where the answer's rows are: sluice's structured content, the
    /// reference server's text (a JSON array).
    fn rows(self, result: &Json) -> anyhow::Result<usize> {
        ensure!(
            result["isError"] != json!(true),
            "the tool failed: {result}"
        );
        let rows = match self {
            Server::Sluice => result["structuredContent"]["rows"].clone(),
            Server::Reference => {
                let text = result["content"][0]["text"].as_str().unwrap_or("");
                serde_json::from_str(text).with_context(|| format!("not JSON: {text}"))?
            }
        };
        rows.as_array()
            .map(Vec::len)
            .with_context(|| format!("no rows in {result}"))
    }
}

/// The two servers' command lines.
struct Commands {
    sluice: (PathBuf, Vec<String>),
    reference: (PathBuf, Vec<String>),
    _config: tempfile::NamedTempFile,
}

impl Commands {
    fn of(&self, server: Server) -> (&Path, &[String]) {
        let (program, args) = match server {
            Server::Sluice => &self.sluice,
            Server::Reference => &self.reference,
        };
        (program, args)
    }
}

/// A minimal MCP client: newline-delimited JSON-RPC over the child's stdio,
/// one request at a time.
struct RawClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl RawClient {
    async fn start(program: &Path, args: &[String]) -> anyhow::Result<RawClient> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut client = RawClient {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            next_id: 0,
        };
        client
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2024-11-05",
                    "capabilities": {},
                    "clientInfo": { "name": "sluice-bench", "version": "1" }
                }),
            )
            .await?;
        client
            .send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await?;
        Ok(client)
    }

    async fn send(&mut self, message: &Json) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Sends a request and reads lines until its answer, skipping
    /// notifications.
    async fn request(&mut self, method: &str, params: Json) -> anyhow::Result<Json> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await?;
        loop {
            let line = self
                .lines
                .next_line()
                .await?
                .context("the server closed its stdout")?;
            let message: Json = serde_json::from_str(&line)?;
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    bail!("{method} failed: {error}");
                }
                return Ok(message["result"].clone());
            }
        }
    }

    /// The `i`th point query, as `server` takes it.
    async fn point_query(&mut self, server: Server, i: usize) -> anyhow::Result<Json> {
        let arguments = server.arguments(i);
        self.request(
            "tools/call",
            json!({ "name": "query", "arguments": arguments }),
        )
        .await
    }

    async fn stop(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Installs the reference server and the TypeScript SDK (npm) unless they
/// are there; returns the reference server's entry point.
fn npm_peers(dir: &Path) -> anyhow::Result<PathBuf> {
    let prefix = dir.join("npm");
    let modules = prefix.join("node_modules/@modelcontextprotocol");
    let entry = modules.join("server-postgres/dist/index.js");
    let sdk = modules.join("sdk/package.json");
    for (package, installed) in [(REFERENCE_PACKAGE, &entry), (TS_SDK_PACKAGE, &sdk)] {
        if installed.exists() {
            continue;
        }
        eprintln!("bench: installing {package} with npm");
        std::fs::create_dir_all(&prefix)?;
        run_checked(
            std::process::Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&prefix)
                .arg(package),
        )
        .context("npm (Node.js) is needed for the side-by-side section")?;
    }
    Ok(entry)
}

/// Makes a virtualenv with the Python SDK unless it is there; returns its python.
fn python_sdk(dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = dir.join("venv-mcp1");
    let python = venv.join("bin/python");
    let marker = venv.join(".installed");
    if !marker.exists() {
        eprintln!("bench: installing the Python SDK ({PYTHON_SDK}) into a virtualenv");
        run_checked(
            std::process::Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv),
        )
        .context("python3 with venv is needed for the side-by-side section")?;
        run_checked(std::process::Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PYTHON_SDK,
        ]))?;
        std::fs::write(&marker, PYTHON_SDK)?;
    }
    Ok(python)
}

fn run_checked(command: &mut std::process::Command) -> anyhow::Result<()> {
    let status = command
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {command:?}"))?;
    ensure!(status.success(), "{command:?} failed: {status}");
    Ok(())
}

/// `n` sequential point queries through the minimal client.
async fn raw_series(
    commands: &Commands,
    server: Server,
    first: usize,
    n: usize,
    out: &mut Vec<Duration>,
) -> anyhow::Result<Duration> {
    let (program, args) = commands.of(server);
    let mut client = RawClient::start(program, args).await?;
    // One call before timing: connections and compiled plugins warm.
    client.point_query(server, 0).await?;
    let started = Instant::now();
    for i in first..first + n {
        let t = Instant::now();
        let result = client.point_query(server, i).await?;
        out.push(t.elapsed());
        ensure!(
            server.rows(&result)? == 1,
            "{}: not one row",
            server.label()
        );
    }
    let wall = started.elapsed();
    client.stop().await;
    Ok(wall)
}

/// Runs `program bench/SCRIPT args… SPEC-FILE` with `spec` written to the
/// file; returns the JSON the script printed.
async fn run_script(
    program: &Path,
    script: &str,
    spec: &Json,
    args: &[&std::ffi::OsStr],
) -> anyhow::Result<Json> {
    let mut file = tempfile::NamedTempFile::new()?;
    std::io::Write::write_all(&mut file, spec.to_string().as_bytes())?;
    let output = Command::new(program)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../bench")
                .join(script),
        )
        .args(args)
        .arg(file.path())
        .stderr(Stdio::inherit())
        .output()
        .await?;
    ensure!(output.status.success(), "{script} failed");
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// Runs `bench/peers.py MODE` with `spec`; returns what it printed.
async fn python(python: &Path, mode: &str, spec: &Json) -> anyhow::Result<Json> {
    run_script(python, "peers.py", spec, &[mode.as_ref()]).await
}

/// `n` sequential point queries through the official Python SDK.
async fn python_series(
    py: &Path,
    commands: &Commands,
    server: Server,
    first: usize,
    n: usize,
    out: &mut Vec<Duration>,
) -> anyhow::Result<Duration> {
    let (program, args) = commands.of(server);
    // The first call warms up and is not counted.
    let calls: Vec<Json> = std::iter::once(0)
        .chain(first..first + n)
        .map(|i| json!(["query", server.arguments(i)]))
        .collect();
    let spec = json!({
        "command": program, "args": args, "calls": calls,
        "expect": if server == Server::Sluice { "structured" } else { "text" },
    });
    let answer = python(py, "calls", &spec).await?;
    let latencies: Vec<f64> = serde_json::from_value(answer["latencies_ms"].clone())?;
    let as_duration = |ms: &f64| Duration::from_secs_f64(ms / 1000.0);
    out.extend(latencies.iter().skip(1).map(as_duration));
    let wall_ms = answer["wall_ms"].as_f64().unwrap_or(0.0) - latencies.first().unwrap_or(&0.0);
    Ok(Duration::from_secs_f64(wall_ms.max(0.0) / 1000.0))
}

/// The floor: the statement prepared once on one connection, no MCP.
async fn floor_series(
    url: &str,
    first: usize,
    n: usize,
    out: &mut Vec<Duration>,
) -> anyhow::Result<Duration> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let started = Instant::now();
    for i in first..first + n {
        let t = Instant::now();
        let rows = sqlx::query(POINT_SQL)
            .bind(film_id(i))
            .fetch_all(&mut conn)
            .await?;
        out.push(t.elapsed());
        ensure!(rows.len() == 1, "floor: not one row");
    }
    let wall = started.elapsed();
    conn.close().await?;
    Ok(wall)
}

/// Runs section 6 and prints its tables.
pub async fn run(url: &str, quick: bool) -> anyhow::Result<()> {
    let dir = peers_dir();
    let reference = npm_peers(&dir)?;
    let py = python_sdk(&dir)?;
    let mut config = tempfile::NamedTempFile::new()?;
    std::io::Write::write_all(
        &mut config,
        format!("[database]\nurl = {}\n", toml_string(url)).as_bytes(),
    )?;
    let commands = Commands {
        sluice: (
            support::sluice_bin().to_path_buf(),
            vec![
                "serve".into(),
                "--config".into(),
                config.path().display().to_string(),
            ],
        ),
        reference: (
            PathBuf::from("node"),
            vec![reference.display().to_string(), url.to_string()],
        ),
        _config: config,
    };

    let (rounds, raw_n, py_n) = if quick { (2, 150, 60) } else { (5, 400, 150) };
    let mut raw = [Vec::new(), Vec::new()];
    let mut raw_wall = [Duration::ZERO; 2];
    let mut sdk = [Vec::new(), Vec::new()];
    let mut sdk_wall = [Duration::ZERO; 2];
    let mut floor = Vec::new();
    let mut floor_wall = Duration::ZERO;
    let servers = [Server::Sluice, Server::Reference];
    for round in 0..rounds {
        eprintln!("bench: 6. side by side, round {}/{rounds}", round + 1);
        // Alternating which server goes first spreads drift over both.
        let order: Vec<usize> = if round % 2 == 0 {
            vec![0, 1]
        } else {
            vec![1, 0]
        };
        for &s in &order {
            raw_wall[s] +=
                raw_series(&commands, servers[s], round * raw_n, raw_n, &mut raw[s]).await?;
        }
        for &s in &order {
            sdk_wall[s] +=
                python_series(&py, &commands, servers[s], round * py_n, py_n, &mut sdk[s]).await?;
        }
        floor_wall += floor_series(url, round * raw_n, raw_n, &mut floor).await?;
    }

    let floor = Samples::new(floor, floor_wall);
    let raw: Vec<Samples> = raw
        .into_iter()
        .zip(raw_wall)
        .map(|(l, w)| Samples::new(l, w))
        .collect();
    let sdk: Vec<Samples> = sdk
        .into_iter()
        .zip(sdk_wall)
        .map(|(l, w)| Samples::new(l, w))
        .collect();

    println!("## 6. Side by side: sluice and the reference server\n");
    println!(
        "`{POINT_SQL}` with the id cycling over 1000 films, one client, calls in sequence, \
         {rounds} rounds alternating the servers. sluice gets the id as a parameter; the \
         reference server's `query` takes SQL only, so it gets a literal. The floor is the \
         statement prepared once on one connection (sqlx), no MCP.\n"
    );
    let mut table = Table::new(&[
        "client",
        "server",
        "calls",
        "p50 ms",
        "p99 ms",
        "calls/s",
        "calls/s ÷ reference",
        "p50 ÷ floor",
    ]);
    for (client, samples) in [
        ("minimal JSON-RPC", &raw),
        ("official Python SDK (mcp 1.30)", &sdk),
    ] {
        for (s, server) in servers.iter().enumerate() {
            table.row(vec![
                client.into(),
                server.label().into(),
                samples[s].len().to_string(),
                stats::ms(samples[s].p50()),
                stats::ms(samples[s].p99()),
                format!("{:.0}", samples[s].per_second()),
                format!("{:.2}", samples[s].per_second() / samples[1].per_second()),
                stats::ratio(samples[s].p50(), floor.p50()),
            ]);
        }
    }
    table.row(vec![
        "none (floor)".into(),
        "PostgreSQL, prepared statement".into(),
        floor.len().to_string(),
        stats::ms(floor.p50()),
        stats::ms(floor.p99()),
        format!("{:.0}", floor.per_second()),
        format!("{:.2}", floor.per_second() / raw[1].per_second()),
        "1".into(),
    ]);
    table.print();

    eprintln!("bench: 6. output-schema validation in the Python SDK");
    let samples = json!({
        "query": { "sql": POINT_SQL, "params": [1] },
        "list_tables": {},
        "describe_table": { "table": "film" },
        "explain_query": { "sql": POINT_SQL.replace("$1", "1") },
    });
    let (program, args) = commands.of(Server::Sluice);
    let spec = json!({ "command": program, "args": args, "samples": samples });
    let costs = python(&py, "schemas", &spec).await?;
    let costs = costs.as_array().context("peers.py schemas")?;
    let ts = typescript_validation(&dir, costs).await?;
    println!(
        "What each official SDK spends validating a result against the tool's output \
         schema, for each first-party tool. The Python SDK (mcp 1.x) calls \
         `jsonschema.validate` on every result, which checks the schema against its \
         meta-schema each time: as served, and the same schema as JSON Schema 2020-12 \
         (MCP's default dialect, which sluice served before). The TypeScript SDK compiles \
         a validator per tool once, when it lists tools, and runs it on every result.\n"
    );
    let mut table = Table::new(&[
        "tool",
        "dialect served",
        "Python, per call, as served ms",
        "Python, per call, as 2020-12 ms",
        "TypeScript, once ms",
        "TypeScript, per call µs",
    ]);
    for (row, ts) in costs.iter().zip(&ts) {
        let number = |v: &Json, digits: usize| match v.as_f64() {
            Some(x) => format!("{x:.digits$}"),
            None => "?".into(),
        };
        table.row(vec![
            row["tool"].as_str().unwrap_or("?").into(),
            row["dialect"].as_str().unwrap_or("?").into(),
            number(&row["served_ms"], 2),
            number(&row["as_2020_12_ms"], 2),
            number(&ts["compile_ms"], 2),
            number(&ts["validate_us"], 1),
        ]);
    }
    table.print();
    Ok(())
}

/// Times the TypeScript SDK's validator on each tool's schema and sample
/// result (`bench/peers-ts.mjs`), in the order of `costs`.
async fn typescript_validation(dir: &Path, costs: &[Json]) -> anyhow::Result<Vec<Json>> {
    let spec: Vec<Json> = costs
        .iter()
        .map(|row| json!({ "tool": row["tool"], "schema": row["schema"], "instance": row["instance"] }))
        .collect();
    let npm = dir.join("npm");
    let output = run_script(
        Path::new("node"),
        "peers-ts.mjs",
        &Json::Array(spec),
        &[npm.as_os_str()],
    )
    .await?;
    let answer: Vec<Json> = serde_json::from_value(output)?;
    ensure!(
        answer.len() == costs.len(),
        "peers-ts.mjs: one answer per tool"
    );
    Ok(answer)
}

fn toml_string(s: &str) -> String {
    Json::String(s.to_string()).to_string()
}
