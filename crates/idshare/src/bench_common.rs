//! What the benchmark commands share: a small client of the public API, organizations with keys
//! created directly in the store, quantiles, peak RSS and the storage ceiling; and, for the
//! benchmarks that run the server in this process, the load thread, the cost of a phase (the
//! server's CPU time and its store's counts), the observer that waits for background work, and
//! the goals of issue 11.
//!
//! How the server's CPU time is told apart from the load generator's: the whole load (HTTP client
//! and observer) runs on one thread of its own with a single-threaded runtime
//! ([`on_load_thread`]), and a phase's server CPU is the process's CPU time minus that thread's
//! (both read with `clock_gettime`, process and thread CPU clocks). On SQLite the observer's
//! queries run on the observer store's SQLite threads, which that subtraction does not catch:
//! their cost is measured afterwards, per lookup, and subtracted ([`Cost::less_observer`]).

use std::{
    future::Future,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use idshare_domain::{environment::Environment, permission::PermissionSet};
use idshare_server::{
    app,
    config::{Config, Secret},
    state::AppState,
};
use idshare_store::{Counters, Scope, Store, api_keys, orgs};
use reqwest::StatusCode;
use rustix::time::{ClockId, Timespec, clock_gettime};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Sequential single-row write transactions timed for the storage ceiling.
pub const CEILING_WRITES: usize = 2_000;

/// The public API of the server under test.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    /// GET `path`, or POST `body` to it.
    pub async fn send(
        &self,
        key: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(body) => self.client.post(url).json(body),
            None => self.client.get(url),
        };
        let response = request.bearer_auth(key).send().await?;
        let status = response.status();
        let text = response.text().await?;
        let doc = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, doc))
    }

    /// Like [`Api::send`], failing unless the answer has status `want`.
    pub async fn expect(
        &self,
        key: &str,
        path: &str,
        body: Option<&Value>,
        want: StatusCode,
    ) -> Result<Value> {
        let (status, doc) = self.send(key, path, body).await?;
        if status != want {
            bail!("{path}: {status}, expected {want}: {doc}");
        }
        Ok(doc)
    }

    /// POSTs `body`, expects 201, returns the new object's id.
    pub async fn create(&self, key: &str, path: &str, body: &Value) -> Result<String> {
        let doc = self
            .expect(key, path, Some(body), StatusCode::CREATED)
            .await?;
        id_of(&doc)
    }
}

pub fn id_of(doc: &Value) -> Result<String> {
    doc["data"]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no data.id in {doc}"))
}

