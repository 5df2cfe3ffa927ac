//! The README's test command on stock Debian (issue 12): Python packages
//! come from Debian for Debian's python3, and the acceptance scenarios,
//! when they are not beside the repository, are skipped with a word.

use std::path::Path;
use std::process::Command;

use crate::util::{code, stderr, stdout};

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Only Debian's own programs: no pyenv, no ~/.local, no /usr/local.
const DEBIAN_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

#[test]
fn ci_deps_installs_python_packages_with_apt_for_debians_python() {
    let deps = std::fs::read_to_string(repo(".ci/deps")).unwrap();
    for pip in ["pip install", "-m pip", "pip3 "] {
        assert!(!deps.contains(pip), ".ci/deps uses pip ({pip}): Debian's python3 refuses it");
    }
    let out = Command::new("bash")
        .arg(repo(".ci/deps"))
        .env("PATH", DEBIAN_PATH)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = Command::new("/usr/bin/python3")
        .args(["-c", "import prometheus_client.parser; print(prometheus_client.__file__)"])
        .env("PATH", DEBIAN_PATH)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("/usr/lib/python3/dist-packages/"), "{}", stdout(&out));
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status}", "python3-prometheus-client"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "installed");
}

#[test]
fn ci_scenarios_says_when_they_are_not_there() {
    let t = tempfile::tempdir().unwrap();
    let ci = t.path().join("repo/.ci");
    std::fs::create_dir_all(&ci).unwrap();
    std::fs::copy(repo(".ci/scenarios"), ci.join("scenarios")).unwrap();
    let run = || Command::new("bash").arg(ci.join("scenarios")).arg("the/binary").output().unwrap();
    let out = run();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let missing = t.path().join("shared/scenarios/run-all.sh");
    assert_eq!(
        stdout(&out),
        format!(
            "scenarios: skipped: {} is not there (the acceptance scenarios live beside the \
             repository)\n",
            missing.display()
        )
    );
    // there: run with the binary, their failure is the script's
    std::fs::create_dir_all(missing.parent().unwrap()).unwrap();
    std::fs::write(&missing, "echo \"ran against $1\"; exit 3\n").unwrap();
    let out = run();
    assert_eq!((code(&out), stdout(&out).as_str()), (3, "ran against the/binary\n"));
    let test = std::fs::read_to_string(repo(".ci/test")).unwrap();
    assert!(test.contains("bash .ci/scenarios target/release/runonce"), "{test}");
}
