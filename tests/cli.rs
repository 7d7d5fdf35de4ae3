//! The CLI as an operator meets it, run as the real binary: which config it reads, and what it
//! says and exits with when AWS cannot be reached (nothing listens on the endpoint).

use std::path::{Path, PathBuf};
use std::process::Command;

const L1: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2";
const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067";

fn config_text(rule: &str) -> String {
    format!(
        "listener_arns = [\"{L1}\"]\n[[rules]]\nname = \"{rule}\"\nhosts = [\"{rule}.x.com\"]\ntarget_group_arn = \"{TG}\"\nec2 = {{ instance_ids = [\"i-0123456789abcdef0\"] }}\n"
    )
}

/// A fresh folder under cargo's per-test tmp dir.
fn folder(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `binary args` in `cwd`, AWS pointed at a port nothing listens on, with `env` added.
fn run(binary: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(binary);
    cmd.args(args).current_dir(cwd);
    for k in ["AUTOSTOP_CONFIG", "AUTOSTOP_LISTENER_ARNS", "AUTOSTOP_LOAD_BALANCER_ARN", "AWS_PROFILE", "RUST_LOG"] {
        cmd.env_remove(k);
    }
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_autostop"))
}

#[test]
fn the_config_is_the_flag_then_the_variable_then_the_current_directory_then_beside_the_binary() {
    let (cwd, empty, bin_dir) = (folder("cwd"), folder("empty"), folder("bin"));
    // The binary in a folder of its own (a hard link: the path it runs as is that folder's).
    let binary = bin_dir.join("autostop");
    std::fs::hard_link(bin(), &binary).or_else(|_| std::fs::copy(bin(), &binary).map(|_| ())).unwrap();
    std::fs::write(cwd.join("autostop.toml"), config_text("here")).unwrap();
    std::fs::write(bin_dir.join("autostop.toml"), config_text("beside")).unwrap();
    let named = cwd.join("named.toml");
    std::fs::write(&named, config_text("named")).unwrap();

    let r = run(&binary, &cwd, &["validate"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let here = cwd.join("autostop.toml");
    assert!(r.stderr.contains(&format!("config {} (the current directory)", here.display())), "{}", r.stderr);

    let r = run(&binary, &empty, &["validate"], &[]);
    let beside = bin_dir.join("autostop.toml");
    assert!(r.stderr.contains(&format!("config {} (beside the binary)", beside.display())), "{}", r.stderr);

    let r = run(&binary, &cwd, &["validate"], &[("AUTOSTOP_CONFIG", named.to_str().unwrap())]);
    assert!(r.stderr.contains("($AUTOSTOP_CONFIG)"), "{}", r.stderr);
    let r = run(&binary, &cwd, &["--config", named.to_str().unwrap(), "validate"], &[("AUTOSTOP_CONFIG", "/nope")]);
    assert!(r.stderr.contains(&format!("config {} (--config)", named.display())), "{}", r.stderr);

    // A file named on purpose that is not there is the error, not another file.
    let r = run(&binary, &cwd, &["validate"], &[("AUTOSTOP_CONFIG", "/nope/autostop.toml")]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read /nope/autostop.toml"), "{}", r.stderr);

    std::fs::remove_file(&beside).unwrap();
    let r = run(&binary, &empty, &["status"], &[]);
    assert_eq!(r.code, 2, "no config is bad usage: {}", r.stderr);
    let looked = format!("looked for {} and {}", empty.join("autostop.toml").display(), beside.display());
    assert!(r.stderr.contains(&looked), "{}", r.stderr);
}

#[test]
fn with_aws_unreachable_every_command_exits_1_with_one_line_naming_the_code_and_what_to_do() {
    let dir = folder("unreachable");
    std::fs::write(dir.join("autostop.toml"), config_text("api")).unwrap();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["wake", "api"],
        &["stop", "api"],
        &["idle-check"],
        &["sync"],
        &["keep-awake", "api", "--for", "1h"],
        &["validate", "--aws"],
    ] {
        let r = run(&bin(), &dir, args, &[]);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("cannot reach AWS (NetworkError from")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line for the one cause: {}", r.stderr);
        assert!(lines[0].contains("check the network and the region"), "{args:?}: {}", lines[0]);
        assert!(r.stderr.lines().count() <= 3, "{args:?}: no log without -v: {}", r.stderr);
        assert!(!r.stderr.contains("dispatch failure") && !r.stderr.contains('{'), "{args:?}: {}", r.stderr);
    }
    let r = run(&bin(), &dir, &["status"], &[]);
    let row = r.stdout.lines().find(|l| l.starts_with("api ")).unwrap_or_default();
    assert!(row.contains("unknown") && !row.contains("starting"), "a phase not observed is not guessed: {}", r.stdout);

    // -v: the log, with the SDK's own words, for whoever needs them.
    let r = run(&bin(), &dir, &["-v", "status"], &[]);
    assert!(r.stderr.contains("WARN") && r.stderr.contains("Connection refused"), "{}", r.stderr);
    // Bad usage stays 2, and offline validation needs no AWS.
    assert_eq!(run(&bin(), &dir, &["wake", "nosuch"], &[]).code, 2);
    assert_eq!(run(&bin(), &dir, &["validate"], &[]).code, 0);
}

/// Step 1 of the README's Deploy leaves `listener_arns` out (the stack gives them); step 2's
/// validate must pass on that file, and say the listeners come later.
#[test]
fn validate_passes_a_config_without_listeners_and_says_the_stack_gives_them() {
    let dir = folder("no-listeners");
    let text = config_text("api").replace(&format!("listener_arns = [\"{L1}\"]\n"), "");
    std::fs::write(dir.join("autostop.toml"), text).unwrap();
    let r = run(&bin(), &dir, &["validate"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no listeners yet (the stack gives the function its own)"), "{}", r.stdout);
    // Anything that acts needs them.
    let r = run(&bin(), &dir, &["status"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("listener_arns"), "{}", r.stderr);
}