/// A template with these string fields and a required email-address verification.
pub fn template_body(fields: &[&str]) -> Value {
    let schemas: Vec<Value> = fields
        .iter()
        .map(|k| json!({"key": k, "type": "string"}))
        .collect();
    json!({"data": {"attributes": {"name": "bench", "field-schemas": schemas,
        "verifications": [{"type": "email-address", "required": true}]}}})
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q` quantile (nearest rank) of sorted durations.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Peak resident set size of this process (VmHWM), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A new organization with an all-permissions sandbox key: `(org id, key secret)`.
pub async fn org_with_key(store: &Store, name: &str) -> Result<(String, String)> {
    let now = OffsetDateTime::now_utc();
    let mut tx = store.begin_write().await?;
    let org = orgs::create(&mut tx, name, now).await?;
    let (_, secret) = api_keys::create(
        &mut tx,
        &Scope::new(org.id.clone(), Environment::Sandbox),
        "bench",
        &PermissionSet::all(),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok((org.id.to_string(), secret))
}

/// The storage ceiling: [`CEILING_WRITES`] sequential single-row write transactions
/// (`begin_write`, one `INSERT` into `organizations`, commit) through `store`. Returns the rate
/// per second and the time taken.
pub async fn storage_ceiling(store: &Store) -> Result<(f64, Duration)> {
    let started = Instant::now();
    for i in 0..CEILING_WRITES {
        let mut tx = store.begin_write().await?;
        orgs::create(&mut tx, &format!("ceiling {i}"), OffsetDateTime::now_utc()).await?;
        tx.commit().await?;
    }
    let took = started.elapsed();
    Ok((CEILING_WRITES as f64 / took.as_secs_f64().max(1e-9), took))
}

/// The server in this process on loopback: the `--database-url` database (default: SQLite in a
/// temporary directory), 2 job workers, no effective rate limit.
pub struct LocalServer {
    pub store: Store,
    pub config: Config,
    /// `http://127.0.0.1:port`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<()>>,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    pub async fn start(database_url: Option<String>) -> Result<Self> {
        idshare_service::install_tls_provider();
        let dir = tempfile::tempdir()?;
        let data_dir = dir.path().to_path_buf();
        let database_url = database_url.unwrap_or_else(|| Store::sqlite_url(&data_dir));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let config = Config {
            data_dir,
            database_url: Some(Secret::new(database_url)),
            listen: listener.local_addr()?,
            public_url: Some(base.clone()),
            workers: 2,
            rate_limit_per_minute: 100_000_000,
            ..Config::default()
        };
        let store = app::open_store(&config).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = AppState::new(store.clone(), config.clone());
        let server = tokio::spawn(app::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            store,
            config,
            base,
            stop,
            server,
            _dir: dir,
        })
    }

    /// Stops the server (it finishes the requests and jobs in hand) and waits for it.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.server.await?
    }
}

/// How often the observer looks again for work still running in a burst.
pub const BURST_POLL: Duration = Duration::from_millis(5);
/// How long the server's store must stay idle before background work counts as finished.
pub const QUIET: Duration = Duration::from_millis(20);
/// How long an idle store must stay idle after a burst (workers finish the jobs in hand).
pub const BURST_QUIET: Duration = Duration::from_millis(100);
/// The observer looks again at least this often, store activity or not.
const FALLBACK_POLL: Duration = Duration::from_millis(50);

/// Runs `load` on a thread of its own with a single-threaded runtime, so that the load
/// generator's CPU time is that thread's (see the module's documentation). The server's store
/// must not be used on it (its connections belong to the server's runtime), except to read its
/// counters.
pub async fn on_load_thread<F, Fut, T>(load: F) -> Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>>,
    T: Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-load".to_owned())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(load()));
            let _ = done.send(outcome);
        })?;
    result.await.context("the load thread died")?
}

fn duration(t: Timespec) -> Duration {
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// CPU time used so far by the whole process and by the calling thread.
#[derive(Debug, Clone, Copy)]
struct CpuClocks {
    process: Duration,
    thread: Duration,
}

impl CpuClocks {
    fn now() -> Self {
        Self {
            process: duration(clock_gettime(ClockId::ProcessCPUTime)),
            thread: duration(clock_gettime(ClockId::ThreadCPUTime)),
        }
    }
}

/// What one phase cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    pub wall: Duration,
    /// CPU time of the process outside the load thread, less the observer's share once
    /// [`Cost::less_observer`] took it off. `None` when the server is not in this process.
    pub server_cpu: Option<Duration>,
    /// The server store's counts. `None` when the server is not in this process.
    pub counters: Option<Counters>,
    /// Observer lookups made during the phase, and the CPU time they were estimated to cost.
    pub observer_lookups: usize,
    pub observer_cpu: Duration,
}

impl Cost {
    /// The same cost without the CPU time of `lookups` observer lookups at `each`.
    pub fn less_observer(self, lookups: usize, each: Duration) -> Self {
        let share = each * u32::try_from(lookups).unwrap_or(u32::MAX);
        Self {
            server_cpu: self.server_cpu.map(|cpu| cpu.saturating_sub(share)),
            observer_lookups: lookups,
            observer_cpu: share,
            ..self
        }
    }

