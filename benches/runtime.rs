//! `make bench-runtime`: autostop against a bare `lambda_runtime` function, through a local
//! Lambda Runtime API, side by side in one run. Prints the round trip (the Runtime API handing
//! out an event to the function posting its response) of an unknown host and of a refused
//! request, the cold start (process spawn to the first `/next`), and the ratios.
//!
//! The bare function is this same executable run again with `AUTOSTOP_BENCH_BARE=1`: it answers
//! every event 404 with a text body, the least a target of an ALB can do. It is built with the
//! bench profile, cargo's plain release profile.
//! autostop is the binary `make build` ships (`AUTOSTOP_BENCH_BINARY`, which `make bench` builds
//! with the release profile: opt-level "s", LTO), run with the environment variables the
//! template gives the function (`RUST_LOG` read from `infra/autostop.yaml`).
//! Runs alternate (bare, autostop, bare, ...) so that machine noise falls on both.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};

const ROUNDS: usize = 9;
const PER_ROUND: usize = 1000;

fn main() {
    if std::env::var_os("AUTOSTOP_BENCH_BARE").is_some() {
        return bare();
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(compare());
}

/// The bare function: `lambda_runtime` and a constant answer, nothing else.
fn bare() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let _ =
        rt.block_on(lambda_runtime::run(lambda_runtime::service_fn(|_: lambda_runtime::LambdaEvent<Value>| async {
            Ok::<Value, lambda_runtime::Error>(json!({
                "statusCode": 404,
                "statusDescription": "404 Not Found",
                "headers": { "content-type": "text/plain" },
                "body": "not found",
                "isBase64Encoded": false
            }))
        })));
}

fn alb(host: &str, ua: &str) -> Value {
    json!({
        "requestContext": { "elb": { "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/autostop/1" } },
        "httpMethod": "GET", "path": "/", "queryStringParameters": {},
        "headers": { "host": host, "accept": "*/*", "user-agent": ua, "x-forwarded-for": "198.51.100.7" },
        "body": "", "isBase64Encoded": false
    })
}

struct Figures {
    cold: Vec<Duration>,
    trips: Vec<Duration>,
}

