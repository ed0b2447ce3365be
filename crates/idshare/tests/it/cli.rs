//! The binary as an operator uses it: admin commands, `migrate`, `serve` with JSON logs and a
//! graceful stop on SIGTERM, and refused configuration.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    Backend, create_postgres_database, expect_error, expect_status, standard_template,
};

fn idshare(args: &[&str], storage: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(args)
        .args(storage)
        .env_remove("IDSHARE_DATABASE_URL")
        .output()
        .expect("run idshare")
}

fn stdout(output: &std::process::Output) -> String {
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

async fn operator_commands_drive_a_fresh_instance(backend: Backend) {
    idshare_server::app::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut storage = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
    if backend == Backend::Postgres {
        let (url, _) = create_postgres_database().await;
        storage.extend(["--database-url".to_owned(), url]);
    }
    stdout(&idshare(&["migrate"], &storage));
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
        vec!["admin", "api-key", "revoke", "api_AAAAAAAAAAAAAAAAAAAAAAAA"],
    ] {
        let output = idshare(&refused, &storage);
        assert!(!output.status.success(), "{refused:?} should fail");
        assert!(!output.stderr.is_empty(), "{refused:?} says why");
    }

    // Serve on port 0 with JSON logs; the address comes from the first log line.
    let mut server = Command::new(env!("CARGO_BIN_EXE_idshare"))
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(&storage)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("server logs").unwrap();
        let log: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("JSON log line: {line}"));
        if log["fields"]["message"] == "idshare is serving" {
            break log["fields"]["address"].as_str().unwrap().to_owned();
        }
    };
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{address}{path}");
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

    // Revoking a key takes effect at once on the running server.
    let store = idshare_server::app::open_store(&idshare_server::config::Config {
        data_dir: dir.path().to_path_buf(),
        database_url: storage
            .get(3)
            .map(|url| idshare_server::config::Secret::new(url.clone())),
        ..Default::default()
    })
    .await
    .unwrap();
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
    let revoked = client
        .get(url("/api/v1/inquiries"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let error = expect_error(revoked, StatusCode::UNAUTHORIZED).await;
    assert!(error["details"].as_str().unwrap().contains("revoked"));

    // SIGTERM: a graceful stop with exit status 0.
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
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
}

backend_tests!(
    operator_commands_drive_a_fresh_instance,
    unknown_configuration_is_refused
);
