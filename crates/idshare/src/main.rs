//! `idshare`: the server binary and its operator commands.

mod bench_common;
mod bench_inquiries;
mod bench_redeem;
mod bench_screening;
mod bench_webhooks;
mod demo;
mod lists_cli;
mod loopback_receiver;
mod master_key_cli;
mod mrz_cli;
mod operator_cli;
mod otlp;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, builder::TypedValueParser};
use idshare_domain::{
    environment::Environment,
    id::{ApiKeyId, JobId, OrgId},
    permission::{Permission, PermissionSet},
    screening::ListFormat,
};
use idshare_server::{
    app,
    config::{Config, LogFormat, Overrides, Secret},
    state::AppState,
};
use idshare_store::{
    MasterKeySource, Scope, Store, StoreError, api_keys,
    audit::{self, Actor},
    orgs, users,
};
use operator_cli::UserChange;
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
    /// Log format (also in the configuration file) [default: text].
    #[arg(long, global = true, value_parser = parse_log_format())]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

fn parse_log_format() -> impl TypedValueParser<Value = LogFormat> {
    possible_values(["text", "json"]).map(|format| {
        if format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    })
}

/// An argument that takes one of `values`, which `--help` lists and errors name.
fn possible_values(
    values: impl IntoIterator<Item = &'static str>,
) -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(values)
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
        /// A master key file from before a rotation, still needed to open what it sealed
        /// (repeatable; also IDSHARE_PREVIOUS_MASTER_KEY_FILES, comma-separated).
        #[arg(long = "previous-master-key-file")]
        previous_master_key_files: Vec<PathBuf>,
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
        /// Apply nothing: list this build's migrations and whether the database has each.
        #[arg(long)]
        status: bool,
        /// With --status: print JSON instead of a table.
        #[arg(long, requires = "status")]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// The job queue: jobs waiting, running or dead, and retrying dead ones.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
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
        /// The zone's lines, each as one argument (quote them: they contain `<`).
        #[arg(required = true, num_args = 1..=3)]
        lines: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ListsCommand {
    /// Import (or replace) a list from a file.
    Import {
        /// The file's format: opensanctions-csv (OpenSanctions' targets.simple.csv) or
        /// ofac-sdn-csv (OFAC's sdn.csv).
        #[arg(long, value_parser = possible_values(ListFormat::ALL.iter().map(|f| f.as_str())))]
        format: String,
        /// The name screening reports refer to (`lists` in a template's report config).
        #[arg(long)]
        list: String,
        /// The list file to read.
        file: PathBuf,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// The imported lists: name, entries and when each was imported.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Delete a list and its entries (screenings stop using it).
    Delete {
        /// The list's name, as `idshare lists list` shows it.
        #[arg(long)]
        list: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Jobs not yet done (waiting, running or dead), the most recently changed first, with the
    /// cause of their last failure.
    List {
        /// Only dead jobs: those that failed every attempt and will not run again unless retried.
        #[arg(long)]
        dead: bool,
        /// At most this many jobs.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Queue dead jobs again with fresh attempts (all or none: every id must name a dead job).
    Retry {
        /// The dead jobs' ids (job_…), as `idshare jobs list --dead` shows them.
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Screenings per second through the index next to a brute-force scan, same run.
    Screening {
        /// Generated names in the list screened against.
        #[arg(long, default_value_t = 300_000)]
        names: usize,
        /// Screenings to run (half spelling variants of listed names, half other names).
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
    },
    /// Share-token redemption latency, throughput and cost (server CPU, SQL statements and
    /// transactions per redemption) next to the storage ceiling, same run.
    Redeem {
        /// Share tokens to create and redeem.
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
        /// Inquiries to create and submit.
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
    /// The master key: a new key file, what is sealed under which key, rotation.
    MasterKey {
        #[command(subcommand)]
        command: master_key_cli::MasterKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an organization; prints its id.
    Create {
        /// The organization's name, as the dashboard and partners see it.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Every organization: id, creation, name.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an API key; prints the secret (shown only this once).
    Create {
        /// The organization's id (org_…).
        #[arg(long)]
        org: String,
        /// The environment the key works in: its data and the other environment's never mix.
        #[arg(long, value_parser = possible_values(Environment::ALL.iter().map(|e| e.as_str())))]
        environment: String,
        /// Permissions (repeatable or comma-separated); all permissions when omitted.
        #[arg(
            long = "permission",
            value_delimiter = ',',
            value_parser = possible_values(Permission::ALL.iter().map(|p| p.as_str()))
        )]
        permissions: Vec<String>,
        /// A name for people: what the key is for.
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// API keys (revoked ones too) with their last use, to the minute.
    List {
        /// Only this organization's keys (org_…).
        #[arg(long)]
        org: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke an API key by id (api_…).
    Revoke {
        /// The key's id (api_…), as `idshare admin api-key list` shows it.
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a dashboard user; prints its id.
    Create {
        /// The organization's id (org_…).
        #[arg(long)]
        org: String,
        /// The address the user signs in with (unique across organizations).
        #[arg(long)]
        email: String,
        /// The password, at least 12 characters (or IDSHARE_ADMIN_PASSWORD, kept out of shell
        /// history).
        #[arg(long, env = "IDSHARE_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        /// What the user may do: admin (everything), reviewer (decide inquiries) or viewer
        /// (read only).
        #[arg(long, default_value = "admin", value_parser = possible_values(ROLES))]
        role: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Dashboard users of every organization (or of one).
    List {
        /// Only this organization's users (org_…).
        #[arg(long)]
        org: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Lift the wait that failed sign-ins put on a user's account (browsers the account does
    /// not trust are refused while it lasts).
    Unlock {
        /// The user's sign-in address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Invite a user: prints the path of its one-time set-password link (valid 72 hours; prefix
    /// it with the server's public URL and hand it over: idshare sends no mail).
    Invite {
        /// The organization's id (org_…).
        #[arg(long)]
        org: String,
        /// The address the user will sign in with (unique across organizations).
        #[arg(long)]
        email: String,
        /// What the user may do: admin (everything), reviewer (decide inquiries) or viewer
        /// (read only).
        #[arg(long, value_parser = possible_values(ROLES))]
        role: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Change a user's role (the organization's last active admin stays one).
    SetRole {
        /// The user's sign-in address.
        #[arg(long)]
        email: String,
        /// The new role: admin (everything), reviewer (decide inquiries) or viewer (read only).
        #[arg(long, value_parser = possible_values(ROLES))]
        role: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Disable a user: its sessions end at once and it cannot sign in.
    Disable {
        /// The user's sign-in address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's sign-in address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Remove a user for good (its audit entries stay; its address cannot be used again).
    Remove {
        /// The user's sign-in address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Reset a user's password: the old one stops working, its sessions end; prints the path
    /// of a one-time set-password link (valid 72 hours).
    ResetPassword {
        /// The user's sign-in address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// A user's live dashboard sessions.
    Sessions {
        /// The user's sign-in address.
        #[arg(long)]
        email: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// End every session of a user (it can sign in again).
    RevokeSessions {
        /// The user's sign-in address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// The roles of dashboard users.
const ROLES: [&str; 3] = ["admin", "reviewer", "viewer"];

fn load_config(
    cli: &Cli,
    storage: Option<&StorageArgs>,
    listen: Option<std::net::SocketAddr>,
    master_key_file: Option<&PathBuf>,
    previous_master_key_files: &[PathBuf],
) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen,
        data_dir: storage.and_then(|s| s.data_dir.clone()),
        database_url: storage
            .and_then(|s| s.database_url.clone())
            .map(Secret::new),
        master_key_file: master_key_file.cloned(),
        previous_master_key_files: (!previous_master_key_files.is_empty())
            .then(|| previous_master_key_files.to_vec()),
        log_format: cli.log_format,
    };
    if let Some(file) = &cli.config {
        std::fs::File::open(file)
            .with_context(|| format!("cannot read the configuration file {}", file.display()))?;
    }
    Config::load(cli.config.as_deref(), &overrides)
        .map_err(|error| anyhow::anyhow!("invalid configuration: {}", configuration_error(&error)))
}

/// A configuration error on one line: a TOML parse error's excerpt of the file (the lines that
/// draw it) is left out, its message and the line and column it gives are kept.
fn configuration_error(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    let excerpt = |line: &str| {
        let line = line.trim_start();
        line.starts_with('|')
            || line
                .split_once(" |")
                .is_some_and(|(number, _)| number.chars().all(|c| c.is_ascii_digit()))
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !excerpt(line))
        .collect::<Vec<_>>()
        .join(": ")
        .replace(": in ", " in ")
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
    let config = load_config(cli, Some(storage), None, None, &[])?;
    Store::open(
        &config.database_url(),
        create,
        MasterKeySource::NotNeeded,
        config.database_timeout(),
    )
    .await
    .map_err(storage_error)
}

/// A failure to open the database, said with what to do about a missing one.
fn storage_error(error: StoreError) -> anyhow::Error {
    match error {
        StoreError::NoDatabase(path) => anyhow::anyhow!(
            "no database at {}: check --data-dir/--database-url, or create it with \
                 `idshare migrate` (or `idshare serve`) and the same options",
            path.display()
        ),
        other => app::open_error(other),
    }
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
            previous_master_key_files,
            metrics_listen,
            metrics_token_file,
            otlp_endpoint,
            storage,
        } => {
            let mut config = load_config(
                cli,
                Some(storage),
                *listen,
                master_key_file.as_ref(),
                previous_master_key_files,
            )?;
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
        Command::Migrate {
            status: true,
            json,
            storage,
        } => {
            let config = load_config(cli, Some(storage), None, None, &[])?;
            let states = Store::migration_status(&config.database_url(), config.database_timeout())
                .await
                .map_err(storage_error)?;
            operator_cli::print_migration_status(&states, operator_cli::Output::from_flag(*json));
            Ok(())
        }
        Command::Migrate { storage, .. } => {
            init_logging(cli.log_format.unwrap_or_default());
            open_without_key(cli, storage, true).await?.close().await;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Jobs {
            command:
                JobsCommand::List {
                    dead,
                    limit,
                    json,
                    storage,
                },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::jobs_list(
                &store,
                *dead,
                *limit,
                operator_cli::Output::from_flag(*json),
            )
            .await
        }
        Command::Jobs {
            command: JobsCommand::Retry { ids, storage },
        } => {
            let ids = ids
                .iter()
                .map(|id| JobId::parse(id))
                .collect::<Result<Vec<_>, _>>()?;
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::jobs_retry(&store, &ids).await
        }
        Command::Demo {
            listen,
            master_key_file,
            storage,
        } => {
            let mut config =
                load_config(cli, Some(storage), *listen, master_key_file.as_ref(), &[])?;
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
        Command::Lists {
            command: ListsCommand::List { json, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::lists_list(&store, operator_cli::Output::from_flag(*json)).await
        }
        Command::Lists {
            command: ListsCommand::Delete { list, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::lists_delete(&store, list).await
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
    let store = state.store();
    let crypto = store.crypto();
    tracing::info!(
        address = %listener.local_addr()?,
        backend = ?store.backend(),
        master_key = %state.config().describe_master_key(store.master_key_origin()),
        master_key_id = %crypto.current_key_id().map(ToString::to_string).unwrap_or_default(),
        previous_master_key_ids = %crypto.previous_key_ids().map(ToString::to_string).collect::<Vec<_>>().join(","),
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
        AdminCommand::Org {
            command: OrgCommand::List { json, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::org_list(&store, operator_cli::Output::from_flag(*json)).await?;
        }
        AdminCommand::ApiKey {
            command: ApiKeyCommand::List { org, json, storage },
        } => {
            let org = org.as_deref().map(OrgId::parse).transpose()?;
            let store = open_without_key(cli, storage, false).await?;
            let output = operator_cli::Output::from_flag(*json);
            operator_cli::api_key_list(&store, org.as_ref(), output).await?;
        }
        AdminCommand::User {
            command: UserCommand::List { org, json, storage },
        } => {
            let org = org.as_deref().map(OrgId::parse).transpose()?;
            let store = open_without_key(cli, storage, false).await?;
            let output = operator_cli::Output::from_flag(*json);
            operator_cli::user_list(&store, org.as_ref(), output).await?;
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
            let scope = Scope::new(org_id, environment);
            let (key, secret) = api_keys::create(&mut tx, &scope, name, &permissions, now).await?;
            // An operator at the command line is neither a user nor a key: the system acts.
            let object = ("api-key", key.id.as_str());
            audit::record_by(
                &mut tx,
                &scope,
                &Actor::system(),
                "api-key.created",
                object,
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
            if revoked {
                let scope = api_keys::list_all(&mut tx, None)
                    .await?
                    .into_iter()
                    .find(|key| key.id == id)
                    .map(|key| key.scope)
                    .context("the revoked key vanished")?;
                let object = ("api-key", id.as_str());
                audit::record_by(
                    &mut tx,
                    &scope,
                    &Actor::system(),
                    "api-key.revoked",
                    object,
                    now,
                )
                .await?;
            }
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
        AdminCommand::MasterKey { command } => {
            return master_key_cli::run(command, |storage, master_key_file, previous| {
                load_config(cli, Some(storage), None, master_key_file, previous)
            })
            .await;
        }
        AdminCommand::User {
            command:
                UserCommand::Invite {
                    org,
                    email,
                    role,
                    storage,
                },
        } => {
            let org_id = OrgId::parse(org)?;
            let role: users::Role = role.parse().map_err(anyhow::Error::msg)?;
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::user_invite(&store, &org_id, email, role, now).await?;
        }
        AdminCommand::User {
            command:
                UserCommand::SetRole {
                    email,
                    role,
                    storage,
                },
        } => {
            let role: users::Role = role.parse().map_err(anyhow::Error::msg)?;
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::user_change(&store, email, UserChange::SetRole(role), now).await?;
        }
        AdminCommand::User {
            command: UserCommand::Disable { email, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::user_change(&store, email, UserChange::Disable, now).await?;
        }
        AdminCommand::User {
            command: UserCommand::Enable { email, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::user_change(&store, email, UserChange::Enable, now).await?;
        }
        AdminCommand::User {
            command: UserCommand::Remove { email, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::user_change(&store, email, UserChange::Remove, now).await?;
        }
        AdminCommand::User {
            command: UserCommand::ResetPassword { email, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::user_change(&store, email, UserChange::ResetPassword, now).await?;
        }
        AdminCommand::User {
            command: UserCommand::RevokeSessions { email, storage },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            operator_cli::user_change(&store, email, UserChange::RevokeSessions, now).await?;
        }
        AdminCommand::User {
            command:
                UserCommand::Sessions {
                    email,
                    json,
                    storage,
                },
        } => {
            let store = open_without_key(cli, storage, false).await?;
            let output = operator_cli::Output::from_flag(*json);
            operator_cli::user_sessions(&store, email, output, now).await?;
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

    /// `--help` is the operator's manual: every command and argument says what it is for.
    #[test]
    fn every_command_and_argument_is_explained() {
        fn walk(command: &clap::Command, path: &str, unexplained: &mut Vec<String>) {
            if command.get_about().is_none() {
                unexplained.push(path.to_owned());
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && id != "help" && id != "version" {
                    unexplained.push(format!("{path} <{id}>"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), unexplained);
            }
        }
        use clap::CommandFactory;
        let command = Cli::command();
        command.clone().debug_assert();
        let mut unexplained = Vec::new();
        walk(&command, "idshare", &mut unexplained);
        assert!(
            unexplained.is_empty(),
            "without help text: {unexplained:#?}"
        );
    }

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
    fn configuration_errors_fit_on_one_line_without_the_file_excerpt() {
        let toml = "TOML parse error at line 1, column 3\n  |\n1 | [x\n  |   ^\n\
                    invalid table header\nexpected `.`, `]`\n in bad.toml TOML file";
        assert_eq!(
            configuration_error(&toml),
            "TOML parse error at line 1, column 3: invalid table header: expected `.`, `]` in \
             bad.toml TOML file"
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
