//! Typed configuration: defaults < TOML file < `IDSHARE_*` environment < command-line flags.
//! Unknown keys are refused (a typo must not silently fall back to a default), and secrets are
//! never printed: their `Debug` is redacted.

use std::{net::SocketAddr, path::PathBuf};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use idshare_store::{MasterKey, MasterKeyError, MasterKeyOrigin, MasterKeySource, MasterKeys};
use serde::{Deserialize, Serialize};

/// A configuration value that must never reach a log.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Where the SQLite database and the master key file live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: SQLite in `data_dir`.
    pub database_url: Option<Secret>,
    /// Base64 of 32 bytes; default: read from `master_key_file`.
    pub master_key: Option<Secret>,
    /// The file holding the master key (default: `master.key` in `data_dir`), created on the
    /// first start of a fresh database. Better outside the data directory, so that a copy of
    /// the data does not carry the key that opens it.
    pub master_key_file: Option<PathBuf>,
    /// Files holding master keys from before a rotation (`idshare admin master-key rotate`):
    /// they open what they sealed and seal nothing new. In the environment, a comma-separated
    /// list (`IDSHARE_PREVIOUS_MASTER_KEY_FILES`).
    #[serde(deserialize_with = "comma_separated")]
    pub previous_master_key_files: Vec<PathBuf>,
    /// Master keys from before a rotation, base64 of 32 bytes each, like `master_key`. In the
    /// environment, a comma-separated list (`IDSHARE_PREVIOUS_MASTER_KEYS`).
    #[serde(deserialize_with = "comma_separated")]
    pub previous_master_keys: Vec<Secret>,
    pub log_format: LogFormat,
    /// Requests per minute per organization environment (all its keys together).
    pub rate_limit_per_minute: u32,
    /// Peeks and previews of one Connect share token (together) allowed in any rolling hour,
    /// counted from the events they write, so across every node of a database.
    pub share_token_peeks_and_previews_per_hour: std::num::NonZeroU32,
    /// Largest JSON request body.
    pub body_limit_bytes: usize,
    /// Largest upload (multipart) request body.
    pub upload_body_limit_bytes: usize,
    /// How long a stored idempotent response is replayed.
    pub idempotency_retention_seconds: u64,
    /// How long a request with an `Idempotency-Key` holds its key unless renewed. Its node
    /// renews the lease while the request runs; after a crash the key is free for a retry once
    /// this much time passed.
    pub idempotency_lease_seconds: std::num::NonZeroU32,
    /// For tests only (0: off): every request with an `Idempotency-Key` waits this long before
    /// its change and answer commit, so that a test can kill the server mid-request.
    pub idempotency_test_pause_before_commit_ms: u64,
    /// For tests only (0: off): every request with an `Idempotency-Key` waits this long after
    /// its change and answer committed, before the answer is sent.
    pub idempotency_test_pause_after_commit_ms: u64,
    /// How long a use of the database waits for it (a PostgreSQL connection, connecting
    /// included; SQLite's write lock) before the request is answered 503 with `Retry-After`.
    pub database_timeout_seconds: std::num::NonZeroU32,
    /// Background job workers in this process (0: this node only serves the API). By default
    /// one per processor the process may use, at least 2 and at most 16.
    pub workers: u32,
    /// How often an idle worker looks for due jobs without being woken, and how often each
    /// worker returns jobs whose lease ran out to the queue.
    pub job_poll_seconds: std::num::NonZeroU32,
    /// How long a worker's claim on a job lasts without a heartbeat: the worker extends it
    /// while the job runs, so a job may run longer; a process that died holding a job lets go
    /// of it after this long, and another worker takes it over.
    pub job_lease_seconds: std::num::NonZeroU32,
    /// Workers in this process that send webhook deliveries (they wait on receivers, so they
    /// are separate from `workers`; 0: this node sends none).
    pub webhook_workers: u32,
    /// Let webhooks and workflow HTTPS requests reach private, loopback and link-local
    /// addresses. Off by default: a webhook URL must not become a way into the internal
    /// network (SSRF).
    pub allow_private_webhook_targets: bool,
    /// The face-comparison service for selfie verifications with `provider: http`.
    pub selfie_provider_url: Option<String>,
    /// The identity-records service for database verifications with `provider: http`.
    pub database_provider_url: Option<String>,
    /// The externally reachable base URL, used in one-time links (default: `http://<listen>`).
    pub public_url: Option<String>,
    /// Where confirmation codes for phone numbers and email addresses go: `log` (default: a
    /// log line with the destination masked, and the code itself only for sandbox inquiries;
    /// production codes are not delivered) or `memory` (kept in this process for tests and
    /// demos, readable through `ServiceContext::sent_code`).
    pub code_sender: idshare_service::sender::SenderKind,
    /// A second address that serves only `GET /metrics` (e.g. one only the Prometheus
    /// network reaches). Off by default.
    pub metrics_listen: Option<SocketAddr>,
    /// The bearer token `/metrics` asks for. Set, the main listener serves `/metrics` to
    /// `Authorization: Bearer <token>` (and the metrics listener asks for it too); unset, the
    /// main listener has no `/metrics` (404). Better given as `metrics_token_file`.
    pub metrics_token: Option<Secret>,
    /// The file holding `metrics_token` (surrounding whitespace ignored), read at startup.
    pub metrics_token_file: Option<PathBuf>,
    /// The base URL of an OpenTelemetry collector's OTLP/HTTP receiver
    /// (`http://collector:4318`): spans are exported to `<url>/v1/traces`. Off by default.
    pub otlp_endpoint: Option<String>,
    /// Days an audit entry is kept; older ones are deleted by the hourly housekeeping, in
    /// batches. Unset (the default): kept forever.
    pub audit_retention_days: Option<std::num::NonZeroU32>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./idshare-data"),
            database_url: None,
            master_key: None,
            master_key_file: None,
            previous_master_key_files: Vec::new(),
            previous_master_keys: Vec::new(),
            log_format: LogFormat::Text,
            rate_limit_per_minute: 300,
            share_token_peeks_and_previews_per_hour: std::num::NonZeroU32::new(30)
                .expect("30 is not zero"),
            body_limit_bytes: 1024 * 1024,
            upload_body_limit_bytes: 10 * 1024 * 1024,
            idempotency_retention_seconds: 24 * 60 * 60,
            idempotency_lease_seconds: std::num::NonZeroU32::new(5).expect("5 is not zero"),
            idempotency_test_pause_before_commit_ms: 0,
            idempotency_test_pause_after_commit_ms: 0,
            database_timeout_seconds: std::num::NonZeroU32::new(5).expect("5 is not zero"),
            workers: default_workers(),
            job_poll_seconds: std::num::NonZeroU32::new(2).expect("2 is not zero"),
            job_lease_seconds: std::num::NonZeroU32::new(15).expect("15 is not zero"),
            webhook_workers: 4,
            allow_private_webhook_targets: false,
            public_url: None,
            selfie_provider_url: None,
            database_provider_url: None,
            code_sender: idshare_service::sender::SenderKind::Log,
            metrics_listen: None,
            metrics_token: None,
            metrics_token_file: None,
            otlp_endpoint: None,
            audit_retention_days: None,
        }
    }
}

