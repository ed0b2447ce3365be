//! What every use case runs with: the store, the clock, the part of the configuration that
//! services read, the outbound HTTP clients, the caches and the code sender. The HTTP edge holds
//! one of these next to what only it needs (rate limiters, the sign-in limiter).

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use idshare_domain::{id::WorkflowVersionId, workflow::WorkflowDefinition};
use idshare_store::Store;
use time::OffsetDateTime;

use crate::{
    screening::ScreeningCache,
    sender::{CodeSender, MemorySender, SenderKind},
};

/// The settings services read (the server's configuration holds them among its own).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Peeks and previews of one Connect share token (together) allowed in any rolling hour.
    pub share_token_peeks_and_previews_per_hour: NonZeroU32,
    /// How long a worker's claim on a job lasts without a heartbeat.
    pub job_lease_seconds: NonZeroU32,
    /// How often an idle worker looks for due jobs without a wake-up, and reaps expired leases.
    pub job_poll_seconds: NonZeroU32,
    /// Let webhooks and workflow HTTPS requests reach private, loopback and link-local
    /// addresses.
    pub allow_private_webhook_targets: bool,
    /// The face-comparison service for selfie verifications with `provider: http`.
    pub selfie_provider_url: Option<String>,
    /// The identity-records service for database verifications with `provider: http`.
    pub database_provider_url: Option<String>,
    /// The base URL links to this server start with, without a trailing `/`.
    pub public_url: String,
    /// Where confirmation codes go.
    pub code_sender: SenderKind,
}

/// Parsed workflow definitions by version (versions are immutable).
pub(crate) type WorkflowDefinitions = Mutex<HashMap<WorkflowVersionId, Arc<WorkflowDefinition>>>;

/// The context every service function takes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: ServiceConfig,
    workflow_definitions: WorkflowDefinitions,
    screening: ScreeningCache,
    http: reqwest::Client,
    webhook_http: reqwest::Client,
    /// Added to the wall clock by [`ServiceContext::advance_clock`].
    clock_offset_micros: AtomicI64,
    code_sender: Arc<dyn CodeSender>,
    memory_sender: Option<Arc<MemorySender>>,
}

impl ServiceContext {
    pub fn new(store: Store, config: ServiceConfig) -> Self {
        let (code_sender, memory_sender) = crate::sender::build(config.code_sender);
        Self::build(store, config, code_sender, memory_sender)
    }

    /// [`ServiceContext::new`] with another confirmation-code sender (an SMS or email gateway).
    pub fn with_code_sender(
        store: Store,
        config: ServiceConfig,
        code_sender: Arc<dyn CodeSender>,
    ) -> Self {
        Self::build(store, config, code_sender, None)
    }

    fn build(
        store: Store,
        config: ServiceConfig,
        code_sender: Arc<dyn CodeSender>,
        memory_sender: Option<Arc<MemorySender>>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                workflow_definitions: Default::default(),
                screening: Default::default(),
                http: outbound_client(),
                webhook_http: crate::webhooks::client(config.allow_private_webhook_targets),
                clock_offset_micros: Default::default(),
                config,
                code_sender,
                memory_sender,
            }),
        }
    }

    /// Delivers confirmation codes.
    pub fn code_sender(&self) -> &dyn CodeSender {
        self.inner.code_sender.as_ref()
    }

    /// The last confirmation code sent to `to` (E.164 number or normalized address), when the
    /// configuration says `code_sender = "memory"`; always `None` otherwise.
    pub fn sent_code(&self, to: &str) -> Option<String> {
        self.inner.memory_sender.as_ref()?.last_code(to)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    pub(crate) fn workflow_definitions(&self) -> &WorkflowDefinitions {
        &self.inner.workflow_definitions
    }

    pub(crate) fn screening_cache(&self) -> &ScreeningCache {
        &self.inner.screening
    }

    /// The client for outgoing calls (providers): no redirects, explicit timeouts per call.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Wakes an idle worker of `queue` in this process (or the next one to go idle):
    /// committing a transaction that enqueued jobs to it does it (see
    /// [`idshare_store::Tx::commit`]); so does a `NOTIFY` from another node.
    pub(crate) fn job_wakeup(&self, queue: &str) -> Arc<tokio::sync::Notify> {
        self.inner.store.job_wakeups().of(queue)
    }

    /// The client for webhook deliveries and workflow HTTPS requests: no redirects, and
    /// (unless the configuration allows them) no private, loopback or link-local targets.
    pub fn webhook_http(&self) -> &reqwest::Client {
        &self.inner.webhook_http
    }

    /// The current time; the one clock every rule reads.
    pub fn now(&self) -> OffsetDateTime {
        let offset = self.inner.clock_offset_micros.load(Ordering::Relaxed);
        OffsetDateTime::now_utc() + time::Duration::microseconds(offset)
    }

    /// Moves this process's clock forward, so that tests and simulations reach retry times and
    /// expiries without waiting. The server itself never calls it.
    pub fn advance_clock(&self, by: time::Duration) {
        let micros = i64::try_from(by.whole_microseconds()).unwrap_or(i64::MAX);
        self.inner
            .clock_offset_micros
            .fetch_add(micros, Ordering::Relaxed);
    }
}

/// Installs the TLS crypto provider (ring): rustls is built without a default one to keep the
/// build small. Call before building any HTTP client; calling it again is harmless.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn outbound_client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}
