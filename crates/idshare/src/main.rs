//! `idshare`: the server binary and its operator commands.

mod bench_common;
mod bench_inquiries;
mod bench_redeem;
mod bench_screening;
mod bench_webhooks;
mod demo;
mod lists_cli;
mod loopback_receiver;
mod mrz_cli;
mod otlp;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use idshare_domain::{
    environment::Environment,
    id::{ApiKeyId, OrgId},
    permission::PermissionSet,
};
use idshare_server::{
    app,
    config::{Config, LogFormat, Overrides, Secret},
    state::AppState,
};
use idshare_store::{MasterKeySource, Scope, Store, StoreError, api_keys, orgs, users};
use time::OffsetDateTime;

#[derive(Debug, Parser)]
#[command(
    name = "idshare",
    version,
    about = "Identity verification and Connect data sharing server"
)]
struct Cli {
    /// TOML configuration file (also IDSHARE_CONFIG).
    #[arg(long, global = true, env = "IDSHARE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, value_parser = parse_log_format)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("unknown log format `{other}` (text or json)")),
    }
}

/// Where the data lives; every command that touches it takes these.
#[derive(Debug, Args)]
struct StorageArgs {
    /// Directory for the SQLite database and, by default, the master key file
    /// [default: ./idshare-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… (also IDSHARE_DATABASE_URL) [default: SQLite in the data dir].
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Let webhooks and workflow HTTPS requests reach private, loopback and link-local
        /// addresses (refused by default: SSRF).
        #[arg(long)]
        allow_private_webhook_targets: bool,
        /// The master key file (also IDSHARE_MASTER_KEY_FILE) [default: master.key in the data
        /// dir]; keep it outside the data directory.
        #[arg(long)]
        master_key_file: Option<PathBuf>,
        /// Also serve GET /metrics (only) on this address, e.g. one only Prometheus reaches
        /// (also IDSHARE_METRICS_LISTEN) [default: no metrics listener].
        #[arg(long)]
        metrics_listen: Option<std::net::SocketAddr>,
        /// The file holding the bearer token GET /metrics asks for (also
        /// IDSHARE_METRICS_TOKEN_FILE); with it the main listener serves /metrics [default:
        /// no /metrics on the main listener].
        #[arg(long)]
        metrics_token_file: Option<PathBuf>,
        /// Export traces over OTLP/HTTP to this collector base URL, e.g. http://127.0.0.1:4318
        /// (also IDSHARE_OTLP_ENDPOINT) [default: no trace export].
        #[arg(long)]
        otlp_endpoint: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Create the database if missing, apply migrations and exit (serve also applies them on
    /// start). Needs no master key.
    Migrate {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Operator commands: organizations, API keys, users.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Check a machine-readable zone: prints the parsed fields and every check digit as JSON;
    /// exits 0 when every check digit holds, 1 otherwise.
    Mrz {
        #[command(subcommand)]
        command: MrzCommand,
    },
    /// Screening lists (watchlists, PEP lists).
    Lists {
        #[command(subcommand)]
        command: ListsCommand,
    },
    /// Screen a full name against the imported lists; prints the matches with scores as JSON.
    Screen {
        /// Only this list.
        #[arg(long)]
        list: Option<String>,
        /// YYYY-MM-DD (or YYYY): drops candidates born more than a year apart.
        #[arg(long, value_parser = parse_birthdate)]
        birthdate: Option<String>,
        /// ISO 3166-1 alpha-2: lowers candidates from other countries.
        #[arg(long, value_parser = parse_country)]
        country: Option<String>,
        /// Only politically exposed persons (default: every kind of entry).
        #[arg(long)]
        pep: bool,
        /// The full name, in any order.
        #[arg(value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Benchmarks (they print figures; they are not tests).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Set up a tour of the product on a fresh data directory (a bank sharing verified
    /// customers with a fintech over Connect: users, keys, templates, workflows, share tokens,
    /// a stuck inquiry, a logged webhook), print how to use it, then serve.
    Demo {
        /// Address to listen on [default: 127.0.0.1:8080; port 0 picks a free one].
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The master key file (also IDSHARE_MASTER_KEY_FILE) [default: master.key in the data
        /// dir].
        #[arg(long)]
        master_key_file: Option<PathBuf>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// `--birthdate`: a real date `YYYY-MM-DD`, or a year `YYYY`.
fn parse_birthdate(value: &str) -> Result<String, String> {
    let value = value.trim();
    let is_year = value.len() == 4 && value.bytes().all(|b| b.is_ascii_digit());
    if is_year || idshare_domain::time_format::parse_date(value).is_some() {
        Ok(value.to_owned())
    } else {
        Err("expected a date YYYY-MM-DD (or a year YYYY)".to_owned())
    }
}

/// `--country`: an ISO 3166-1 alpha-2 code, in either case.
fn parse_country(value: &str) -> Result<String, String> {
    use idshare_domain::mrz::{alpha2_to_alpha3, alpha3_to_alpha2};
    let code = value.trim().to_ascii_uppercase();
    if code.len() == 2 && alpha2_to_alpha3(&code).is_some() {
        return Ok(code);
    }
    match alpha3_to_alpha2(&code).filter(|_| code.len() == 3) {
        Some(alpha2) => Err(format!(
            "{code} is an alpha-3 code: use the alpha-2 code {alpha2}"
        )),
        None => Err("expected an ISO 3166-1 alpha-2 country code such as GB or DE".to_owned()),
    }
}

/// The name to screen: something with letters in it.
fn parse_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    if name.chars().any(char::is_alphabetic) {
        Ok(name.to_owned())
    } else {
        Err("the name to screen must contain letters".to_owned())
    }
}

#[derive(Debug, Subcommand)]
enum MrzCommand {
    /// Parse and check 2 (TD2, TD3) or 3 (TD1) MRZ lines.
    Check {
        #[arg(required = true, num_args = 1..=3)]
        lines: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ListsCommand {
    /// Import (or replace) a list from a file.
    Import {
        /// opensanctions-csv (targets.simple.csv) or ofac-sdn-csv (sdn.csv).
        #[arg(long)]
        format: String,
        /// The name screening reports refer to (`lists` in a template's report config).
        #[arg(long)]
        list: String,
        file: PathBuf,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Screenings per second through the index next to a brute-force scan, same run.
    Screening {
        #[arg(long, default_value_t = 300_000)]
        names: usize,
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Share-token redemption latency, throughput and cost (server CPU, SQL statements and
    /// transactions per redemption) next to the storage ceiling, same run.
    Redeem {
        #[arg(long, default_value_t = 200)]
        tokens: usize,
        /// Redeem calls in flight (in a burst; also the setup's calls in flight).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Redeem one token at a time, each finished before the next: single-redemption
        /// latency.
        #[arg(long)]
        one_at_a_time: bool,
        /// sqlite://… or postgres://… [default: SQLite in a temporary directory].
        #[arg(long)]
        database_url: Option<String>,
        /// A running server to target instead of one in this process (needs --database-url,
        /// its database, to create the two organizations and their keys).
        #[arg(long)]
        url: Option<String>,
    },
    /// Inquiry create and submit latency, throughput and cost (server CPU, SQL statements and
    /// transactions per inquiry) next to the storage ceiling, same run.
    Inquiries {
        #[arg(long, default_value_t = 200)]
        inquiries: usize,
        /// Create and submit calls in flight (in bursts).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Create and submit one inquiry at a time, its pipeline finished before the next:
        /// single-inquiry latency.
        #[arg(long)]
        one_at_a_time: bool,
        /// sqlite://… or postgres://… [default: SQLite in a temporary directory].
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Webhook deliveries per second and their latency next to the events written through the
    /// API (inquiries created), with a loopback receiver that verifies every signature.
    Webhooks {
        /// Inquiries to create (an `inquiry.created` event each).
        #[arg(long, default_value_t = 1_000)]
        events: usize,
        /// Updates of each inquiry after its creation (an `inquiry.updated` event each), whose
        /// deliveries must arrive in order.
        #[arg(long, default_value_t = 2)]
        updates: usize,
        /// Webhooks subscribed to the event: each event is delivered to every one.
        #[arg(long, default_value_t = 1)]
        webhooks: usize,
        /// Inquiry-create calls in flight.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Webhook workers of the in-process server [default: the server's default].
        #[arg(long)]
        webhook_workers: Option<u32>,
        /// sqlite://… or postgres://… [default: SQLite in a temporary directory].
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Organizations.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Dashboard users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an organization; prints its id.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an API key; prints the secret (shown only this once).
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        environment: String,
        /// Permissions (repeatable or comma-separated); all permissions when omitted.
        #[arg(long = "permission")]
        permissions: Vec<String>,
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke an API key by id (api_…).
    Revoke {
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a dashboard user; prints its id.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// The password (or IDSHARE_ADMIN_PASSWORD, kept out of shell history).
        #[arg(long, env = "IDSHARE_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "admin")]
        role: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Lift the wait that failed sign-ins put on a user's account (browsers the account does
    /// not trust are refused while it lasts).
    Unlock {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

fn load_config(
    cli: &Cli,
    storage: Option<&StorageArgs>,
    listen: Option<std::net::SocketAddr>,
    master_key_file: Option<&PathBuf>,
) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen,
        data_dir: storage.and_then(|s| s.data_dir.clone()),
        database_url: storage
            .and_then(|s| s.database_url.clone())
            .map(Secret::new),
        master_key_file: master_key_file.cloned(),
        log_format: cli.log_format,
    };
    Config::load(cli.config.as_deref(), &overrides).context("invalid configuration")
}

fn init_logging(format: LogFormat) {
    init_tracing(format, None);
}

/// Log lines on standard error and, with `traces`, the spans exported over OTLP; both keep
/// what `IDSHARE_LOG` lets through.
fn init_tracing(format: LogFormat, traces: Option<&opentelemetry_sdk::trace::SdkTracerProvider>) {
    use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};
    // One filter for both (per-layer filters dropped events of the `idshare` target).
    let filter = tracing_subscriber::EnvFilter::try_from_env("IDSHARE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Json => lines.json().boxed(),
        LogFormat::Text => lines.boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(traces.map(otlp::layer))
        .init();
}

/// Opens the database for a command that seals and opens no personal data (`migrate`,
/// `admin`, `lists`, `screen`): the master key is neither read nor created. Only `migrate`
/// (`create`) creates a missing SQLite database; the others refuse, so that a mistyped
/// `--data-dir` does not get an empty database.
async fn open_without_key(cli: &Cli, storage: &StorageArgs, create: bool) -> anyhow::Result<Store> {
    let config = load_config(cli, Some(storage), None, None)?;
    Store::open(
        &config.database_url(),
        create,
        MasterKeySource::NotNeeded,
        config.database_timeout(),
    )
    .await
    .map_err(|error| match error {
        StoreError::NoDatabase(path) => anyhow::anyhow!(
            "no database at {}: check --data-dir/--database-url, or create it with \
                 `idshare migrate` (or `idshare serve`) and the same options",
            path.display()
        ),
        other => app::open_error(other),
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("Error: {}", one_line(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause once: many errors repeat their source's
/// message in their own.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

async fn run(cli: &Cli) -> anyhow::Result<std::process::ExitCode> {
    // Benchmarks log nothing (logging is not what they measure) unless asked, e.g.
    // `IDSHARE_LOG=sqlx::query=debug` to list the statements of one redemption.
    if matches!(cli.command, Command::Bench { .. }) && std::env::var_os("IDSHARE_LOG").is_some() {
        init_logging(cli.log_format.unwrap_or_default());
    }
    let outcome: anyhow::Result<()> = match &cli.command {
        Command::Serve {
            listen,
            allow_private_webhook_targets,
            master_key_file,
            metrics_listen,
            metrics_token_file,
            otlp_endpoint,
            storage,
        } => {
            let mut config = load_config(cli, Some(storage), *listen, master_key_file.as_ref())?;
            // The flag only ever allows; leaving it out keeps what the configuration says.
            config.allow_private_webhook_targets |= *allow_private_webhook_targets;
            if metrics_listen.is_some() {
                config.metrics_listen = *metrics_listen;
            }
            if metrics_token_file.is_some() {
                config.metrics_token_file.clone_from(metrics_token_file);
            }
            config
                .read_metrics_token()
                .context("invalid configuration")?;
            if otlp_endpoint.is_some() {
                config.otlp_endpoint.clone_from(otlp_endpoint);
            }
            let traces = config
                .otlp_endpoint
                .as_deref()
                .map(otlp::provider)
                .transpose()?;
            init_tracing(config.log_format, traces.as_ref());
            let served = serve(config).await;
            if let Some(traces) = traces {
                // Sends what is still batched; the SDK blocks on it.
                let flushed = tokio::task::spawn_blocking(move || traces.shutdown()).await;
                if let Ok(Err(e)) = flushed {
                    eprintln!("could not send the last traces: {e}");
                }
            }
            served
        }
        Command::Migrate { storage } => {
            init_logging(cli.log_format.unwrap_or_default());
            open_without_key(cli, storage, true).await?.close().await;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Demo {
            listen,
            master_key_file,
            storage,
        } => {
            let mut config = load_config(cli, Some(storage), *listen, master_key_file.as_ref())?;
            config
                .read_metrics_token()
                .context("invalid configuration")?;
            init_logging(config.log_format);
            demo::run(config).await
        }
        Command::Admin { command } => admin(cli, command).await,
        Command::Mrz {
            command: MrzCommand::Check { lines },
        } => return Ok(mrz_cli::run(lines)),
        Command::Lists {
            command:
                ListsCommand::Import {
                    format,
                    list,
                    file,
                    storage,
                },
        } => {
            let format = format.parse()?;
            let store = open_without_key(cli, storage, false).await?;
            lists_cli::import(&store, format, file, list).await?;
            Ok(())
        }
        Command::Screen {
            list,
            birthdate,
            country,
            pep,
            name,
            storage,
        } => {
            let store = open_without_key(cli, storage, false).await?;
            let kinds = if *pep {
                vec![idshare_domain::screening::EntryKind::Pep]
            } else {
                vec![]
            };
            let result = lists_cli::screen(
                &store,
                list.as_deref(),
                name,
                birthdate.as_deref(),
                country.as_deref(),
                &kinds,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Screening { names, queries },
        } => bench_screening::run(*names, *queries),
        Command::Bench {
            command:
                BenchCommand::Redeem {
                    tokens,
                    concurrency,
                    one_at_a_time,
                    database_url,
                    url,
                },
        } => {
            bench_redeem::run(bench_redeem::Options {
                tokens: *tokens,
                concurrency: *concurrency,
                one_at_a_time: *one_at_a_time,
                database_url: database_url.clone(),
                url: url.clone(),
            })
            .await
        }
        Command::Bench {
            command:
                BenchCommand::Inquiries {
                    inquiries,
                    concurrency,
                    one_at_a_time,
                    database_url,
                },
        } => {
            bench_inquiries::run(bench_inquiries::Options {
                inquiries: *inquiries,
                concurrency: *concurrency,
                one_at_a_time: *one_at_a_time,
                database_url: database_url.clone(),
            })
            .await
        }
        Command::Bench {
            command:
                BenchCommand::Webhooks {
                    events,
                    updates,
                    webhooks,
                    concurrency,
                    webhook_workers,
                    database_url,
                },
        } => {
            bench_webhooks::run(
                *events,
                *updates,
                *webhooks,
                *concurrency,
                *webhook_workers,
                database_url.clone(),
            )
            .await
        }
    };
    outcome.map(|()| std::process::ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = app::open_store_when_available(&config).await?;
    serve_store(store, config).await
}

async fn serve_store(store: Store, config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve_on(listener, AppState::new(store, config)).await
}

/// Serves on a bound listener until SIGINT or SIGTERM.
async fn serve_on(listener: tokio::net::TcpListener, state: AppState) -> anyhow::Result<()> {
    tracing::info!(
        address = %listener.local_addr()?,
        backend = ?state.store().backend(),
        "idshare is serving"
    );
    app::serve(listener, state, app::shutdown_signal()).await
}

async fn admin(cli: &Cli, command: &AdminCommand) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    match command {
        AdminCommand::Org {
            command: OrgCommand::Create { name, storage },
        } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            let store = open_without_key(cli, storage, false).await?;
            let mut tx = store.begin_write().await?;
            let org = orgs::create(&mut tx, name, now).await?;
            tx.commit().await?;
            println!("{}", org.id);
        }
        AdminCommand::ApiKey {
            command:
                ApiKeyCommand::Create {
                    org,
                    environment,
                    permissions,
                    name,
                    storage,
                },
        } => {
            let org_id = OrgId::parse(org)?;
            let environment: Environment = environment.parse()?;
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 {
                bail!("--name must be 1 to 200 characters");
            }
            let permissions = if permissions.is_empty() {
                PermissionSet::all()
            } else {
                PermissionSet::parse_list(&permissions.join(","))?
            };
            let store = open_without_key(cli, storage, false).await?;
            let mut tx = store.begin_write().await?;
            if orgs::get(&mut tx, &org_id).await?.is_none() {
                bail!("no organization {org_id}");
            }
            let (key, secret) = api_keys::create(
                &mut tx,
                &Scope::new(org_id, environment),
                name,
                &permissions,
                now,
            )
            .await?;
            tx.commit().await?;
            eprintln!(
                "created API key {} ({environment}; permissions: {}). The secret is shown only once:",
                key.id,
                permissions.to_list_string()
            );
            println!("{secret}");
        }
        AdminCommand::ApiKey {
            command: ApiKeyCommand::Revoke { id, storage },
        } => {
            let id = ApiKeyId::parse(id)?;
            let store = open_without_key(cli, storage, false).await?;
            let mut tx = store.begin_write().await?;
            let revoked = api_keys::revoke(&mut tx, &id, now).await?;
            tx.commit().await?;
            if !revoked {
                bail!("no active API key {id}");
            }
            eprintln!("revoked {id}");
        }
        AdminCommand::User {
            command:
                UserCommand::Create {
                    org,
                    email,
                    password,
                    role,
                    storage,
                },
        } => {
            let org_id = OrgId::parse(org)?;
            let role: users::Role = role.parse().map_err(anyhow::Error::msg)?;
            if !email.contains('@') {
                bail!("--email must be an email address");
            }
            if password.chars().count() < 12 {
                bail!("the password must be at least 12 characters");
            }
            // Hashing is slow on purpose: before the transaction, off the async threads.
            let password = users::hash_password(password.clone()).await?;
            let store = open_without_key(cli, storage, false).await?;
            let mut tx = store.begin_write().await?;
            if orgs::get(&mut tx, &org_id).await?.is_none() {
                bail!("no organization {org_id}");
            }
            let user = users::create(&mut tx, &org_id, email, &password, role, now).await?;
            tx.commit().await?;
            println!("{}", user.id);
        }
        AdminCommand::User {
            command: UserCommand::Unlock { email, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            let mut tx = store.begin_write().await?;
            let unlocked = users::clear_failed_sign_ins(&mut tx, email).await?;
            tx.commit().await?;
            if !unlocked {
                bail!("no user with the email address {email}");
            }
            eprintln!(
                "unlocked {email}: its failed sign-ins are forgotten (a client address that failed \
                 keeps its own wait, at most 15 minutes)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_on_one_line_with_each_cause_once() {
        let error = anyhow::Error::new(std::io::Error::other("disk full"))
            .context("database error: disk full")
            .context("cannot open the database");
        assert_eq!(
            one_line(&error),
            "cannot open the database: database error: disk full"
        );
    }

    #[test]
    fn screening_input_is_checked_before_any_use() {
        assert_eq!(parse_country("gb"), Ok("GB".to_owned()));
        assert!(
            parse_country("GBR")
                .unwrap_err()
                .contains("alpha-2 code GB")
        );
        assert!(parse_country("XX").is_err());
        assert_eq!(parse_birthdate("1971"), Ok("1971".to_owned()));
        assert_eq!(parse_birthdate("1971-04-02"), Ok("1971-04-02".to_owned()));
        assert!(parse_birthdate("1971-02-30").is_err());
        assert!(parse_name(" \t").is_err());
        assert_eq!(
            parse_name(" Claire Richman "),
            Ok("Claire Richman".to_owned())
        );
    }
}
