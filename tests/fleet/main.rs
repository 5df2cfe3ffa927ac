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

/// On the way out of a test, failed or not: held jobs are released and the
/// runonces it started are told to stop, so that nothing is left running.
struct Cleanup<'a> {
    dir: &'a Env,
    pids: Vec<u32>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.path("release"), "");
        // only runonces still ours: a reaped child's PID may be anyone's now
        let ours = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1));
            stat.contains("(runonce)") && ppid == Some(&std::process::id().to_string())
        };
        for &pid in self.pids.iter().filter(|&&p| ours(p)) {
            kill(pid as i32, libc::SIGTERM);
            kill(pid as i32, libc::SIGCONT);
        }
    }
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
        let metrics = a.path("metrics");
        let start = |env: &Env, host: &str| {
            let job = holding_job(&shared, host);
            let m = metrics.to_str().unwrap();
            let args =
                ["--lock-url", url, "--name", name, "--metrics-dir", m, "--", "sh", "-c", &job];
            spawn_on(env, host, &args)
        };
        let (mut ca, mut cb) = (start(&a, "alpha"), start(&b, "beta"));
        let _cleanup = Cleanup { dir: &shared, pids: vec![ca.id(), cb.id()] };
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
        let (won, won_env, lost_env, won_child, lost_child) = match lost {
            "alpha" => ("beta", &b, &a, &mut cb, &mut ca),
            _ => ("alpha", &a, &b, &mut ca, &mut cb),
        };
        let mut err = String::new();
        use std::io::Read;
        lost_child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(status, Some(75), "round {round}: the loser on {lost} skips: {err}");
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
    let mut cleanup = Cleanup { dir: &shared, pids: vec![ca.id()] };
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
    cleanup.pids.push(cb.id());
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

#[test]
fn renewal_keeps_the_lease_past_its_length() {
    let pg = server::shared();
    let url = pg.url(&pg.database("fleet_renew"));
    let (a, b, shared) = (Env::new(), Env::new(), Env::new());
    let mut ca = spawn_on(
        &a,
        "alpha",
        &[
            "--lock-url",
            &url,
            "--lease",
            "1s",
            "--name",
            "long",
            "--",
            "sh",
            "-c",
            &holding_job(&shared, "alpha"),
        ],
    );
    let _cleanup = Cleanup { dir: &shared, pids: vec![ca.id()] };
    let tok = token(&shared, "alpha");
    // renewed every third of a second: after four lease lengths B still
    // finds it held, and A's job still runs
    let start = std::time::Instant::now();
    let mut tries = 0;
    while start.elapsed() < Duration::from_secs(4) || tries < 3 {
        let o = run_on(&b, "beta", &["--lock-url", &url, "--name", "long", "--", "true"]);
        assert_eq!(code(&o), 75, "try {tries}: {}", stderr(&o));
        tries += 1;
    }
    assert!(ca.try_wait().unwrap().is_none(), "A's job still runs");
    std::fs::write(shared.path("release"), "").unwrap();
    assert_eq!(wait_exit(&mut ca, SLACK * 2), Some(0));
    let fin = last_finish(&a, "long");
    assert_eq!((fin["outcome"].clone(), fin["fencing_token"].clone()), ("ok".into(), tok.into()));
}