    /// The sum of two phases' costs.
    pub fn plus(self, other: Cost) -> Self {
        // `None` (nothing measured, as in `Cost::default()`) adds nothing.
        fn sum<T>(a: Option<T>, b: Option<T>, add: impl Fn(T, T) -> T) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(add(a, b)),
                (a, b) => a.or(b),
            }
        }
        Self {
            wall: self.wall + other.wall,
            server_cpu: sum(self.server_cpu, other.server_cpu, |a, b| a + b),
            counters: sum(self.counters, other.counters, |a, b| Counters {
                statements: a.statements + b.statements,
                write_transactions: a.write_transactions + b.write_transactions,
                write_commits: a.write_commits + b.write_commits,
                read_transactions: a.read_transactions + b.read_transactions,
            }),
            observer_lookups: self.observer_lookups + other.observer_lookups,
            observer_cpu: self.observer_cpu + other.observer_cpu,
        }
    }

    /// Server CPU time per operation, in milliseconds.
    pub fn cpu_ms_per(&self, operations: usize) -> Option<f64> {
        self.server_cpu
            .map(|cpu| millis(cpu) / operations.max(1) as f64)
    }

    /// Statements, write transactions (begun), write commits and read transactions per
    /// operation.
    pub fn counts_per(&self, operations: usize) -> Option<[f64; 4]> {
        let n = operations.max(1) as f64;
        self.counters.map(|c| {
            [
                c.statements as f64 / n,
                c.write_transactions as f64 / n,
                c.write_commits as f64 / n,
                c.read_transactions as f64 / n,
            ]
        })
    }

    /// Two lines: server CPU and store counts per `what` (`operations` of them).
    pub fn print(&self, indent: &str, what: &str, operations: usize) {
        match self.cpu_ms_per(operations) {
            Some(cpu) => {
                let observer = if self.observer_lookups == 0 {
                    String::new()
                } else {
                    format!(
                        ", less {:.1} ms for the observer's {} lookups",
                        millis(self.observer_cpu),
                        self.observer_lookups
                    )
                };
                println!(
                    "{indent}server CPU: {cpu:.3} ms per {what} ({:.1} ms for {operations} in \
                     {:.2} s: process CPU − load thread's{observer})",
                    self.server_cpu.map(millis).unwrap_or_default(),
                    self.wall.as_secs_f64(),
                )
            }
            None => {
                println!("{indent}server CPU: not measured (the server is not in this process)")
            }
        }
        match self.counts_per(operations) {
            Some([statements, writes, commits, reads]) => println!(
                "{indent}store: {statements:.2} SQL statements, {writes:.2} write transactions \
                 ({commits:.2} committed), {reads:.2} read transactions per {what}"
            ),
            None => println!("{indent}store: not counted (the server is not in this process)"),
        }
    }
}

/// Measures one phase on the load thread: wall time, the server's CPU time, the counts of the
/// server's store (`server`: read only for its counters; `None` when the server is elsewhere).
pub struct Meter {
    server: Option<Store>,
    started: Instant,
    cpu: CpuClocks,
    counters: Option<Counters>,
}

impl Meter {
    pub fn start(server: Option<&Store>) -> Self {
        Self {
            server: server.cloned(),
            started: Instant::now(),
            cpu: CpuClocks::now(),
            counters: server.map(Store::counters),
        }
    }

    pub fn stop(&self) -> Cost {
        let cpu = CpuClocks::now();
        let wall = self.started.elapsed();
        let in_process = self.server.is_some();
        Cost {
            wall,
            server_cpu: in_process.then(|| {
                (cpu.process.saturating_sub(self.cpu.process))
                    .saturating_sub(cpu.thread.saturating_sub(self.cpu.thread))
            }),
            counters: self
                .server
                .as_ref()
                .zip(self.counters)
                .map(|(store, before)| store.counters() - before),
            observer_lookups: 0,
            observer_cpu: Duration::ZERO,
        }
    }
}

