//! Delivery of confirmation codes: a [`CodeSender`] takes a code to a phone number (SMS) or an
//! email address. Built in: [`LogSender`] (writes a log line; the code itself only in the
//! sandbox environment) and [`MemorySender`] (keeps the last code per destination, for tests
//! and demos). A real SMS or email gateway is another implementation of the trait.

use std::{
    collections::HashMap,
    fmt::Debug,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use idshare_domain::environment::Environment;
use serde::{Deserialize, Serialize};

/// How a code travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }
}

/// One code to deliver.
#[derive(Debug, Clone)]
pub struct CodeMessage {
    pub channel: Channel,
    /// E.164 number or normalized email address.
    pub to: String,
    pub code: String,
    /// The environment of the inquiry (a sandbox code may be shown; a production one never).
    pub environment: Environment,
}

/// Why a code could not be delivered. The text is logged, not shown to API callers.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// Delivers confirmation codes. Implementations must not log the code of a production message.
pub trait CodeSender: Send + Sync + Debug {
    fn send(&self, message: CodeMessage) -> SendFuture<'_>;
}

/// Which built-in sender the server uses (`code_sender` in the configuration).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    /// [`LogSender`].
    #[default]
    Log,
    /// [`MemorySender`].
    Memory,
}

/// The sender a configuration names, and the same sender as a [`MemorySender`] when it is one
/// (so tests can read the codes it kept).
pub fn build(kind: SenderKind) -> (Arc<dyn CodeSender>, Option<Arc<MemorySender>>) {
    match kind {
        SenderKind::Log => (Arc::new(LogSender), None),
        SenderKind::Memory => {
            let memory = Arc::new(MemorySender::default());
            (memory.clone(), Some(memory))
        }
    }
}

/// `+1******2671`: the first two characters and the last four of a phone number.
/// `j***@example.com`: the first character of an address's local part and its domain.
pub fn mask(to: &str) -> String {
    if let Some((local, domain)) = to.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = to.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

/// Writes "confirmation code sent" to the log with the destination masked. The code is in the
/// line only for the sandbox environment (so a developer can complete a sandbox inquiry);
/// production codes are never logged and, with this sender, never delivered.
#[derive(Debug, Default)]
pub struct LogSender;

impl CodeSender for LogSender {
    fn send(&self, message: CodeMessage) -> SendFuture<'_> {
        Box::pin(async move {
            let to = mask(&message.to);
            match message.environment {
                Environment::Sandbox => tracing::info!(
                    channel = message.channel.as_str(),
                    to,
                    code = message.code,
                    "confirmation code sent (sandbox: the code is logged, not delivered)"
                ),
                Environment::Production => tracing::warn!(
                    channel = message.channel.as_str(),
                    to,
                    "confirmation code sent to the log sender: it is not delivered; configure a \
                     real sender for production"
                ),
            }
            Ok(())
        })
    }
}

/// Most destinations a [`MemorySender`] remembers; the oldest is forgotten beyond.
const MEMORY_CAPACITY: usize = 10_000;

/// Keeps the last code sent to each destination, in memory (tests, demos). Nothing is logged
/// but the masked destination.
#[derive(Debug, Default)]
pub struct MemorySender {
    sent: Mutex<Sent>,
}

#[derive(Debug, Default)]
struct Sent {
    codes: HashMap<String, String>,
    order: std::collections::VecDeque<String>,
}

impl MemorySender {
    /// The last code sent to `to` (E.164 number or normalized address).
    pub fn last_code(&self, to: &str) -> Option<String> {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.codes.get(to).cloned()
    }

    /// How many destinations have a code.
    pub fn len(&self) -> usize {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CodeSender for MemorySender {
    fn send(&self, message: CodeMessage) -> SendFuture<'_> {
        Box::pin(async move {
            tracing::info!(
                channel = message.channel.as_str(),
                to = mask(&message.to),
                "confirmation code kept by the memory sender"
            );
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            if sent
                .codes
                .insert(message.to.clone(), message.code)
                .is_none()
            {
                sent.order.push_back(message.to);
                while sent.order.len() > MEMORY_CAPACITY {
                    if let Some(oldest) = sent.order.pop_front() {
                        sent.codes.remove(&oldest);
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_phones_and_addresses() {
        assert_eq!(mask("+14155552671"), "+1******2671");
        assert_eq!(mask("+447400123456"), "+4*******3456");
        assert_eq!(mask("alice@example.com"), "a***@example.com");
        assert_eq!(mask("+1234"), "*****");
    }

    #[tokio::test]
    async fn memory_sender_keeps_the_last_code() {
        let sender = MemorySender::default();
        for code in ["111111", "222222"] {
            sender
                .send(CodeMessage {
                    channel: Channel::Sms,
                    to: "+14155552671".to_owned(),
                    code: code.to_owned(),
                    environment: Environment::Sandbox,
                })
                .await
                .unwrap();
        }
        assert_eq!(sender.last_code("+14155552671").as_deref(), Some("222222"));
        assert_eq!(sender.last_code("+14155550000"), None);
        assert_eq!(sender.len(), 1);
    }
}