#[test]
fn unreachable_database_fails_closed_or_runs_with_optional() {
    let mut pg = Cluster::start(&Setup::default());
    let db = pg.database("fleet_down");
    let url = pg.url(&db);
    let env = Env::new();
    let ran = env.path("ran");
    let job = format!("echo \"${{RUNONCE_FENCING_TOKEN-unset}}\" > {}", ran.display());
    let args = |extra: &[&'static str]| {
        let mut v: Vec<String> =
            vec!["--lock-url".into(), url.clone(), "--name".into(), "down".into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["--".into(), "sh".into(), "-c".into(), job.clone()]);
        v
    };
    let o = on_host(&env, "alpha").args(args(&[])).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let first = std::fs::read_to_string(&ran).unwrap().trim().parse::<i64>().unwrap();
    std::fs::remove_file(&ran).unwrap();

    pg.down();
    let o = on_host(&env, "alpha").args(args(&[])).output().unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert!(err.contains(&format!("--lock-url postgres@127.0.0.1:{}/{db}", pg.port)), "{err}");
    assert!(err.contains("the job was not started"), "{err}");
    assert!(!ran.exists(), "nothing started");
    let fin = last_finish(&env, "down");
    assert_eq!((fin["outcome"].as_str(), fin["exit"].as_i64()), (Some("error"), Some(125)));

    let o = on_host(&env, "alpha").args(args(&["--lock-url-optional"])).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).contains("running under the local lock alone"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&ran).unwrap(), "unset\n", "no token without a lease");
    let recs: Vec<_> = env.records().into_iter().filter(|r| r["name"] == "down").collect();
    let (start, fin) = (&recs[recs.len() - 2], &recs[recs.len() - 1]);
    assert_eq!(start["event"], "start");
    for r in [start, fin] {
        assert!(r["lease_error"].as_str().is_some_and(|e| e.contains("127.0.0.1")), "{r}");
        assert!(r.get("fencing_token").is_none(), "{r}");
    }
    assert_eq!(fin["outcome"], "ok");

    pg.up();
    let o = on_host(&env, "alpha").args(args(&[])).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let again = std::fs::read_to_string(&ran).unwrap().trim().parse::<i64>().unwrap();
    assert!(again > first, "{again} > {first}");
}

#[test]
fn a_database_that_never_answers_times_out() {
    // accepts connections and says nothing: a hung server or a black hole
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let env = Env::new();
    let url = format!("postgres://postgres@127.0.0.1:{port}/x?sslmode=disable");
    for optional in [false, true] {
        let mut args = vec!["--lock-url", &url, "--name", "hung"];
        if optional {
            args.push("--lock-url-optional");
        }
        let ran = env.path("ran");
        let touch = format!("touch {}", ran.display());
        args.extend(["--", "sh", "-c", &touch]);
        let t0 = std::time::Instant::now();
        let mut c = spawn_on(&env, "alpha", &args);
        let status = wait_exit(&mut c, Duration::from_secs(10) + SLACK * 2);
        assert!(t0.elapsed() >= Duration::from_secs(9), "the connect timeout is 10 s");
        let mut err = String::new();
        use std::io::Read;
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(err.contains("within 10s"), "{err}");
        if optional {
            assert_eq!(status, Some(0), "{err}");
            assert!(ran.exists());
        } else {
            assert_eq!(status, Some(125), "{err}");
            assert!(!ran.exists());
        }
    }
    drop(listener);
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let o = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A self-signed certificate for localhost, and a CA with a server
/// certificate for localhost signed by it.
fn certificates(dir: &std::path::Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "self.key",
        "-out",
        "self.crt",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
    ]);
    args.extend(["-addext", "subjectAltName=DNS:localhost"]);
    openssl(dir, &args);
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=runonce test CA",
    ]);
    openssl(dir, &args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost"]);
    openssl(dir, &args);
    std::fs::write(
        dir.join("srv.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.crt",
            "-days",
            "2",
            "-extfile",
            "srv.ext",
        ],
    );
}

/// The run went through: exit 0 and nothing said about the lease (other
/// warnings, about cgroups under load, are not this test's business).
fn assert_ok((status, err): (i32, String)) {
    assert_eq!(status, 0, "{err}");
    assert!(!err.contains("--lock-url"), "{err}");
}

