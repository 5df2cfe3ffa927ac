//! Many hosts (issue 15): the lease in a real PostgreSQL, directly and
//! through PgBouncer in transaction mode, with "hosts" made by
//! `unshare --uts` (each its own hostname, lock dir and state dir).

#[path = "../util.rs"]
mod util;

mod server;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

#[allow(unused_imports)]
use server::{Cluster, Setup};
use util::*;

/// runonce on "host" `host`: its own hostname, `env`'s lock and state.
fn on_host(env: &Env, host: &str) -> Command {
    let base = env.cmd();
    let mut c = Command::new("unshare");
    c.args(["--uts", "sh", "-c", "hostname \"$0\" && exec \"$@\"", host, BIN]);
    c.args(base.get_args());
    for var in ["RUNONCE_LOCK_DIR", "RUNONCE_STATE_DIR", "RUNONCE_LOCK_URL", "PGPASSWORD"] {
        c.env_remove(var);
    }
    c.env("PGPASSFILE", env.path("no-pgpass"));
    c.stdin(Stdio::null());
    c
}

fn run_on(env: &Env, host: &str, args: &[&str]) -> Output {
    on_host(env, host).args(args).output().expect("run runonce")
}

fn spawn_on(env: &Env, host: &str, args: &[&str]) -> Child {
    on_host(env, host)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start runonce")
}

/// A job that writes its fencing token and host, then holds until `release`.
fn holding_job(dir: &Env, tag: &str) -> String {
    format!(
        "echo \"${{RUNONCE_FENCING_TOKEN-unset}}\" > {tok}; hostname > {ran}; \
         while [ ! -e {rel} ]; do sleep 0.02; done",
        tok = dir.path(&format!("token.{tag}")).display(),
        ran = dir.path(&format!("ran.{tag}")).display(),
        rel = dir.path("release").display(),
    )
}

fn token(dir: &Env, tag: &str) -> i64 {
    let p = dir.path(&format!("token.{tag}"));
    wait_file(&p);
    let mut text = String::new();
    assert!(wait_until(SLACK, || {
        text = std::fs::read_to_string(&p).unwrap_or_default();
        text.ends_with('\n')
    }));
    text.trim().parse().unwrap_or_else(|_| panic!("a token, not {text:?}"))
}

