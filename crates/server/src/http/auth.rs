//! Authentication: `Authorization: Bearer <API key>` resolves the caller's organization,
//! environment and permissions once, before anything else looks at the request.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header::AUTHORIZATION, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use idshare_domain::{
    id::{ApiKeyId, RequestId},
    permission::{Permission, PermissionSet},
};
use idshare_service::audit::Actor;
use idshare_store::{Scope, api_keys};

use crate::{
    http::{error::ApiError, middleware::CurrentRequestId},
    state::AppState,
};

/// Who is calling: resolved from the API key, carried in request extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub api_key_id: ApiKeyId,
    pub scope: Scope,
    pub permissions: PermissionSet,
    /// The request being served, for the audit log.
    pub request_id: Option<RequestId>,
}

impl Caller {
    /// The key as the audit log records it, in this request.
    pub fn actor(&self) -> Actor {
        Actor::api_key(self.api_key_id.clone(), self.request_id.clone())
    }

    /// Refuses with 403 unless the key holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "This API key lacks the `{permission}` permission."
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("Must be authenticated to access this endpoint."))
    }
}

/// Middleware: resolves the bearer key into a [`Caller`] or answers 401.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .map(|v| v.to_str().map(str::to_owned));
    let request_id = req
        .extensions()
        .get::<CurrentRequestId>()
        .map(|r| r.0.clone());
    match resolve(&state, header).await {
        Ok(mut caller) => {
            caller.request_id = request_id;
            tracing::Span::current().record("org", caller.scope.org_id.as_str());
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn resolve(
    state: &AppState,
    header: Option<Result<String, axum::http::header::ToStrError>>,
) -> Result<Caller, ApiError> {
    let header = header
        .ok_or_else(|| {
            ApiError::unauthorized(
                "Must be authenticated to access this endpoint: send `Authorization: Bearer <API key>`.",
            )
        })?
        .map_err(|_| ApiError::unauthorized("Token is invalid."))?;
    let secret = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("Use the `Bearer` scheme: `Authorization: Bearer <API key>`.")
        })?;
    let mut tx = state.store().begin_read().await?;
    let key = api_keys::find_by_secret(&mut tx, secret)
        .await?
        .ok_or_else(|| ApiError::unauthorized("Token is invalid."))?;
    if key.revoked_at.is_some() {
        return Err(ApiError::unauthorized("This API key has been revoked."));
    }
    drop(tx);
    let now = state.now();
    if key.use_is_unrecorded(now) {
        record_use(state, &key.id, now).await;
    }
    Ok(Caller {
        api_key_id: key.id,
        scope: key.scope,
        permissions: key.permissions,
        request_id: None,
    })
}

/// Records the key's use for operators (`idshare admin api-key list`), at most once a minute per
/// key. Bookkeeping only: a failure is logged, and the request goes on.
async fn record_use(state: &AppState, id: &ApiKeyId, now: time::OffsetDateTime) {
    let recorded = async {
        let mut tx = state.store().begin_write().await?;
        api_keys::record_use(&mut tx, id, now).await?;
        // At once, even inside an idempotent request: this is not part of its change.
        tx.commit_now().await
    };
    if let Err(error) = recorded.await {
        tracing::warn!(api_key = %id, error = %error, "could not record the API key's last use");
    }
}