#[test]
fn tls_require_and_verify_full() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    certificates(d);
    let env = Env::new();
    let try_url = |url: &str, extra_env: Option<(&str, &std::path::Path)>| {
        let mut c = on_host(&env, "alpha");
        c.args(["--lock-url", url, "--name", "tls", "--", "true"]);
        c.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
        if let Some((k, v)) = extra_env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        (code(&o), stderr(&o))
    };
    // a self-signed certificate; the server refuses TCP without TLS
    let selfsigned =
        Cluster::start(&Setup { tls_only: Some((d.join("self.crt"), d.join("self.key"))) });
    let base = format!("postgres://postgres@localhost:{}/postgres", selfsigned.port);
    assert_ok(try_url(&format!("{base}?sslmode=require"), None));
    // prefer (the default) encrypts when it can
    assert_ok(try_url(&base, None));
    let (status, err) = try_url(&format!("{base}?sslmode=disable"), None);
    assert_eq!(status, 125, "{err}");
    assert!(err.contains("no encryption") || err.contains("pg_hba"), "{err}");
    // the system's roots do not vouch for it
    let (status, err) = try_url(&format!("{base}?sslmode=verify-full"), None);
    assert_eq!(status, 125, "{err}");
    assert!(err.contains("certificate") || err.contains("TLS"), "{err}");
    // a certificate that does not verify is no unreachable server: an
    // impostor must not make the fleet run without its lease
    let o = on_host(&env, "alpha")
        .args(["--lock-url", &format!("{base}?sslmode=verify-full"), "--lock-url-optional"])
        .args(["--name", "tls", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    drop(selfsigned);

    // a certificate from a CA
    let signed = Cluster::start(&Setup { tls_only: Some((d.join("srv.crt"), d.join("srv.key"))) });
    let root = d.join("ca.crt");
    let by_name = format!("postgres://postgres@localhost:{}/postgres", signed.port);
    let by_addr = format!("postgres://postgres@127.0.0.1:{}/postgres", signed.port);
    let with_root =
        |url: &str, mode: &str| format!("{url}?sslmode={mode}&sslrootcert={}", root.display());
    assert_ok(try_url(&with_root(&by_name, "verify-full"), None));
    // the address is not the name in the certificate: verify-full refuses,
    // verify-ca (the chain only) accepts
    let (status, err) = try_url(&with_root(&by_addr, "verify-full"), None);
    assert_eq!(status, 125, "{err}");
    assert!(err.contains("certificate"), "{err}");
    assert_ok(try_url(&with_root(&by_addr, "verify-ca"), None));
    // the system's store: unknown CA; the same store with the CA in it
    // (SSL_CERT_FILE, as OpenSSL reads it) accepts
    let (status, err) = try_url(&format!("{by_name}?sslmode=verify-full"), None);
    assert_eq!(status, 125, "{err}");
    assert_ok(try_url(&format!("{by_name}?sslmode=verify-full"), Some(("SSL_CERT_FILE", &root))));
    // key/value form
    let words = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert='{}'",
        signed.port,
        root.display()
    );
    assert_ok(try_url(&words, None));
}

