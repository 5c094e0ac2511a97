//! Section 7: waited round trips to PostgreSQL per gated read. `sluice
//! serve` (stdio) talks to the database through a proxy that holds every
//! server→client packet back by [`DELAY`], so each round trip a call waits
//! on adds that much: (p50 through the proxy − p50 direct) ÷ DELAY is the
//! count. The timer overshoots each sleep a little, so counts read a few
//! hundredths high.

use crate::stats::{Samples, Table, ms};
use crate::support;
use anyhow::Context as _;
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpListener;

const DELAY: Duration = Duration::from_millis(20);

/// The measured reads: what each one asks of the read path.
const CASES: [(&str, &str); 3] = [
    (
        "the same statement again (resolution cached, statement prepared)",
        "SELECT film_id, title FROM film WHERE film_id = $1",
    ),
    (
        "a statement new to the connection (resolution cached)",
        "SELECT film_id, title, {i} AS n FROM film WHERE film_id = $1",
    ),
    (
        "a numeric parameter (converted by the server)",
        "SELECT film_id FROM film WHERE rental_rate = $1 LIMIT 1",
    ),
];

pub async fn run(url: &str, quick: bool) -> anyhow::Result<()> {
    let proxy = start_proxy(url).await?;
    let proxied = through(url, proxy);
    let calls = if quick { 15 } else { 40 };
    let mut table = Table::new(&[
        "read",
        "direct p50 ms",
        "through the proxy p50 ms",
        "waited round trips",
    ]);
    for (name, sql) in CASES {
        let direct = series(url, sql, calls * 2).await?;
        let delayed = series(&proxied, sql, calls).await?;
        let trips =
            (delayed.p50().as_secs_f64() - direct.p50().as_secs_f64()) / DELAY.as_secs_f64();
        table.row(vec![
            name.into(),
            ms(direct.p50()),
            ms(delayed.p50()),
            format!("{trips:.2}"),
        ]);
    }
    println!("## 7. Round trips per gated read\n");
    println!(
        "`sluice serve` (stdio, sql-read's `query`) against the same database directly and \
         through a proxy that holds every server→client packet back by {} ms; (p50 through the \
         proxy − p50 direct) ÷ {} ms is the number of round trips a call waits on. Each read \
         after the first few is measured, so the resolution of `film` is cached.\n",
        DELAY.as_millis(),
        DELAY.as_millis()
    );
    table.print();
    Ok(())
}

/// `calls` reads after five to warm the caches; `{i}` in `sql` is the
/// call's number.
async fn series(url: &str, sql: &str, calls: usize) -> anyhow::Result<Samples> {
    let server = support::spawn_at(url, "", None, Stdio::null()).await;
    let mut latencies = Vec::with_capacity(calls);
    let started = Instant::now();
    for i in 0..calls + 5 {
        let sql = sql.replace("{i}", &i.to_string());
        let params = if sql.contains("rental_rate =") {
            json!(["0.99"])
        } else {
            json!([(i % 1000) + 1])
        };
        let t = Instant::now();
        let r = server
            .call("query", json!({"sql": sql, "params": params}))
            .await;
        anyhow::ensure!(r.is_error != Some(true), "{sql}: {}", support::text_of(&r));
        if i >= 5 {
            latencies.push(t.elapsed());
        }
    }
    let wall = started.elapsed();
    server.shutdown().await;
    Ok(Samples::new(latencies, wall))
}

/// `url` with its host and port replaced by the proxy's (query parameters
/// override a URL's authority; a later key overrides in key=value form).
fn through(url: &str, port: u16) -> String {
    let extra = format!("host=127.0.0.1 port={port} sslmode=disable");
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{}", extra.replace(' ', "&"))
    } else {
        format!("{url} {extra}")
    }
}

/// A proxy on loopback to the server `url` names (TCP or Unix socket).
async fn start_proxy(url: &str) -> anyhow::Result<u16> {
    use sluice::db::conninfo;
    let target = conninfo::parse(url)
        .and_then(|info| conninfo::resolve(&info, &conninfo::ProcessEnvironment))
        .context("the bench database's connection string")?;
    let options = target.options;
    let upstream = match options.get_socket() {
        Some(dir) => Upstream::Unix(dir.join(format!(".s.PGSQL.{}", options.get_port()))),
        None => Upstream::Tcp(format!("{}:{}", options.get_host(), options.get_port())),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                let (cr, cw) = client.into_split();
                match upstream {
                    Upstream::Tcp(addr) => {
                        if let Ok(server) = tokio::net::TcpStream::connect(&addr).await {
                            let _ = server.set_nodelay(true);
                            let (sr, sw) = server.into_split();
                            pipe(cr, cw, sr, sw).await;
                        }
                    }
                    Upstream::Unix(path) => {
                        if let Ok(server) = tokio::net::UnixStream::connect(&path).await {
                            let (sr, sw) = server.into_split();
                            pipe(cr, cw, sr, sw).await;
                        }
                    }
                }
            });
        }
    });
    Ok(port)
}

#[derive(Clone)]
enum Upstream {
    Tcp(String),
    Unix(std::path::PathBuf),
}

/// Client→server as it comes; server→client each read held back by DELAY.
async fn pipe(
    mut cr: impl AsyncRead + Unpin + Send + 'static,
    mut cw: impl AsyncWrite + Unpin + Send + 'static,
    mut sr: impl AsyncRead + Unpin + Send + 'static,
    mut sw: impl AsyncWrite + Unpin + Send + 'static,
) {
    let upward = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(n @ 1..) = cr.read(&mut buf).await {
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let downward = tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at.into()).await;
            if cw.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 65536];
    while let Ok(n @ 1..) = sr.read(&mut buf).await {
        if tx
            .send((Instant::now() + DELAY, buf[..n].to_vec()))
            .is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = downward.await;
    upward.abort();
}
