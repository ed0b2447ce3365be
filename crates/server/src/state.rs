//! The state every request handler gets: the services' context and what only the HTTP edge
//! needs.

use std::sync::Arc;

use idshare_service::ServiceContext;
use idshare_store::Store;

use crate::{config::Config, dashboard::LoginLimiter, http::ratelimit::RateLimiter};

/// State shared by every request handler: the services' context, and what only the HTTP edge
/// needs. Cheap to clone. Derefs to the [`ServiceContext`] that handlers pass to services.
#[derive(Debug, Clone)]
pub struct AppState {
    services: ServiceContext,
    edge: Arc<Edge>,
}

#[derive(Debug)]
struct Edge {
    config: Config,
    rate_limiter: RateLimiter,
    login_limiter: LoginLimiter,
}

impl AppState {
    pub fn new(store: Store, config: Config) -> Self {
        Self::with_services(ServiceContext::new(store, config.service_config()), config)
    }

    /// [`AppState::new`] with another confirmation-code sender (an SMS or email gateway).
    pub fn with_code_sender(
        store: Store,
        config: Config,
        code_sender: Arc<dyn idshare_service::sender::CodeSender>,
    ) -> Self {
        let services =
            ServiceContext::with_code_sender(store, config.service_config(), code_sender);
        Self::with_services(services, config)
    }

    fn with_services(services: ServiceContext, config: Config) -> Self {
        Self {
            services,
            edge: Arc::new(Edge {
                config,
                rate_limiter: RateLimiter::default(),
                login_limiter: Default::default(),
            }),
        }
    }

    /// The context services run with.
    pub fn services(&self) -> &ServiceContext {
        &self.services
    }

    /// The whole configuration (services see their part through [`ServiceContext::config`]).
    pub fn config(&self) -> &Config {
        &self.edge.config
    }

    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.edge.rate_limiter
    }

    pub(crate) fn login_limiter(&self) -> &LoginLimiter {
        &self.edge.login_limiter
    }
}

impl std::ops::Deref for AppState {
    type Target = ServiceContext;

    fn deref(&self) -> &ServiceContext {
        &self.services
    }
}
