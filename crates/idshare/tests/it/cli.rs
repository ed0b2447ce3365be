//! The binary as an operator uses it: admin commands, `migrate`, `serve` with JSON logs and a
//! graceful stop on SIGTERM, refused configuration, and the `demo` tour.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Command, Output, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    browser::Browser,
    dashboard::{TOKENS, sign_in_attempt},
    helpers::{Backend, create_postgres_database, expect_error, expect_status, standard_template},
};

pub(crate) fn idshare(args: &[&str], storage: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(args)
        .args(storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .output()
        .expect("run idshare")
}

pub(crate) fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

/// `--data-dir DIR`, plus `--database-url` of a fresh database on PostgreSQL.
pub(crate) async fn storage_for(backend: Backend, data_dir: &Path) -> Vec<String> {
    let mut storage = vec!["--data-dir".to_owned(), data_dir.display().to_string()];
    if backend == Backend::Postgres {
        let (url, _) = create_postgres_database().await;
        storage.extend(["--database-url".to_owned(), url]);
    }
    storage
}

/// Runs idshare with `env` until it exits. A command expected to refuse must not start
/// serving instead: still running after a while, it is killed and the test fails.
pub(crate) fn idshare_exits(args: &[&str], storage: &[String], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(args)
        .args(storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "idshare {args:?} still runs after 30 s instead of exiting; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The command failed and said why in one line; returns that line.
pub(crate) fn refused(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    assert!(
        !output.status.success(),
        "{what} should fail; stderr: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
    stderr
}

/// A running `idshare serve` (port 0, JSON logs), stopped with SIGTERM on drop.
pub(crate) struct Server {
    process: std::process::Child,
    address: String,
    /// The fields of the startup line ("idshare is serving").
    pub(crate) started: serde_json::Value,
}

impl Server {
    pub(crate) fn start(storage: &[String], flags: &[&str]) -> Self {
        let mut process = Command::new(env!("CARGO_BIN_EXE_idshare"))
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .args(flags)
            .args(storage)
            .env_remove("IDSHARE_DATABASE_URL")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(process.stderr.take().unwrap()).lines();
        let started = loop {
            let line = lines.next().expect("server logs").unwrap();
            let log: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("JSON log line: {line}"));
            if log["fields"]["message"] == "idshare is serving" {
                break log["fields"].clone();
            }
        };
        let address = started["address"].as_str().unwrap().to_owned();
        // Keep reading, so that the server never writes to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        // Once it answers, its signal handlers are in place: SIGTERM is a graceful stop.
        let mut probe = std::net::TcpStream::connect(&address).unwrap();
        std::io::Write::write_all(
            &mut probe,
            b"GET /healthz HTTP/1.1\r\nHost: idshare\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut answer = String::new();
        probe.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        Self {
            process,
            address,
            started,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// SIGTERM, and the graceful stop's exit status.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.process.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        self.process.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn operator_commands_drive_a_fresh_instance(backend: Backend) {
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    if backend == Backend::Postgres {
        let (url, _) = create_postgres_database().await;
        storage.extend(["--database-url".to_owned(), url]);
    }
    if backend == Backend::Postgres {
        // An empty database: every migration of this build is pending, none applied.
        let status = json_out(&idshare(&["migrate", "--status", "--json"], &storage));
        let status = status.as_array().unwrap();
        assert!(status.len() > 10, "{status:?}");
        assert!(
            status.iter().all(|m| m["status"] == "pending"),
            "{status:?}"
        );
    }
    stdout(&idshare(&["migrate"], &storage));
    let status = idshare(&["migrate", "--status"], &storage);
    let table = stdout(&status);
    assert!(table.starts_with("VERSION  STATUS"), "{table}");
    assert!(table.contains("0001     applied"), "{table}");
    assert!(!table.contains("pending"), "{table}");
    assert!(String::from_utf8_lossy(&status.stderr).contains("up to date"));
    let org = stdout(&idshare(
        &["admin", "org", "create", "--name", "Acme Bank"],
        &storage,
    ));
    assert!(org.starts_with("org_"), "{org}");
    let key = stdout(&idshare(
        &[
            "admin",
            "api-key",
            "create",
            "--org",
            &org,
            "--environment",
            "sandbox",
        ],
        &storage,
    ));
    assert!(key.starts_with("idsk_sandbox_"), "{key}");
    let reader = stdout(&idshare(
        &[
            "admin",
            "api-key",
            "create",
            "--org",
            &org,
            "--environment",
            "production",
            "--permission",
            "inquiry.read",
        ],
        &storage,
    ));
    assert!(reader.starts_with("idsk_production_"));
    let user = stdout(&idshare(
        &[
            "admin",
            "user",
            "create",
            "--org",
            &org,
            "--email",
            "ops@acme.test",
            "--password",
            "correct horse battery",
            "--role",
            "reviewer",
        ],
        &storage,
    ));
    assert!(user.starts_with("user_"));

    for refused in [
        vec![
            "admin",
            "api-key",
            "create",
            "--org",
            &org,
            "--environment",
            "staging",
        ],
        vec![
            "admin",
            "api-key",
            "create",
            "--org",
            &org,
            "--environment",
            "sandbox",
            "--permission",
            "inquiry.fly",
        ],
        vec![
            "admin",
            "api-key",
            "create",
            "--org",
            "org_AAAAAAAAAAAAAAAAAAAAAAAA",
            "--environment",
            "sandbox",
        ],
        vec![
            "admin",
            "user",
            "create",
            "--org",
            &org,
            "--email",
            "x@y.z",
            "--password",
            "short",
        ],
        vec![
            "admin",
            "api-key",
            "create",
            "--org",
            &org,
            "--environment",
            "sandbox",
            "--name",
            " ",
        ],
        vec!["admin", "api-key", "revoke", "api_AAAAAAAAAAAAAAAAAAAAAAAA"],
    ] {
        let output = idshare(&refused, &storage);
        assert!(!output.status.success(), "{refused:?} should fail");
        assert!(!output.stderr.is_empty(), "{refused:?} says why");
    }

    // Serve on port 0 with JSON logs; the address comes from the first log line.
    let server = Server::start(&storage, &["--allow-private-webhook-targets"]);
    let client = reqwest::Client::new();
    let url = |path: &str| server.url(path);
    let created = client
        .post(url("/api/v1/inquiry-templates"))
        .bearer_auth(&key)
        .json(&json!({"data": {"attributes": standard_template("CLI")}}))
        .send()
        .await
        .unwrap();
    expect_status(created, StatusCode::CREATED).await;
    let forbidden = client
        .post(url("/api/v1/inquiry-templates"))
        .bearer_auth(&reader)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(forbidden, StatusCode::FORBIDDEN).await;
    // `--allow-private-webhook-targets` lets a webhook point at loopback (refused by default).
    let webhook = client
        .post(url("/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"data": {"attributes": {"url": "http://127.0.0.1:9/hook", "enabled-events": ["*"]}}}))
        .send()
        .await
        .unwrap();
    expect_status(webhook, StatusCode::CREATED).await;

    // Revoking a key takes effect at once on the running server.
    let config = idshare_server::config::Config {
        data_dir: dir.path().to_path_buf(),
        database_url: storage
            .get(3)
            .map(|url| idshare_server::config::Secret::new(url.clone())),
        ..Default::default()
    };
    let store = idshare_server::app::open_store(&config).await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    let key_id = idshare_store::api_keys::find_by_secret(&mut tx, &key)
        .await
        .unwrap()
        .unwrap()
        .id;
    drop(tx);
    store.close().await;
    stdout(&idshare(
        &["admin", "api-key", "revoke", key_id.as_str()],
        &storage,
    ));
    // The operator's key changes are in the organization's audit log, by the system.
    let store = idshare_server::app::open_store(&config).await.unwrap();
    let mut tx = store.begin_read().await.unwrap();
    let scope = idshare_store::Scope::new(
        idshare_domain::id::OrgId::parse(&org).unwrap(),
        idshare_domain::environment::Environment::Sandbox,
    );
    let entries = idshare_store::audit::list(
        &mut tx,
        &scope,
        None,
        None,
        idshare_store::Cursor::Start,
        100,
    )
    .await
    .unwrap()
    .unwrap()
    .items;
    drop(tx);
    store.close().await;
    let by_system: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.actor == idshare_store::audit::Principal::System)
        .map(|e| (e.action.as_str(), e.object_id.as_str()))
        .collect();
    assert!(
        by_system.contains(&("api-key.revoked", key_id.as_str())),
        "{by_system:?}"
    );
    assert!(
        by_system.contains(&("api-key.created", key_id.as_str())),
        "{by_system:?}"
    );

    // What an operator sees: organizations, users, keys with their last use.
    let orgs = json_out(&idshare(&["admin", "org", "list", "--json"], &storage));
    assert_eq!(orgs[0]["id"], org.as_str());
    assert_eq!(orgs[0]["name"], "Acme Bank");
    let users = json_out(&idshare(
        &["admin", "user", "list", "--org", &org, "--json"],
        &storage,
    ));
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["email-address"], "ops@acme.test");
    assert_eq!(users[0]["role"], "reviewer");
    let keys = json_out(&idshare(&["admin", "api-key", "list", "--json"], &storage));
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let used = keys.iter().find(|k| k["id"] == key_id.as_str()).unwrap();
    assert_eq!(used["status"], "revoked");
    assert_eq!(used["environment"], "sandbox");
    assert!(used["last-used-at"].is_string(), "{used}");
    let other = keys.iter().find(|k| k["id"] != key_id.as_str()).unwrap();
    assert_eq!(other["status"], "active");
    assert_eq!(other["permissions"], json!(["inquiry.read"]));
    // Its one use, refused for lack of permission, still counts as a use.
    assert!(other["last-used-at"].is_string(), "{other}");
    let table = stdout(&idshare(
        &["admin", "api-key", "list", "--org", &org],
        &storage,
    ));
    assert!(
        table.lines().count() == 3 && table.contains("revoked"),
        "{table}"
    );
    let elsewhere = json_out(&idshare(
        &[
            "admin",
            "api-key",
            "list",
            "--org",
            "org_AAAAAAAAAAAAAAAAAAAAAAAA",
            "--json",
        ],
        &storage,
    ));
    assert_eq!(elsewhere, json!([]));
    let revoked = client
        .get(url("/api/v1/inquiries"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let error = expect_error(revoked, StatusCode::UNAUTHORIZED).await;
    assert!(error["details"].as_str().unwrap().contains("revoked"));

    // SIGTERM: a graceful stop with exit status 0.
    let status = server.stop();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
}

async fn unknown_configuration_is_refused(_backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("idshare.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nrate_limit_per_mnute = 5\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "migrate",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("rate_limit_per_mnute"));

    let output = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(["migrate", "--data-dir", dir.path().to_str().unwrap()])
        .env("IDSHARE_DATABSE_URL", "postgres://nowhere")
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a misspelt variable is an error, not a silent default"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("databse_url"));

    // Every refusal is one line that names what is wrong and where, without the database
    // server's internals ("at line 948") or a cause said twice.
    std::fs::write(&config, "[server\n").unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let config = config.to_str().unwrap();
    let unused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("postgres://postgres:pw@127.0.0.1:{unused_port}/idshare");
    let missing = "postgres://postgres@127.0.0.1:5432/idshare_no_such_database";
    for (args, says) in [
        (
            vec!["--config", config, "migrate", "--data-dir", data_dir],
            vec!["TOML parse error at line 1", "idshare.toml"],
        ),
        (
            vec!["--config", "/nonexistent/idshare.toml", "migrate"],
            vec!["cannot read the configuration file /nonexistent/idshare.toml"],
        ),
        (
            vec!["admin", "org", "list", "--database-url", &unreachable],
            vec![
                &format!(
                    "cannot connect to postgres://postgres:***@127.0.0.1:{unused_port}/idshare"
                ),
                "refused",
            ],
        ),
        (
            vec!["admin", "org", "list", "--database-url", missing],
            vec![missing, "does not exist (SQLSTATE 3D000)"],
        ),
        (
            vec!["migrate", "--data-dir", "/proc/idshare-test/data"],
            vec!["cannot create /proc/idshare-test"],
        ),
    ] {
        let error = refused(&idshare_exits(&args, &[], &[]), &format!("{args:?}"));
        for said in says {
            assert!(
                error.contains(said),
                "{args:?} should say {said:?}: {error}"
            );
        }
        assert!(!error.contains("at line 9"), "{error}");
        assert!(
            !error.contains(":pw@"),
            "the password is never printed: {error}"
        );
    }
}

async fn mrz_check_prints_every_check_and_signals_failures(_backend: Backend) {
    let specimen = [
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ];
    let output = idshare(&["mrz", "check", specimen[0], specimen[1]], &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed["format"], "td3");
    assert_eq!(parsed["document-number"], "L898902C3");
    assert_eq!(parsed["birth-date"], "1974-08-12");
    assert_eq!(parsed["checks"].as_array().unwrap().len(), 5);
    assert_eq!(parsed["all-fields-valid"], true);
    assert_eq!(parsed["valid"], true);

    // One corrupted check digit: the JSON says which, and the exit code is 1.
    let corrupted = specimen[1].replacen("L898902C36", "L898902C37", 1);
    let output = idshare(&["mrz", "check", specimen[0], &corrupted], &[]);
    assert_eq!(output.status.code(), Some(1));
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let failed: Vec<&str> = parsed["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["valid"] == false)
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"document-number"), "{failed:?}");

    // Not an MRZ at all: exit 2 and a message.
    let output = idshare(&["mrz", "check", "hello", "world"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!output.stderr.is_empty());
}

/// Issue 10: every check digit holds over an issuing state that is no ICAO 9303 code (`WTO`) and
/// a name with a digit; `mrz check` said exit 0.
async fn mrz_check_fails_malformed_fields_whose_check_digits_hold(_backend: Backend) {
    let output = idshare(
        &[
            "mrz",
            "check",
            "P<WTOERIK5SON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ],
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed["all-check-digits-valid"], true);
    assert_eq!(parsed["all-fields-valid"], false);
    assert_eq!(parsed["valid"], false);
    let failed: Vec<&str> = parsed["field-checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["valid"] == false)
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["issuing-state", "name"]);

    // A sex outside M, F, X, < is a failed field too, not a text that is no MRZ.
    let output = idshare(
        &[
            "mrz",
            "check",
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122Q1204159ZE184226B<<<<<10",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed["field-checks"][6]["field"], "sex");
    assert_eq!(parsed["field-checks"][6]["valid"], false);
}

async fn lists_import_and_screen_from_the_command_line(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    if backend == Backend::Postgres {
        let (url, _) = create_postgres_database().await;
        storage.extend(["--database-url".to_owned(), url]);
    }
    let list = format!(
        "{}/../../data/lists/sample-watchlist.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    stdout(&idshare(&["migrate"], &storage));
    let output = idshare(
        &[
            "lists",
            "import",
            "--format",
            "opensanctions-csv",
            "--list",
            "sample-watchlist",
            &list,
        ],
        &storage,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("imported 2000 entries"));

    let screened = stdout(&idshare(
        &["screen", "--list", "sample-watchlist", "Claire Richman"],
        &storage,
    ));
    let screened: serde_json::Value = serde_json::from_str(&screened).unwrap();
    assert_eq!(screened["matches"][0]["name"], "Claire Richmann");
    assert!(screened["matches"][0]["score"].as_f64().unwrap() > 0.9);
    let nobody = stdout(&idshare(&["screen", "Zebulon Quackenbush"], &storage));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&nobody).unwrap()["matches"],
        serde_json::json!([])
    );

    let lists = json_out(&idshare(&["lists", "list", "--json"], &storage));
    assert_eq!(lists[0]["list"], "sample-watchlist");
    assert_eq!(lists[0]["entries"], 2000);
    assert!(lists[0]["imported-at"].is_string());

    for refused in [
        vec!["screen", "--list", "un-sanctions", "Claire Richman"],
        vec!["lists", "delete", "--list", "un-sanctions"],
        vec!["lists", "import", "--format", "excel", "--list", "x", &list],
        vec![
            "lists",
            "import",
            "--format",
            "opensanctions-csv",
            "--list",
            "x",
            "/nonexistent.csv",
        ],
        vec![
            "lists",
            "import",
            "--format",
            "ofac-sdn-csv",
            "--list",
            "x",
            "/etc/hostname",
        ],
    ] {
        let output = idshare(&refused, &storage);
        assert!(!output.status.success(), "{refused:?} should fail");
        assert!(!output.stderr.is_empty(), "{refused:?} says why");
    }

    stdout(&idshare(
        &["lists", "delete", "--list", "sample-watchlist"],
        &storage,
    ));
    assert_eq!(
        json_out(&idshare(&["lists", "list", "--json"], &storage)),
        json!([])
    );
    let gone = idshare(
        &["screen", "--list", "sample-watchlist", "Claire Richman"],
        &storage,
    );
    assert!(!gone.status.success());
}

/// `jobs list` shows a dead job with its cause; `jobs retry` queues it again, all or none.
async fn dead_jobs_are_listed_and_retried_from_the_command_line(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_for(backend, dir.path()).await;
    stdout(&idshare(&["migrate"], &storage));
    assert_eq!(
        json_out(&idshare(&["jobs", "list", "--dead", "--json"], &storage)),
        json!([])
    );

    let store = idshare_store::Store::open(
        &cli_database_url(&storage, dir.path()),
        false,
        idshare_store::MasterKeySource::NotNeeded,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut tx = store.begin_write().await.unwrap();
    for kind in ["cli-test-dies", "cli-test-waits"] {
        idshare_store::jobs::enqueue(
            &mut tx,
            idshare_store::jobs::NewJob {
                queue: "cli-test",
                kind,
                payload: &json!({}),
                dedupe_key: None,
                run_at: now,
                max_attempts: 1,
            },
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let claimed = idshare_store::jobs::claim_batch(
        &store,
        "cli-test-worker",
        Some("cli-test"),
        1,
        now,
        time::Duration::minutes(1),
    )
    .await
    .unwrap();
    let dead = &claimed[0];
    idshare_store::jobs::fail(
        &store,
        &dead.id,
        "cli-test-worker",
        "gateway said no",
        None,
        now,
    )
    .await
    .unwrap();
    store.close().await;

    let all = json_out(&idshare(&["jobs", "list", "--json"], &storage));
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    let listed = json_out(&idshare(&["jobs", "list", "--dead", "--json"], &storage));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], dead.id.as_str());
    assert_eq!(listed[0]["status"], "dead");
    assert_eq!(listed[0]["attempts"], 1);
    assert_eq!(listed[0]["last-error"], "gateway said no");
    let table = stdout(&idshare(&["jobs", "list", "--dead"], &storage));
    assert!(
        table.contains("gateway said no") && table.contains("1/1"),
        "{table}"
    );

    // All or none: with one id that names no dead job, nothing is retried.
    let waiting = all
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["status"] == "queued")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let error = refused(
        &idshare(&["jobs", "retry", dead.id.as_str(), &waiting], &storage),
        "retrying a job that is not dead",
    );
    assert!(
        error.contains(&waiting) && error.contains("nothing was retried"),
        "{error}"
    );
    refused(
        &idshare(&["jobs", "retry", "job_nope"], &storage),
        "a malformed id",
    );

    stdout(&idshare(&["jobs", "retry", dead.id.as_str()], &storage));
    assert_eq!(
        json_out(&idshare(&["jobs", "list", "--dead", "--json"], &storage)),
        json!([])
    );
    let retried = json_out(&idshare(&["jobs", "list", "--json"], &storage));
    let retried = retried
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == dead.id.as_str())
        .unwrap();
    assert_eq!(retried["status"], "queued");
    assert_eq!(retried["attempts"], 0);
}

/// The database URL a command given `storage` uses.
fn cli_database_url(storage: &[String], data_dir: &Path) -> String {
    storage
        .get(3)
        .cloned()
        .unwrap_or_else(|| idshare_store::Store::sqlite_url(data_dir))
}

/// The command's standard output, which must be JSON.
fn json_out(output: &Output) -> serde_json::Value {
    let text = stdout(output);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The first word after `label` on the first line (trimmed) that starts with it.
fn word_after(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"))
        .to_owned()
}

async fn demo_sets_up_the_tour_and_stops_on_sigterm(backend: Backend) {
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    if backend == Backend::Postgres {
        let (url, _) = create_postgres_database().await;
        storage.extend(["--database-url".to_owned(), url]);
    }
    let mut demo = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .args(&storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stderr (logs, and the webhook receiver's lines) is read aside so that it never blocks.
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = demo.stderr.take().unwrap();
    let collected = stderr.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            collected
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    let mut printed = String::new();
    for line in BufReader::new(demo.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("The API reference:") {
            break;
        }
    }
    assert!(
        printed.contains("The API reference:"),
        "the demo printed its tour: {printed}\nstderr: {}",
        stderr.lock().unwrap()
    );

    let dashboard = word_after(&printed, "Dashboard");
    let base = dashboard
        .strip_suffix("/dashboard")
        .expect("the dashboard URL");
    let fintech = &printed[printed.find("Lumen Pay (").expect("Lumen Pay's section")..];
    // `  admin     admin@lumenpay.example        password <password>`
    let admin_password = fintech
        .lines()
        .find(|l| l.contains("admin@lumenpay.example"))
        .and_then(|l| l.split_whitespace().last())
        .expect("Lumen Pay's admin line")
        .to_owned();
    let key = word_after(fintech, "sandbox API key");
    let to_redeem = word_after(&printed, "token to redeem");
    let stuck = word_after(&printed, "stuck inquiry");
    let redeemed_line = printed
        .lines()
        .find(|l| l.trim().starts_with("redeemed token"))
        .unwrap();
    let redeemed_inquiry = redeemed_line
        .split_whitespace()
        .find(|w| w.starts_with("inq_"))
        .unwrap()
        .to_owned();
    assert!(to_redeem.starts_with("cnst_"), "{printed}");
    assert!(stuck.starts_with("inq_"), "{printed}");
    assert!(key.starts_with("idsk_sandbox_"), "{printed}");

    // The fintech's admin signs in with the printed password (the form's cookie and CSRF
    // token first) and finds the token left to redeem in Connect > Share Tokens.
    let mut browser = Browser {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.to_owned(),
        cookie: None,
    };
    let signed_in = sign_in_attempt(&mut browser, "admin@lumenpay.example", &admin_password).await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let tokens = browser.get(TOKENS).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert!(tokens.body.contains(&to_redeem), "{}", tokens.body);

    // Through the API with the printed key: the token waits, the stuck inquiry lacks the
    // proof of address, the other redemption was approved by the fintech's workflow.
    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{base}/api/v1{path}"))
            .bearer_auth(&key)
            .send()
    };
    let token = expect_status(
        get(format!("/connect/share-tokens/{to_redeem}"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(token["data"]["attributes"]["status"], "created");
    let inquiry = expect_status(
        get(format!("/inquiries/{stuck}")).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let attributes = &inquiry["data"]["attributes"];
    assert_eq!(attributes["status"], "pending", "{inquiry}");
    let missing: Vec<&str> = attributes["missing-requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(missing.contains(&"proof-of-address"), "{missing:?}");
    let approved = expect_status(
        get(format!("/inquiries/{redeemed_inquiry}")).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        approved["data"]["attributes"]["status"], "approved",
        "{approved}"
    );

    // The receiver in the demo process logged the fintech's events, signatures verified.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stderr
        .lock()
        .unwrap()
        .contains("webhook receiver got connect/share-token.inbound-redeemed")
    {
        assert!(
            Instant::now() < deadline,
            "no webhook line: {}",
            stderr.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!stderr.lock().unwrap().contains("signature INVALID"));

    // SIGTERM: a graceful stop with exit status 0.
    let killed = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = demo.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");

    // A second run on the same data directory refuses, and says why.
    let again = idshare(&["demo", "--listen", "127.0.0.1:0"], &storage);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds 2 organization"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// Base64 of 32 zero bytes: a well-formed master key that is not the instance's.
const ANOTHER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

pub(crate) fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut file, contents.as_bytes()).unwrap();
}

async fn data_files_are_private_and_an_exposed_master_key_is_refused(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Not created yet, so that the test sees the mode idshare creates it with.
    let data = dir.path().join("data");
    let storage = storage_for(backend, &data).await;
    let key_file = data.join("master.key");

    // `migrate` and `admin` need no master key: they never write one.
    stdout(&idshare(&["migrate"], &storage));
    stdout(&idshare(
        &["admin", "org", "create", "--name", "Acme"],
        &storage,
    ));
    match backend {
        Backend::Sqlite => {
            assert_eq!(mode(&data), 0o700, "the data directory");
            assert_eq!(mode(&data.join("idshare.db")), 0o600, "the database");
            assert!(!key_file.exists(), "migrate and admin wrote a master key");
        }
        Backend::Postgres => assert!(
            !data.exists(),
            "migrate and admin on PostgreSQL created the data directory"
        ),
    }

    // `serve` creates the key on this first start; while it runs, every file is private.
    let server = Server::start(&storage, &[]);
    assert_eq!(mode(&data), 0o700, "the data directory");
    let mut files = vec![key_file.clone()];
    if backend == Backend::Sqlite {
        files.extend(["idshare.db", "idshare.db-wal", "idshare.db-shm"].map(|f| data.join(f)));
    }
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert!(server.stop().success());

    // A key file other users can read is refused, with the fix.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = idshare_exits(&["serve", "--listen", "127.0.0.1:0"], &storage, &[]);
    let error = refused(&output, "serve with a 0644 master key");
    assert!(
        error.contains(&format!("chmod 600 {}", key_file.display())),
        "{error}"
    );
}

async fn a_missing_or_different_master_key_stops_the_server(backend: Backend) {
    idshare_service::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let storage = storage_for(backend, &data).await;
    let key_file = data.join("master.key");
    stdout(&idshare(&["migrate"], &storage));
    let org = stdout(&idshare(
        &["admin", "org", "create", "--name", "Acme"],
        &storage,
    ));
    let key = stdout(&idshare(
        &[
            "admin",
            "api-key",
            "create",
            "--org",
            &org,
            "--environment",
            "sandbox",
        ],
        &storage,
    ));

    // Personal data sealed under the key the first start created.
    let server = Server::start(&storage, &[]);
    let client = reqwest::Client::new();
    let template = expect_status(
        client
            .post(server.url("/api/v1/inquiry-templates"))
            .bearer_auth(&key)
            .json(&json!({"data": {"attributes": standard_template("KYC")}}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let inquiry = expect_status(
        client
            .post(server.url("/api/v1/inquiries"))
            .bearer_auth(&key)
            .json(
                &json!({"data": {"attributes": {"inquiry-template-id": template["data"]["id"],
                "fields": {"name-first": "Ada", "name-last": "Lovelace"}}}}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let inquiry = inquiry["data"]["id"].as_str().unwrap().to_owned();
    assert!(server.stop().success());

    // The key file is gone: no start, and no new key.
    let kept = dir.path().join("kept.key");
    std::fs::rename(&key_file, &kept).unwrap();
    let serve = ["serve", "--listen", "127.0.0.1:0"];
    let error = refused(
        &idshare_exits(&serve, &storage, &[]),
        "serve without its key",
    );
    assert!(
        error.contains("does not exist") && error.contains(&key_file.display().to_string()),
        "{error}"
    );
    assert!(!key_file.exists(), "a new master key was written");

    // Another key, from a file or from the configuration: no start.
    let other_file = dir.path().join("other.key");
    write_private(&other_file, ANOTHER_KEY);
    let other_file = other_file.display().to_string();
    for (flags, env) in [
        (vec!["--master-key-file", other_file.as_str()], vec![]),
        (vec![], vec![("IDSHARE_MASTER_KEY", ANOTHER_KEY)]),
    ] {
        let args = [&serve[..], &flags].concat();
        let error = refused(
            &idshare_exits(&args, &storage, &env),
            "serve with another key",
        );
        assert!(error.contains("does not match"), "{error}");
    }
    let both = [&serve[..], &["--master-key-file", other_file.as_str()]].concat();
    let error = refused(
        &idshare_exits(&both, &storage, &[("IDSHARE_MASTER_KEY", ANOTHER_KEY)]),
        "serve with two keys",
    );
    assert!(error.contains("not both"), "{error}");

    // The right key, kept outside the data directory: the data reads back.
    let kept = kept.display().to_string();
    let server = Server::start(&storage, &["--master-key-file", &kept]);
    let read = expect_status(
        client
            .get(server.url(&format!("/api/v1/inquiries/{inquiry}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        read["data"]["attributes"]["fields"]["name-first"]["value"],
        "Ada"
    );
    assert!(server.stop().success());
    assert!(!key_file.exists());
}

async fn commands_refuse_a_mistyped_data_dir_and_what_they_cannot_answer(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_for(backend, dir.path()).await;
    let list = format!(
        "{}/../../data/lists/sample-watchlist.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    stdout(&idshare(&["migrate"], &storage));

    // No list imported: no answer, rather than a false "no match".
    let error = refused(
        &idshare(&["screen", "Claire Richman"], &storage),
        "screen without lists",
    );
    assert!(error.contains("idshare lists import"), "{error}");

    let import = [
        "lists",
        "import",
        "--format",
        "opensanctions-csv",
        "--list",
        "sample-watchlist",
        &list,
    ];
    let imported = idshare(&import, &storage);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    stdout(&idshare(&["screen", "Claire Richman"], &storage));
    for (bad, says) in [
        (vec!["--birthdate", "1971-13-45"], "YYYY-MM-DD"),
        (vec!["--birthdate", "yesterday"], "YYYY-MM-DD"),
        (vec!["--country", "GBR"], "alpha-2 code GB"),
        (vec!["--country", "XX"], "alpha-2"),
    ] {
        let output = idshare(
            &[&["screen"], &bad[..], &["Claire Richman"]].concat(),
            &storage,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{bad:?} should fail");
        assert!(stderr.contains(says), "{bad:?}: {stderr}");
    }
    for name in ["", "   ", "1234"] {
        let output = idshare(&["screen", name], &storage);
        assert!(!output.status.success(), "the name {name:?} should fail");
        assert!(String::from_utf8_lossy(&output.stderr).contains("letters"));
    }

    // A mistyped --data-dir: only `migrate`, `serve` and `demo` create a database there.
    let typo = dir.path().join("typo");
    let typo_storage = ["--data-dir".to_owned(), typo.display().to_string()];
    let org = "org_AAAAAAAAAAAAAAAAAAAAAAAA";
    for command in [
        vec!["admin", "org", "create", "--name", "Acme"],
        vec![
            "admin",
            "api-key",
            "create",
            "--org",
            org,
            "--environment",
            "sandbox",
        ],
        vec!["admin", "api-key", "revoke", "api_AAAAAAAAAAAAAAAAAAAAAAAA"],
        vec![
            "admin",
            "user",
            "create",
            "--org",
            org,
            "--email",
            "a@b.example",
            "--password",
            "correct horse battery",
        ],
        import.to_vec(),
        vec!["screen", "Claire Richman"],
    ] {
        let error = refused(&idshare(&command, &typo_storage), &format!("{command:?}"));
        assert!(
            error.contains("no database at") && error.contains("idshare migrate"),
            "{command:?}: {error}"
        );
        assert!(!typo.exists(), "{command:?} created {}", typo.display());
    }
}

async fn demo_refuses_a_database_that_holds_organizations(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage_for(backend, dir.path()).await;
    stdout(&idshare(&["migrate"], &storage));
    stdout(&idshare(
        &["admin", "org", "create", "--name", "Acme"],
        &storage,
    ));
    let error = refused(
        &idshare_exits(&["demo", "--listen", "127.0.0.1:0"], &storage, &[]),
        "demo on a database in use",
    );
    assert!(error.contains("already holds 1 organization"), "{error}");
    // Nothing was added: the sample lists are not there either.
    let screened = idshare(&["screen", "Claire Richman"], &storage);
    assert!(
        String::from_utf8_lossy(&screened.stderr).contains("no screening list"),
        "{}",
        String::from_utf8_lossy(&screened.stderr)
    );
}

backend_tests!(
    data_files_are_private_and_an_exposed_master_key_is_refused,
    a_missing_or_different_master_key_stops_the_server,
    commands_refuse_a_mistyped_data_dir_and_what_they_cannot_answer,
    demo_refuses_a_database_that_holds_organizations,
    operator_commands_drive_a_fresh_instance,
    demo_sets_up_the_tour_and_stops_on_sigterm,
    unknown_configuration_is_refused,
    mrz_check_prints_every_check_and_signals_failures,
    mrz_check_fails_malformed_fields_whose_check_digits_hold,
    lists_import_and_screen_from_the_command_line,
    dead_jobs_are_listed_and_retried_from_the_command_line,
);
