//! The `surclass` program as a newcomer and an operator run it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn surclass() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_surclass"));
    for var in [
        "DATABASE_URL",
        "SURCLASS_BIND",
        "SURCLASS_PUBLIC_URL",
        "SURCLASS_LOG_FORMAT",
        "SURCLASS_NO_DEMO",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, named) in [
        ("DATABASE_URL", "mysql://localhost/x", "--database-url"),
        ("SURCLASS_BIND", "localhost", "--bind"),
        ("SURCLASS_LOG_FORMAT", "xml", "--log-format"),
        ("SURCLASS_PUBLIC_URL", "example.com", "--public-url"),
        ("SURCLASS_DB_CONNECTIONS", "0", "--db-connections"),
        (
            "SURCLASS_TRUSTED_PROXIES",
            "proxy.local",
            "--trusted-proxies",
        ),
    ] {
        let out = surclass()
            .current_dir(dir.path())
            .env(var, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} must not start");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains(named) && first.contains(value),
            "{var}: {first}"
        );
    }
    assert!(
        !dir.path().join("surclass.db").exists(),
        "nothing is created when start-up is refused"
    );
}

#[test]
fn migrate_creates_and_upgrades_an_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = surclass()
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema up to date"));
    assert!(dir.path().join("surclass.db").exists());
    // Running it again is harmless.
    assert!(
        surclass()
            .current_dir(dir.path())
            .arg("migrate")
            .output()
            .unwrap()
            .status
            .success()
    );
}

#[test]
fn demo_data_prints_references_and_a_key_to_try() {
    let dir = tempfile::tempdir().unwrap();
    let out = surclass()
        .current_dir(dir.path())
        .arg("demo-data")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("AU7K2P") && stdout.contains("Müller"),
        "{stdout}"
    );
    assert!(stdout.contains("sk_op_"), "{stdout}");
}

/// The README's run command: serves the demo on SQLite, and stops cleanly on SIGTERM.
#[test]
fn serve_loads_the_demo_answers_and_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = surclass()
        .current_dir(dir.path())
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut base = None;
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        banner.push_str(&line);
        banner.push('\n');
        if let Some(url) = line.strip_prefix("Surclass is up at ") {
            base = Some(url.trim().to_owned());
        }
        if line.contains("sk_op_") && base.is_some() {
            break;
        }
    }
    let base = base.unwrap_or_else(|| panic!("no banner: {banner}"));
    assert!(banner.contains("AU7K2P"), "{banner}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "still running 30 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
}

#[test]
fn reconcile_says_a_consistent_database_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let out = surclass()
        .current_dir(dir.path())
        .args(["--no-demo", "reconcile"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("consistent"));
}

#[test]
fn operator_user_adds_a_console_user_with_a_password_from_the_environment_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let demo = surclass()
        .current_dir(dir.path())
        .arg("demo-data")
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let banner = String::from_utf8_lossy(&demo.stdout);
    assert!(banner.contains("Operator console:"), "{banner}");
    assert!(banner.contains("admin@aurora-air.example"), "{banner}");

    let out = surclass()
        .current_dir(dir.path())
        .args([
            "operator-user",
            "--operator",
            "aurora-air",
            "--email",
            "ops@aurora-air.example",
            "--admin",
        ])
        .env("SURCLASS_OPERATOR_PASSWORD", "a long enough password")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("ops@aurora-air.example can now sign in to Aurora Airways as admin")
    );

    let mut child = surclass()
        .current_dir(dir.path())
        .args([
            "operator-user",
            "--operator",
            "aurora-air",
            "--email",
            "member@aurora-air.example",
        ])
        .env_remove("SURCLASS_OPERATOR_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"another long password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("as member"));

    for (args, password, says) in [
        (
            [
                "--operator",
                "aurora-air",
                "--email",
                "short@aurora-air.example",
            ],
            "short",
            "password: must have at least 12 characters",
        ),
        (
            [
                "--operator",
                "aurora-air",
                "--email",
                "ops@aurora-air.example",
            ],
            "a long enough password",
            "email: already has a console account",
        ),
        (
            ["--operator", "nobody", "--email", "x@nobody.example"],
            "a long enough password",
            "no operator with slug or id 'nobody'",
        ),
    ] {
        let out = surclass()
            .current_dir(dir.path())
            .arg("operator-user")
            .args(args)
            .env("SURCLASS_OPERATOR_PASSWORD", password)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}