#[test]
fn the_password_is_never_shown() {
    const SECRET: &str = "Zq9-very-secret-pw";
    const WRONG: &str = "Wx7-wrong-secret-pw";
    let pg = server::shared();
    pg.sql("postgres", &format!("CREATE ROLE fleet LOGIN PASSWORD '{SECRET}'"));
    pg.sql("postgres", "CREATE DATABASE fleet_pw OWNER fleet");
    let url = format!("postgres://fleet:{SECRET}@127.0.0.1:{}/fleet_pw", pg.port);
    let bare = format!("postgres://fleet@127.0.0.1:{}/fleet_pw", pg.port);
    let (a, b, shared) = (Env::new(), Env::new(), Env::new());
    let mut seen = String::new();
    let mut keep = |o: &Output| {
        seen.push_str(&stdout(o));
        seen.push_str(&stderr(o));
    };
    let metrics = a.path("metrics");
    let mut holder = spawn_on(
        &a,
        "alpha",
        &[
            "--lock-url",
            &url,
            "--name",
            "pw",
            "--log",
            "stderr",
            "--metrics-dir",
            metrics.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &holding_job(&shared, "alpha"),
        ],
    );
    let _cleanup = Cleanup { dir: &shared, pids: vec![holder.id()] };
    token(&shared, "alpha");
    let o =
        run_on(&b, "beta", &["--lock-url", &url, "--name", "pw", "--log", "stderr", "--", "true"]);
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    keep(&o);
    for status in [&["--status", "pw"][..], &["--status", "pw", "--json"], &["--status"]] {
        let o = run_on(&b, "beta", &[&["--lock-url", url.as_str()][..], status].concat());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(stdout(&o).contains("alpha"), "{}", stdout(&o));
        keep(&o);
    }
    std::fs::write(shared.path("release"), "").unwrap();
    assert_eq!(wait_exit(&mut holder, SLACK * 2), Some(0));
    let out = holder.wait_with_output().unwrap();
    keep(&out);
    // PGPASSWORD, and a password file (only if others cannot read it)
    let o = on_host(&b, "beta")
        .args(["--lock-url", &bare, "--name", "pw", "--", "true"])
        .env("PGPASSWORD", SECRET)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "PGPASSWORD: {}", stderr(&o));
    keep(&o);
    let pgpass = b.path("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{}:fleet_pw:fleet:{SECRET}\n", pg.port)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = on_host(&b, "beta")
        .args(["--lock-url", &bare, "--name", "pw", "--", "true"])
        .env("PGPASSFILE", &pgpass)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "pgpass: {}", stderr(&o));
    keep(&o);
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = on_host(&b, "beta")
        .args(["--lock-url", &bare, "--name", "pw", "--lock-url-optional", "--", "true"])
        .env("PGPASSFILE", &pgpass)
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "a refused login is not an unreachable server: {}", stderr(&o));
    assert!(stderr(&o).contains("chmod 0600"), "{}", stderr(&o));
    keep(&o);
    // refused logins and bad input name the server, never the password
    let wrong = url.replace(SECRET, WRONG);
    for bad in
        [wrong.clone(), format!("{wrong}?sslmode=bogus"), url.replace("fleet_pw", "nosuchdb")]
    {
        let o = run_on(&b, "beta", &["--lock-url", &bad, "--name", "pw", "--", "true"]);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains("--lock-url"), "{}", stderr(&o));
        keep(&o);
    }
    let o = on_host(&b, "beta")
        .args(["--name", "pw", "--", "true"])
        .env("RUNONCE_LOCK_URL", &wrong)
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    keep(&o);
    let o = on_host(&b, "beta").args(["--help"]).env("RUNONCE_LOCK_URL", &url).output().unwrap();
    keep(&o);
    for env in [&a, &b] {
        for f in walk(env.dir.path()) {
            seen.push_str(&String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()));
        }
    }
    assert!(seen.contains("fleet@127.0.0.1"), "the outputs were collected");
    assert!(!seen.contains(SECRET) && !seen.contains(WRONG), "a password leaked:\n{seen}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if !p.ends_with("pgpass") {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_dba_can_create_the_table_and_grant_only_what_runonce_needs() {
    let pg = server::shared();
    let db = pg.database("fleet_grants");
    pg.sql(&db, runonce::fleet::CREATE_TABLE);
    pg.sql("postgres", "CREATE ROLE limited LOGIN");
    pg.sql(&db, "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    pg.sql(&db, "GRANT SELECT, INSERT, UPDATE ON runonce_leases TO limited");
    let url = format!("postgres://limited@127.0.0.1:{}/{db}", pg.port);
    let env = Env::new();
    for _ in 0..2 {
        let o = run_on(&env, "alpha", &["--lock-url", &url, "--name", "granted", "--", "true"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    assert_eq!(last_finish(&env, "granted")["fencing_token"], 2);
    // without the table, and without the right to create it: a clear 125
    let bare = pg.database("fleet_no_table");
    pg.sql(&bare, "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    let url = format!("postgres://limited@127.0.0.1:{}/{bare}", pg.port);
    let ran = env.path("ran");
    let o = run_on(
        &env,
        "alpha",
        &["--lock-url", &url, "--name", "granted", "--", "touch", ran.to_str().unwrap()],
    );
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    assert!(!ran.exists());
}

#[test]
fn usage_errors_name_the_option() {
    let env = Env::new();
    let ran = env.path("ran");
    let cases: &[(&[&str], &str)] = &[
        (&["--lease", "5s"], "--lease: needs --lock-url"),
        (&["--lock-at-least", "5s"], "--lock-at-least: needs --lock-url"),
        (&["--lock-url-optional"], "--lock-url-optional: needs --lock-url"),
        (&["--lock-url", "postgres://u:pw@h/db?sslmode=bogus"], "sslmode 'bogus'"),
        (&["--lock-url", "host='unclosed"], "--lock-url: invalid value"),
        (&["--lock-url", "postgres://h/db", "--slots", "2"], "--slots 2"),
        (&["--lock-url", "postgres://h/db", "--lease", "0.5"], "--lease: invalid value"),
        (&["--lock-url", "postgres://h/db", "--lease", "400d"], "at most 366 days"),
    ];
    for (args, want) in cases {
        let o =
            env.cmd().args(*args).args(["--", "touch", ran.to_str().unwrap()]).output().unwrap();
        assert_eq!(code(&o), 125, "{args:?}");
        let err = stderr(&o);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains(":pw@"), "{err}");
        assert!(!ran.exists());
    }
}