/// A list: an array (TOML), or one string of comma-separated items (the environment).
fn comma_separated<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: From<String>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    let items = match List::deserialize(deserializer)? {
        List::One(joined) => joined
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect(),
        List::Many(items) => items,
    };
    Ok(items.into_iter().map(T::from).collect())
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// One job worker per processor this process may use (jobs mix computing with waiting on the
/// database and providers), at least 2 and at most 16.
fn default_workers() -> u32 {
    std::thread::available_parallelism()
        .map_or(2, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .clamp(2, 16)
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_master_key_files: Option<Vec<PathBuf>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// A configuration that parses but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("set master_key or master_key_file, not both")]
    TwoMasterKeys,
    #[error("invalid master_key")]
    MasterKey(#[from] MasterKeyError),
    #[error("invalid previous_master_keys (base64 of 32 bytes each)")]
    PreviousMasterKey(#[source] MasterKeyError),
    #[error(transparent)]
    PreviousMasterKeyFile(MasterKeyError),
    #[error("set metrics_token or metrics_token_file, not both")]
    TwoMetricsTokens,
    #[error("cannot read the metrics token file {path}: {source}")]
    MetricsTokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the metrics token is empty (metrics_token or the file {0})")]
    EmptyMetricsToken(String),
}

/// Environment variables with the `IDSHARE_` prefix that are not configuration keys: the file
/// to read, the log filter, the password of `admin user create`, and where the test suite finds
/// Persona's OpenAPI document (`scripts/test` exports it, and the CLI tests start the server).
const NON_CONFIG_VARIABLES: &[&str] = &["config", "log", "admin_password", "persona_openapi"];

impl Config {
    /// Loads the layers. `file` is the TOML file named by `--config` or `IDSHARE_CONFIG`.
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &Overrides,
    ) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(Env::prefixed("IDSHARE_").filter(|key| {
                // Keys arrive in their original case; figment lowercases them later.
                let key = key.as_str().to_ascii_lowercase();
                !NON_CONFIG_VARIABLES.contains(&key.as_str()) && !key.starts_with("test_")
            }))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(Box::new)
    }

    /// The settings services read.
    pub fn service_config(&self) -> idshare_service::ServiceConfig {
        idshare_service::ServiceConfig {
            share_token_peeks_and_previews_per_hour: self.share_token_peeks_and_previews_per_hour,
            job_lease_seconds: self.job_lease_seconds,
            job_poll_seconds: self.job_poll_seconds,
            allow_private_webhook_targets: self.allow_private_webhook_targets,
            selfie_provider_url: self.selfie_provider_url.clone(),
            database_provider_url: self.database_provider_url.clone(),
            public_url: self.public_url(),
            code_sender: self.code_sender,
        }
    }

    /// The base URL links to this server start with.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Where the master key comes from: `master_key`, else `master_key_file`, else
    /// `master.key` in `data_dir`. Both keys set is an error (which one would win is not
    /// obvious to the operator).
    pub fn master_key_source(&self) -> Result<MasterKeySource, ConfigError> {
        match (&self.master_key, &self.master_key_file) {
            (Some(_), Some(_)) => Err(ConfigError::TwoMasterKeys),
            (Some(key), None) => Ok(MasterKeySource::Value(MasterKey::from_base64(
                key.expose(),
            )?)),
            (None, Some(file)) => Ok(MasterKeySource::File(file.clone())),
            (None, None) => Ok(MasterKeySource::File(self.data_dir.join("master.key"))),
        }
    }

    /// The current master key's source and the previous keys, read from their files (each
    /// must exist and be private to this user).
    pub fn master_keys(&self) -> Result<MasterKeys, ConfigError> {
        let mut previous = Vec::new();
        for file in &self.previous_master_key_files {
            match MasterKey::read_file(file).map_err(ConfigError::PreviousMasterKeyFile)? {
                Some(key) => previous.push(key),
                None => {
                    return Err(ConfigError::PreviousMasterKeyFile(
                        MasterKeyError::PreviousMissing {
                            path: file.display().to_string(),
                        },
                    ));
                }
            }
        }
        for value in &self.previous_master_keys {
            previous.push(
                MasterKey::from_base64(value.expose()).map_err(ConfigError::PreviousMasterKey)?,
            );
        }
        Ok(MasterKeys {
            current: self.master_key_source()?,
            previous,
        })
    }

    /// Where the current master key came from, for the startup line (never the key).
    pub fn describe_master_key(&self, origin: &MasterKeyOrigin) -> String {
        match origin {
            MasterKeyOrigin::Configured if std::env::var_os("IDSHARE_MASTER_KEY").is_some() => {
                "environment variable IDSHARE_MASTER_KEY".to_owned()
            }
            MasterKeyOrigin::Configured => "master_key in the configuration file".to_owned(),
            MasterKeyOrigin::File(path) => format!("file {}", path.display()),
            MasterKeyOrigin::Created(path) => {
                format!("file {}, generated on this first start", path.display())
            }
            MasterKeyOrigin::None => "none".to_owned(),
        }
    }

    /// Reads `metrics_token_file` into `metrics_token` (once, at startup), and refuses an
    /// empty token: `/metrics` must not open to anyone sending `Bearer ` and nothing.
    pub fn read_metrics_token(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.metrics_token_file {
            if self.metrics_token.is_some() {
                return Err(ConfigError::TwoMetricsTokens);
            }
            let token =
                std::fs::read_to_string(path).map_err(|source| ConfigError::MetricsTokenFile {
                    path: path.clone(),
                    source,
                })?;
            self.metrics_token = Some(Secret::new(token.trim()));
        }
        if let Some(token) = &self.metrics_token
            && token.expose().trim().is_empty()
        {
            let file = self
                .metrics_token_file
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string());
            return Err(ConfigError::EmptyMetricsToken(file));
        }
        Ok(())
    }

    /// How long a use of the database waits for it (`database_timeout_seconds`).
    pub fn database_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.database_timeout_seconds.get()))
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => idshare_store::Store::sqlite_url(&self.data_dir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_printed() {
        let config = Config {
            database_url: Some(Secret::new("postgres://u:hunter2@h/d")),
            master_key: Some(Secret::new("c2VjcmV0")),
            ..Config::default()
        };
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("c2VjcmV0"),
            "{printed}"
        );
    }

    #[test]
    fn metrics_token_comes_from_its_file_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metrics.token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let mut config = Config {
            metrics_token_file: Some(file.clone()),
            ..Config::default()
        };
        config.read_metrics_token().unwrap();
        assert_eq!(config.metrics_token, Some(Secret::new("s3cret")));

        let mut both = Config {
            metrics_token: Some(Secret::new("x")),
            metrics_token_file: Some(file.clone()),
            ..Config::default()
        };
        assert!(matches!(
            both.read_metrics_token(),
            Err(ConfigError::TwoMetricsTokens)
        ));

        std::fs::write(&file, "  \n").unwrap();
        let mut empty = Config {
            metrics_token_file: Some(file),
            ..Config::default()
        };
        assert!(matches!(
            empty.read_metrics_token(),
            Err(ConfigError::EmptyMetricsToken(_))
        ));

        let mut missing = Config {
            metrics_token_file: Some(dir.path().join("absent")),
            ..Config::default()
        };
        let err = missing.read_metrics_token().unwrap_err().to_string();
        assert!(err.contains("absent"), "{err}");
    }

    #[test]
    fn file_layers_apply_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(
            &good,
            "rate_limit_per_minute = 7\nlisten = \"127.0.0.1:9999\"\n",
        )
        .unwrap();
        let config = Config::load(Some(&good), &Overrides::default()).unwrap();
        assert_eq!(config.rate_limit_per_minute, 7);
        assert_eq!(config.listen.port(), 9999);

        let overridden = Config::load(
            Some(&good),
            &Overrides {
                listen: Some("127.0.0.1:1".parse().unwrap()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(overridden.listen.port(), 1);

        let keys = dir.path().join("keys.toml");
        std::fs::write(
            &keys,
            "previous_master_key_files = \"/k/1.key, /k/2.key\"\nprevious_master_keys = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let config = Config::load(Some(&keys), &Overrides::default()).unwrap();
        assert_eq!(
            config.previous_master_key_files,
            [PathBuf::from("/k/1.key"), PathBuf::from("/k/2.key")],
            "a comma-separated string, as the environment gives it"
        );
        assert_eq!(config.previous_master_keys.len(), 2, "an array");
        assert!(
            !format!("{config:?}").contains("\"a\""),
            "previous keys are secrets"
        );

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "rate_limit_per_mnute = 7\n").unwrap();
        let err = Config::load(Some(&bad), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("rate_limit_per_mnute"), "{err}");
    }
}