fn last_finish(env: &Env, name: &str) -> serde_json::Value {
    env.finishes(name).pop().unwrap_or_else(|| panic!("no finish record of {name}"))
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let mut status = None;
    let done = wait_until(limit, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert!(done, "runonce did not end within {limit:?}");
    status.and_then(|s| s.code())
}

/// The job's lease as `--status --json --lock-url` shows it.
fn fleet_status(env: &Env, host: &str, url: &str, name: &str) -> serde_json::Value {
    let o = run_on(env, host, &["--lock-url", url, "--status", name, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).expect("status JSON")
}

/// Two hosts start the same job at the same moment, `rounds` times:
/// exactly one runs each time, the other skips naming it, and the token
/// grows from round to round.
fn one_of_two_runs(url: &str, rounds: usize) {
    let (a, b) = (Env::new(), Env::new());
    let name = "fleet-race";
    let mut last_token = 0;
    for round in 0..rounds {
        let shared = Env::new();
        let ja = holding_job(&shared, "alpha");
        let jb = holding_job(&shared, "beta");
        let metrics = a.path("metrics");
        let mut ca = spawn_on(
            &a,
            "alpha",
            &[
                "--lock-url",
                url,
                "--name",
                name,
                "--metrics-dir",
                metrics.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &ja,
            ],
        );
        let mut cb = spawn_on(
            &b,
            "beta",
            &[
                "--lock-url",
                url,
                "--name",
                name,
                "--metrics-dir",
                metrics.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &jb,
            ],
        );
        // the loser skips at once; the winner runs until released
        let mut loser = None;
        assert!(
            wait_until(SLACK * 3, || {
                if let Some(s) = ca.try_wait().unwrap() {
                    loser = Some(("alpha", s.code()));
                } else if let Some(s) = cb.try_wait().unwrap() {
                    loser = Some(("beta", s.code()));
                }
                loser.is_some()
            }),
            "round {round}: neither run ended: both hold the job?"
        );
        let (lost, status) = loser.unwrap();
        let (won, won_env, lost_env, won_child) = match lost {
            "alpha" => ("beta", &b, &a, &mut cb),
            _ => ("alpha", &a, &b, &mut ca),
        };
        assert_eq!(status, Some(75), "round {round}: the loser on {lost} skips");
        let tok = token(&shared, won);
        assert!(!shared.path(&format!("ran.{lost}")).exists(), "round {round}: both ran");
        let skip = last_finish(lost_env, name);
        assert_eq!(skip["outcome"], "skipped");
        assert_eq!(skip["lease_host"], won, "{skip}");
        assert_eq!(skip["holder_pid"], won_child.id(), "{skip}");
        assert_eq!(skip["lease_pid"], won_child.id(), "{skip}");
        assert_eq!(skip["fencing_token"], tok, "{skip}");
        assert!(skip["message"].as_str().unwrap().contains(won), "{skip}");
        assert!(tok > last_token, "round {round}: token {tok} after {last_token}");
        last_token = tok;
        if round == 0 {
            // the loser's host sees who runs the job, from the database
            let st = fleet_status(lost_env, lost, url, name);
            assert_eq!(st["lease"]["held"], true, "{st}");
            assert_eq!(st["lease"]["host"], won, "{st}");
            assert_eq!(st["lease"]["pid"], won_child.id(), "{st}");
            assert_eq!(st["lease"]["fencing_token"], tok, "{st}");
            let o = run_on(lost_env, lost, &["--lock-url", url, "--status"]);
            let table = stdout(&o);
            assert!(table.contains("LEASE"), "{table}");
            assert!(table.contains(&format!("{won}:{} token {tok}", won_child.id())), "{table}");
            let prom = std::fs::read_to_string(metrics.join(format!("runonce_{name}.prom")))
                .unwrap_or_default();
            assert!(
                prom.contains(&format!("runonce_lease_fencing_token{{job=\"{name}\"}} {tok}")),
                "{prom}"
            );
            assert!(
                prom.contains(&format!(
                    "runonce_lease_holder{{job=\"{name}\",host=\"{won}\",pid=\"{}\"}} 1",
                    won_child.id()
                )),
                "{prom}"
            );
        }
        std::fs::write(shared.path("release"), "").unwrap();
        assert_eq!(wait_exit(won_child, SLACK * 2), Some(0));
        let fin = last_finish(won_env, name);
        assert_eq!(fin["outcome"], "ok", "{fin}");
        assert_eq!(fin["fencing_token"], tok, "{fin}");
        assert_eq!(fin["lease_host"], won, "{fin}");
        assert_eq!(fin["lease_pid"], won_child.id(), "{fin}");
    }
}

#[test]
fn two_hosts_at_once_one_runs() {
    let pg = server::shared();
    let url = pg.url(&pg.database("fleet_race"));
    one_of_two_runs(&url, 3);
}

#[test]
fn two_hosts_at_once_through_pgbouncer() {
    let pg = server::shared();
    let db = pg.database("fleet_race_bouncer");
    one_of_two_runs(&server::bouncer().url(&db), 3);
}

#[test]
fn lock_at_least_keeps_a_short_run_exclusive() {
    let pg = server::shared();
    let url = pg.url(&pg.database("fleet_at_least"));
    let (a, b) = (Env::new(), Env::new());
    let tok_a = a.path("token");
    let job_a = format!("echo $RUNONCE_FENCING_TOKEN > {}; sleep 0.1", tok_a.display());
    // without --lock-at-least a finished run frees the lease at once
    let o = run_on(&a, "alpha", &["--lock-url", &url, "--name", "short", "--", "sh", "-c", &job_a]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run_on(&b, "beta", &["--lock-url", &url, "--name", "short", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // with it, a host whose clock is late by a second finds the slot taken
    let o = run_on(
        &a,
        "alpha",
        &["--lock-url", &url, "--name", "short", "--lock-at-least", "5s", "--", "sh", "-c", &job_a],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = std::fs::read_to_string(&tok_a).unwrap().trim().parse::<i64>().unwrap();
    let ran_b = b.path("ran");
    let touch = format!(
        "touch {}; echo $RUNONCE_FENCING_TOKEN > {}",
        ran_b.display(),
        b.path("token").display()
    );
    let o = run_on(&b, "beta", &["--lock-url", &url, "--name", "short", "--", "sh", "-c", &touch]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert!(!ran_b.exists());
    let skip = last_finish(&b, "short");
    assert_eq!(skip["lease_host"], "alpha", "{skip}");
    assert_eq!(skip["fencing_token"], first, "{skip}");
    // and once the 5 s are over, it runs
    assert!(wait_until(SLACK * 2, || {
        fleet_status(&b, "beta", &url, "short")["lease"]["held"] == false
    }));
    let o = run_on(&b, "beta", &["--lock-url", &url, "--name", "short", "--", "sh", "-c", &touch]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let second = std::fs::read_to_string(b.path("token")).unwrap().trim().parse::<i64>().unwrap();
    assert!(second > first, "{second} > {first}");
}

/// Host A holds the lease; `lose` takes it from A somehow; host B then takes
/// the expired lease.  A's job is stopped (lost-lock, 124) and the tokens
/// the jobs saw grow.  Returns A's finish record.
fn lose_then_take_over(
    url_a: &str,
    url_b: &str,
    lose: impl FnOnce(&Child),
    taken: impl FnOnce(&Child),
) -> serde_json::Value {
    let (a, b, shared) = (Env::new(), Env::new(), Env::new());
    let name = "fleet-lost";
    let job_a = format!(
        "echo $RUNONCE_FENCING_TOKEN > {}; exec sleep 600",
        shared.path("token.alpha").display()
    );
    let mut ca = spawn_on(
        &a,
        "alpha",
        &[
            "--lock-url",
            url_a,
            "--lease",
            "3s",
            "--name",
            name,
            "--kill-after",
            "2s",
            "--",
            "sh",
            "-c",
            &job_a,
        ],
    );
    let tok_a = token(&shared, "alpha");
    lose(&ca);
    // B waits for the lease, which frees itself 3 s after A's last renewal
    let mut cb = spawn_on(
        &b,
        "beta",
        &[
            "--lock-url",
            url_b,
            "--lease",
            "3s",
            "--wait=60s",
            "--name",
            name,
            "--",
            "sh",
            "-c",
            &holding_job(&shared, "beta"),
        ],
    );
    let tok_b = token(&shared, "beta");
    assert!(tok_b > tok_a, "the fencing token grows: {tok_a} then {tok_b}");
    taken(&ca);
    assert_eq!(wait_exit(&mut ca, SLACK * 3), Some(124), "A's job is stopped");
    let fin = last_finish(&a, name);
    assert_eq!(fin["outcome"], "lost-lock", "{fin}");
    assert_eq!(fin["exit"], 124, "{fin}");
    assert_eq!(fin["sent"][0], "TERM", "{fin}");
    assert_eq!(fin["fencing_token"], tok_a, "{fin}");
    let mut err = String::new();
    use std::io::Read;
    ca.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("the fleet lease was lost"), "{err}");
    std::fs::write(shared.path("release"), "").unwrap();
    assert_eq!(wait_exit(&mut cb, SLACK * 2), Some(0));
    assert_eq!(last_finish(&b, name)["fencing_token"], tok_b);
    fin
}

#[test]
fn a_terminated_connection_stops_the_job() {
    let pg = server::shared();
    let db = pg.database("fleet_lost");
    let url = pg.url(&db);
    let url_a = format!("{url}?application_name=fleet_lost_a");
    let fin = lose_then_take_over(
        &url_a,
        &url,
        |_| {
            let killed = pg.sql(
                &db,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'fleet_lost_a'",
            );
            assert_eq!(killed, "1", "A's renewal connection");
        },
        |_| {},
    );
    assert!(fin["message"].as_str().unwrap().contains("connection"), "{fin}");
}

#[test]
fn a_stolen_lease_through_pgbouncer_stops_the_job() {
    let pg = server::shared();
    let url = server::bouncer().url(&pg.database("fleet_stolen"));
    // A's runonce is frozen (a paused VM) while its lease expires and B
    // takes it; thawed, its renewal finds the row taken
    let fin = lose_then_take_over(
        &url,
        &url,
        |ca| kill(ca.id() as i32, libc::SIGSTOP),
        |ca| kill(ca.id() as i32, libc::SIGCONT),
    );
    assert!(fin["message"].as_str().unwrap().contains("taken by beta"), "{fin}");
}
