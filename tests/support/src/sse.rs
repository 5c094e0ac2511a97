//! Server-sent events, read off an HTTP response as a client does.

use crate::REQUEST_TIMEOUT;
use serde_json::Value;

/// Reads server-sent events off a response body.
pub struct EventReader {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> EventReader {
        EventReader {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event with data: (event name, data).
    pub async fn next(&mut self) -> (String, String) {
        self.try_next().await.expect("the event stream ended")
    }

    /// The next event with data, or `None` when the stream ends.
    pub async fn try_next(&mut self) -> Option<(String, String)> {
        use futures::StreamExt as _;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message".to_string();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_string();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
                    }
                }
                // Priming events carry an empty data line.
                if !data.iter().all(String::is_empty) {
                    return Some((event, data.join("\n")));
                }
                continue;
            }
            let chunk = tokio::time::timeout(REQUEST_TIMEOUT, self.body.next())
                .await
                .expect("no event in time")?;
            let Ok(chunk) = chunk else { return None };
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
        }
    }

    /// The next JSON-RPC message on the stream.
    pub async fn message(&mut self) -> Value {
        let (_, data) = self.next().await;
        serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"))
    }
}
