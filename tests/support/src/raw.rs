//! A raw stdio client: `sluice serve` as a child with piped stdin and
//! stdout, written to byte by byte and read a line at a time, for the tests
//! that send what no SDK client would (malformed lines, duplicate ids) and
//! that signal the process.

use crate::{REQUEST_TIMEOUT, TestDb, serve_command};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// A `sluice serve` child spoken to in raw JSON-RPC lines.
pub struct RawServer {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Messages read while looking for another one.
    pending: Vec<Value>,
    _config: tempfile::NamedTempFile,
}

impl RawServer {
    /// Starts `sluice serve` on `db` with `config_toml` (and plugins from
    /// `plugin_dir`, compiled beforehand), not yet initialized.
    pub async fn spawn(db: &TestDb, config_toml: &str, plugin_dir: Option<&Path>) -> RawServer {
        let (command, config) = serve_command(&db.url, config_toml, plugin_dir, "info", true);
        RawServer::start(command, config, Stdio::inherit())
    }

    /// As [`RawServer::spawn`], without compiling the plugins first, and
    /// with the server's log going to `log`.
    pub fn spawn_cold(
        db: &TestDb,
        config_toml: &str,
        plugin_dir: Option<&Path>,
        log: Stdio,
    ) -> RawServer {
        let (command, config) = serve_command(&db.url, config_toml, plugin_dir, "info", false);
        RawServer::start(command, config, log)
    }

    fn start(
        mut command: tokio::process::Command,
        config: tempfile::NamedTempFile,
        log: Stdio,
    ) -> RawServer {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = command.spawn().expect("spawning sluice");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        RawServer {
            child,
            stdin,
            stdout,
            pending: Vec::new(),
            _config: config,
        }
    }

    /// As [`RawServer::spawn`], then initializes the session.
    pub async fn initialized(
        db: &TestDb,
        config_toml: &str,
        plugin_dir: Option<&Path>,
    ) -> RawServer {
        let mut server = RawServer::spawn(db, config_toml, plugin_dir).await;
        server.initialize().await;
        server
    }

    /// The initialize handshake, with id `"init"`.
    pub async fn initialize(&mut self) {
        self.send(&json!({
            "jsonrpc": "2.0", "id": "init", "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw-e2e", "version": "0"}
            }
        }))
        .await;
        let answer = self.answer_to(&json!("init")).await;
        assert!(
            answer.get("result").is_some(),
            "initialize failed: {answer}"
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
    }

    /// Writes `bytes` and a newline.
    pub async fn send_line(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).await.expect("writing to sluice");
        stdin.write_all(b"\n").await.expect("writing to sluice");
        stdin.flush().await.expect("flushing to sluice");
    }

    /// Writes one message.
    pub async fn send(&mut self, message: &Value) {
        self.send_line(message.to_string().as_bytes()).await;
    }

    /// A `tools/call` request.
    pub fn tool_call(id: Value, tool: &str, arguments: Value) -> Value {
        json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}
        })
    }

    /// Closes stdin: the end of input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next message, or `None` at the end of output; panics after
    /// [`REQUEST_TIMEOUT`].
    pub async fn next(&mut self) -> Option<Value> {
        if !self.pending.is_empty() {
            return Some(self.pending.remove(0));
        }
        let line = tokio::time::timeout(REQUEST_TIMEOUT, self.stdout.next_line())
            .await
            .expect("sluice wrote nothing in time")
            .expect("reading sluice's stdout")?;
        Some(
            serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("sluice wrote a line that is not JSON ({e}): {line}")),
        )
    }

    /// The answer (result or error) with `id`, keeping other messages for
    /// later; panics if output ends first.
    pub async fn answer_to(&mut self, id: &Value) -> Value {
        if let Some(at) = self.pending.iter().position(|m| is_answer(m, id)) {
            return self.pending.remove(at);
        }
        loop {
            let line = tokio::time::timeout(REQUEST_TIMEOUT, self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("no answer to id {id} in time"))
                .expect("reading sluice's stdout")
                .unwrap_or_else(|| panic!("sluice's output ended before answering id {id}"));
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("sluice wrote a line that is not JSON ({e}): {line}"));
            if is_answer(&message, id) {
                return message;
            }
            self.pending.push(message);
        }
    }

    /// Every answer with `id` until output ends.
    pub async fn all_answers_to(&mut self, id: &Value) -> Vec<Value> {
        let mut answers: Vec<Value> = Vec::new();
        while let Some(message) = self.next().await {
            if is_answer(&message, id) {
                answers.push(message);
            }
        }
        answers
    }

    /// Sends `ping` with `id` and checks it is answered: the server is alive.
    pub async fn ping(&mut self, id: &str) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "ping"}))
            .await;
        let answer = self.answer_to(&json!(id)).await;
        assert!(answer.get("result").is_some(), "ping failed: {answer}");
    }

    /// Sends a signal to the child.
    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("the child is running");
        // SAFETY: kill has no memory effects; the pid is our own child's.
        let rc = unsafe { libc::kill(pid as i32, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// Waits for the child to exit; panics after [`REQUEST_TIMEOUT`].
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(REQUEST_TIMEOUT, self.child.wait())
            .await
            .expect("sluice did not exit in time")
            .expect("waiting for sluice")
    }
}

fn is_answer(message: &Value, id: &Value) -> bool {
    message.get("id") == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// The error code of an answer, or `None` for a result.
pub fn error_code(answer: &Value) -> Option<i64> {
    answer.get("error").and_then(|e| e["code"].as_i64())
}

/// The error message of an answer (empty for a result).
pub fn error_message(answer: &Value) -> String {
    answer
        .get("error")
        .and_then(|e| e["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The text of a `tools/call` result's content.
pub fn result_text(answer: &Value) -> String {
    answer["result"]["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
