//! Plugin stdout/stderr: forwarded line by line to the log under the plugin's
//! name, with a byte budget per call so a flood cannot fill the log or memory.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Bytes of output kept per call (stdout and stderr together).
pub const OUTPUT_BUDGET: usize = 64 * 1024;
/// Longest line logged; longer lines are cut.
const MAX_LINE: usize = 4096;

/// A guest output stream that logs.
#[derive(Clone)]
pub struct LogOutput {
    plugin: Arc<str>,
    stream: &'static str,
    budget: Arc<AtomicUsize>,
}

impl LogOutput {
    /// `budget` is shared by the streams of one call.
    pub fn new(plugin: Arc<str>, stream: &'static str, budget: Arc<AtomicUsize>) -> Self {
        LogOutput {
            plugin,
            stream,
            budget,
        }
    }
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            out: self.clone(),
            line: Vec::new(),
            dropped: 0,
        })
    }
}

struct LineWriter {
    out: LogOutput,
    line: Vec<u8>,
    dropped: usize,
}

impl LineWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        // Escaped like a log host call: a plugin's output cannot forge or
        // hide log lines.
        let text = super::host::log_line(text.trim_end());
        tracing::info!(target: "sluice::plugin_output", plugin = %self.out.plugin, stream = self.out.stream, "{text}");
        self.line.clear();
    }

    fn take(&mut self, buf: &[u8]) {
        // Take what the shared budget allows; the rest is counted and dropped,
        // but the guest is told it was written so it does not trap.
        let mut allowed = 0;
        let _ = self
            .out
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                allowed = left.min(buf.len());
                Some(left - allowed)
            });
        self.dropped += buf.len() - allowed;
        for &b in &buf[..allowed] {
            if b == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
        if self.dropped > 0 {
            tracing::warn!(target: "sluice::plugin_output", plugin = %self.out.plugin, stream = self.out.stream,
                dropped_bytes = self.dropped, "plugin output over the per-call budget was dropped");
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}