async fn compare() {
    let dir = std::env::temp_dir().join(format!("autostop-bench-runtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("autostop.toml");
    std::fs::write(
        &config,
        "listener_arns = [\"arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/dev/50dc6c495c0c9188/f2f7dc8efc522ab2\"]\n\
         [[rules]]\nname = \"api\"\nhosts = [\"api.dev.example.com\"]\n\
         target_group_arn = \"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/api/73e2d6bc24d8a067\"\n\
         ec2 = { instance_ids = [\"i-0123456789abcdef0\"] }\n",
    )
    .expect("config");
    let shipped = std::env::var("AUTOSTOP_BENCH_BINARY").ok();
    let autostop = shipped.clone().unwrap_or_else(|| env!("CARGO_BIN_EXE_autostop").to_string());
    let rust_log = template_variable("RUST_LOG");
    let me = std::env::current_exe().expect("own path");
    match &shipped {
        Some(path) => println!("autostop: {path} (release profile, as shipped)"),
        None => println!("autostop: the bench build (not the shipped binary: run `make bench` for that)"),
    }
    println!("autostop's environment as the template's: RUST_LOG={}", rust_log.as_deref().unwrap_or("(unset)"));
    let cases = [
        ("unknown host", alb("nope.dev.example.com", "curl/8.5")),
        ("refused (bot)", alb("api.dev.example.com", "Mozilla/5.0 (compatible; Googlebot/2.1)")),
    ];
    println!("through a local Lambda Runtime API, {ROUNDS} alternating runs of {PER_ROUND} invocations each");
    println!(
        "{:<16} {:>12} {:>12} {:>7}   {:>10} {:>10} {:>7}",
        "event", "bare p50", "autostop p50", "ratio", "bare cold", "ours cold", "ratio"
    );
    for (name, event) in &cases {
        let (mut b, mut a) = (Figures { cold: vec![], trips: vec![] }, Figures { cold: vec![], trips: vec![] });
        for _ in 0..ROUNDS {
            run(Command::new(&me).env("AUTOSTOP_BENCH_BARE", "1"), event, &mut b).await;
            let mut ours = Command::new(&autostop);
            ours.env("AUTOSTOP_CONFIG", &config).env("AUTOSTOP_STATE_TABLE", "autostop-state");
            match &rust_log {
                Some(v) => ours.env("RUST_LOG", v),
                None => ours.env_remove("RUST_LOG"),
            };
            run(&mut ours, event, &mut a).await;
        }
        let (bt, at) = (median(&mut b.trips), median(&mut a.trips));
        let (bc, ac) = (median(&mut b.cold), median(&mut a.cold));
        println!(
            "{name:<16} {:>10.1}µs {:>10.1}µs {:>6.2}x   {:>8.1}ms {:>8.1}ms {:>6.2}x",
            micros(bt),
            micros(at),
            micros(at) / micros(bt),
            micros(bc) / 1000.0,
            micros(ac) / 1000.0,
            micros(ac) / micros(bc)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A plain `KEY: value` of the function's environment in the template (`None` when absent).
fn template_variable(key: &str) -> Option<String> {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/autostop.yaml")).ok()?;
    let line = template.lines().find(|l| l.trim_start().starts_with(&format!("{key}:")))?;
    let value = line.split_once(':')?.1.trim().trim_matches('"');
    (!value.is_empty()).then(|| value.to_string())
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One process: its cold start and `PER_ROUND` round trips of `event`.
async fn run(cmd: &mut Command, event: &Value, figures: &mut Figures) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (next_tx, next_rx) = mpsc::channel::<Vec<u8>>(1);
    let (done_tx, mut done_rx) = mpsc::channel::<Instant>(1);
    let (first_tx, mut first_rx) = mpsc::channel::<Instant>(1);
    let shared = Arc::new(Server { next: Mutex::new(next_rx), done: done_tx, first: first_tx, sent: Mutex::new(None) });
    let server = Arc::clone(&shared);
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, Arc::clone(&server)));
        }
    });
    let spawned = Instant::now();
    let mut child: Child = cmd
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the function");
    let first = first_rx.recv().await.expect("the function asked for an event");
    figures.cold.push(first - spawned);
    let body = serde_json::to_vec(event).expect("event");
    for _ in 0..PER_ROUND {
        next_tx.send(body.clone()).await.expect("deliver");
        let done = done_rx.recv().await.expect("a response");
        let sent = shared.sent.lock().await.take().expect("sent");
        figures.trips.push(done - sent);
    }
    let _ = child.kill();
    let _ = child.wait();
    accept.abort();
}

struct Server {
    next: Mutex<mpsc::Receiver<Vec<u8>>>,
    done: mpsc::Sender<Instant>,
    first: mpsc::Sender<Instant>,
    /// When the event being handled was written out.
    sent: Mutex<Option<Instant>>,
}

/// The Runtime API's two calls the functions make: `GET .../invocation/next` and
/// `POST .../invocation/{id}/response` (keep-alive, content-length or chunked bodies).
async fn serve(stream: TcpStream, server: Arc<Server>) {
    let mut stream = BufReader::new(stream);
    let mut count = 0u64;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let request_line = head.first().cloned().unwrap_or_default();
        let header = |name: &str| {
            head.iter().skip(1).find_map(|h| {
                h.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
            })
        };
        // Read (and drop) the body.
        if let Some(n) = header("content-length").and_then(|n| n.parse::<usize>().ok()) {
            let mut body = vec![0; n];
            if stream.read_exact(&mut body).await.is_err() {
                return;
            }
        } else if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut size = String::new();
                stream.read_line(&mut size).await.unwrap_or(0);
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if stream.read_exact(&mut chunk).await.is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
            }
        }
        if request_line.starts_with("GET") && request_line.contains("/invocation/next") {
            let _ = server.first.try_send(Instant::now());
            let Some(event) = server.next.lock().await.recv().await else { return };
            count += 1;
            let deadline =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
                    + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nlambda-runtime-aws-request-id: req-{count}\r\nlambda-runtime-deadline-ms: {deadline}\r\nlambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\nlambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                event.len()
            );
            let mut out = head.into_bytes();
            out.extend_from_slice(&event);
            *server.sent.lock().await = Some(Instant::now());
            if stream.get_mut().write_all(&out).await.is_err() {
                return;
            }
        } else {
            let done = Instant::now();
            let reply = "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"status\":\"OK\"}\n";
            if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            if request_line.contains("/response") {
                let _ = server.done.send(done).await;
            }
        }
    }
}