/// Waits for background work by looking at its result in the database through a store of its
/// own (its statements are not the server's), counting its lookups.
pub struct Observer {
    /// The server's store, read only for its counters: a lookup is worth making only after
    /// the server committed something.
    server: Option<Store>,
    /// The least time between two lookups.
    gap: Duration,
    pub lookups: usize,
}

impl Observer {
    /// `gap`: the least time between two lookups (zero: after every commit of the server).
    pub fn new(server: Option<&Store>, gap: Duration) -> Self {
        Self {
            server: server.cloned(),
            gap,
            lookups: 0,
        }
    }

    fn commits(&self) -> Option<u64> {
        self.server.as_ref().map(|s| s.counters().write_commits)
    }

    /// Waits until `done` answers true; returns when it did. `done` is asked at once, then
    /// again each time the server has committed a write transaction since the last time (at
    /// most once per gap), and at least every 50 ms.
    pub async fn until<F, Fut>(&mut self, mut done: F) -> Result<Instant>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool>>,
    {
        // When the last lookup was made, and the server's commits at that moment.
        let mut asked: Option<(Instant, Option<u64>)> = None;
        loop {
            let commits = self.commits();
            let due = match asked {
                None => true,
                Some((at, seen)) => {
                    at.elapsed() >= FALLBACK_POLL
                        || (at.elapsed() >= self.gap && (commits.is_none() || commits != seen))
                }
            };
            if due {
                asked = Some((Instant::now(), commits));
                self.lookups += 1;
                if done().await? {
                    return Ok(Instant::now());
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until the server's store has run no statement and begun no transaction for
    /// `quiet` (workers finishing the jobs in hand, then finding the queue empty). Returns at
    /// once when the server is not in this process.
    pub async fn quiet(&self, quiet: Duration) {
        let Some(server) = &self.server else {
            return;
        };
        let mut last = server.counters();
        let mut since = Instant::now();
        while since.elapsed() < quiet {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let now = server.counters();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
    }
}

/// The CPU time one observer lookup costs outside the load thread (on SQLite, its store's
/// threads): `lookups` lookups measured by `meter` in a pass of their own.
pub fn per_lookup(pass: &Cost, lookups: usize) -> Duration {
    let cpu = pass.server_cpu.unwrap_or_default();
    cpu / u32::try_from(lookups.max(1)).unwrap_or(u32::MAX)
}

/// `p50 …, p90 …, p99 …` of sorted durations, in milliseconds.
pub fn quantiles(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        millis(quantile(sorted, 0.50)),
        millis(quantile(sorted, 0.90)),
        millis(quantile(sorted, 0.99)),
        millis(sorted.last().copied().unwrap_or_default()),
    )
}

/// One goal of issue 11 next to what this run measured.
pub struct Goal {
    pub what: &'static str,
    pub target: f64,
    pub measured: Option<f64>,
    /// Met when the measured value is at least the target (else: at most).
    pub at_least: bool,
}

pub fn print_goals(goals: &[Goal]) {
    println!("goals (issue 11; printed, never asserted):");
    for goal in goals {
        let (sign, verdict) = match goal.measured {
            None => (if goal.at_least { "≥" } else { "≤" }, "not measured"),
            Some(m)
                if (goal.at_least && m >= goal.target) || (!goal.at_least && m <= goal.target) =>
            {
                (if goal.at_least { "≥" } else { "≤" }, "met")
            }
            Some(_) => (if goal.at_least { "≥" } else { "≤" }, "MISSED"),
        };
        let measured = goal
            .measured
            .map(|m| format!("{m:.3}"))
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "  {:<58} {sign} {:>8.3}   measured {:>9}   {verdict}",
            goal.what, goal.target, measured
        );
    }
}

/// The duration from `earlier` to `later`, zero when `later` is not later.
pub fn between(earlier: OffsetDateTime, later: OffsetDateTime) -> Duration {
    Duration::try_from(later - earlier).unwrap_or_default()
}
