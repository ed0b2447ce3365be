//! Per-environment rate limit: a fixed one-minute window shared by all keys of an
//! organization environment, as Persona does. Counted in this process: with several nodes
//! the effective limit is per node (documented in docs/api.md).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Request, State},
    http::HeaderValue,
    middleware::Next,
    response::{IntoResponse, Response},
};
use idshare_store::Scope;

use crate::{
    http::{auth::Caller, error::ApiError},
    state::AppState,
};

const WINDOW_SECONDS: u64 = 60;

#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<Scope, (u64, u32)>>,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_seconds: u64,
}

impl RateLimiter {
    /// Counts a request at `now_seconds` (Unix time) against `scope`'s window.
    pub fn check(&self, scope: &Scope, limit: u32, now_seconds: u64) -> Decision {
        let window = now_seconds / WINDOW_SECONDS;
        let reset_seconds = WINDOW_SECONDS - now_seconds % WINDOW_SECONDS;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // Old windows are dropped as the map is touched, so it stays as small as the tenant count.
        windows.retain(|_, (w, _)| *w == window);
        let (_, count) = windows.entry(scope.clone()).or_insert((window, 0));
        let allowed = *count < limit;
        if allowed {
            *count += 1;
        }
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(*count),
            reset_seconds,
        }
    }
}

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>() else {
        return next.run(req).await;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let decision =
        state
            .rate_limiter()
            .check(&caller.scope, state.config().rate_limit_per_minute, now);
    let mut response = if decision.allowed {
        next.run(req).await
    } else {
        ApiError::rate_limited(decision.reset_seconds).into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", u64::from(decision.limit)),
        ("ratelimit-remaining", u64::from(decision.remaining)),
        ("ratelimit-reset", decision.reset_seconds),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use idshare_domain::{environment::Environment, id::OrgId};

    #[test]
    fn counts_per_scope_and_resets_each_minute() {
        let limiter = RateLimiter::default();
        let a = Scope::new(OrgId::generate(), Environment::Sandbox);
        let b = Scope::new(a.org_id.clone(), Environment::Production);
        let t = 1_000_020;
        assert!(limiter.check(&a, 2, t).allowed);
        let second = limiter.check(&a, 2, t);
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        let third = limiter.check(&a, 2, t + 1);
        assert!(!third.allowed);
        assert_eq!(third.reset_seconds, 60 - (t + 1) % 60);
        assert!(
            limiter.check(&b, 2, t).allowed,
            "the other environment has its own window"
        );
        assert!(
            limiter.check(&a, 2, t + 60).allowed,
            "a new window starts afresh"
        );
    }
}
