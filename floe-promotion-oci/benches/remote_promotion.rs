//! Promotion over real registries (`docker-registry` 2.8 on loopback), `OciRegistry` beside
//! `skopeo copy` doing the same operation in the same run:
//!
//! - `retag`: a new tag for a digest in the same repository (resolve + raw manifest PUT);
//! - `mount`: promotion to a fresh repository of the same registry (3 blobs, 3 MiB), then tag;
//! - `cross_registry_256mib`: promotion of a 256 MiB image to another registry (a fresh one
//!   per iteration), then tag (throughput in MiB/s).
//!
//! After criterion, the peak resident memory of one 256 MiB cross-registry copy is measured in
//! a fresh process for each tool, and a summary with the ratios is printed.
//!
//! Run: `scripts/bench-oci.sh` (or `cargo bench -p floe-promotion-oci --bench remote_promotion`).
//! Figures are recorded in `floe-promotion-oci/README.md`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use floe_promotion::registry::Manifest;
use floe_promotion::{ArtifactName, ArtifactRegistry, Digest, Reference, Repository, Tag};
use floe_promotion_oci::testing::{TestRegistry, peak_rss_bytes, push_generated_image};
use floe_promotion_oci::{CredentialSource, OciOptions, OciRegistry};

const MIB: usize = 1024 * 1024;
const BIG: usize = 256 * MIB;
/// Set in a child process that performs one measured copy: `floe|skopeo SRC DST DIGEST HOSTS`.
const CHILD_ENV: &str = "FLOE_BENCH_MEMORY_CHILD";

struct Setup {
    a: TestRegistry,
    client: OciRegistry,
    small_repo: Repository,
    small: Manifest,
    big_repo: Repository,
    big: Manifest,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn tag(t: &str) -> Tag {
    Tag::new(t).expect("tag")
}

fn app(base: &Repository) -> Repository {
    base.join(&ArtifactName::new("app").expect("name"))
        .expect("repository")
}

fn options(hosts: Vec<String>) -> OciOptions {
    OciOptions {
        insecure_hosts: hosts,
        credentials: CredentialSource::Anonymous,
        ..OciOptions::default()
    }
}

fn setup(rt: &tokio::runtime::Runtime) -> Setup {
    let a = TestRegistry::start();
    let client = OciRegistry::new(options(vec![a.host()])).expect("client");
    let small_repo = app(&a.namespace("bench-dev"));
    let big_repo = app(&a.namespace("bench-big"));
    let (small, big) = rt.block_on(async {
        let small = push_generated_image(
            &client,
            &small_repo,
            Some(&tag("v1")),
            &[2 * MIB, MIB, 10_000],
            1,
        )
        .await;
        let big = push_generated_image(&client, &big_repo, Some(&tag("v1")), &[BIG], 2).await;
        (small, big)
    });
    Setup {
        a,
        client,
        small_repo,
        small,
        big_repo,
        big,
    }
}

/// `skopeo copy` between two docker references, over plain HTTP.
fn skopeo_copy(src: &str, dst: &str) {
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{src}"),
            &format!("docker://{dst}"),
        ])
        .stdin(Stdio::null())
        .status()
        .expect("skopeo runs (scripts/registry-deps.sh installs it)");
    assert!(status.success(), "skopeo copy {src} {dst} failed");
}

/// One promotion by `OciRegistry`: copy (unless same repository) and tag.
async fn promote(client: &OciRegistry, src: &Repository, dst: &Repository, m: &Manifest, t: &Tag) {
    if src != dst {
        client.copy(src, dst, m.digest()).await.expect("copy");
    }
    client.put_manifest(dst, Some(t), m).await.expect("tag");
}

fn bench_promotions(c: &mut Criterion) {
    let rt = runtime();
    let s = setup(&rt);
    let counter = AtomicU64::new(0);
    let next = || counter.fetch_add(1, Ordering::Relaxed);

    let mut group = c.benchmark_group("retag");
    group.bench_function("floe", |b| {
        b.to_async(&rt).iter(|| async {
            let m = s
                .client
                .resolve(&s.small_repo, &Reference::Tag(tag("v1")))
                .await
                .expect("resolve");
            promote(
                &s.client,
                &s.small_repo,
                &s.small_repo,
                &m,
                &tag("v1-staging"),
            )
            .await;
        })
    });
    group.bench_function("skopeo", |b| {
        b.iter(|| {
            skopeo_copy(
                &format!("{}:v1", s.small_repo),
                &format!("{}:v1-staging-skopeo", s.small_repo),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("mount");
    group.bench_function("floe", |b| {
        b.to_async(&rt).iter(|| async {
            let dst = app(
                &Repository::new(format!("{}/bench-prod-{}", s.a.host(), next())).expect("repo"),
            );
            promote(&s.client, &s.small_repo, &dst, &s.small, &tag("v1-prod")).await;
        })
    });
    group.bench_function("skopeo", |b| {
        b.iter(|| {
            let dst = format!("{}/bench-skopeo-prod-{}/app:v1-prod", s.a.host(), next());
            skopeo_copy(&format!("{}:v1", s.small_repo), &dst)
        })
    });
    group.finish();

    // Each iteration copies into a fresh destination registry (started and dropped outside
    // the timing): skopeo remembers where it has seen a blob and would otherwise mount it from
    // an earlier destination repository instead of copying it.
    let mut group = c.benchmark_group("cross_registry_256mib");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Bytes(BIG as u64));
    group.bench_function("floe", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = TestRegistry::start();
                let client =
                    OciRegistry::new(options(vec![s.a.host(), target.host()])).expect("client");
                let dst = app(&target.namespace("bench-big"));
                let started = Instant::now();
                rt.block_on(promote(&client, &s.big_repo, &dst, &s.big, &tag("v1")));
                total += started.elapsed();
            }
            total
        })
    });
    group.bench_function("skopeo", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let target = TestRegistry::start();
                let dst = format!("{}:v1", app(&target.namespace("bench-big")));
                let started = Instant::now();
                skopeo_copy(&format!("{}:v1", s.big_repo), &dst);
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();

    // Peak memory of one 256 MiB cross-registry copy, each tool in a fresh process and into
    // a fresh registry.
    let mut memory = Vec::new();
    for tool in ["floe", "skopeo"] {
        let target = TestRegistry::start();
        let hosts = format!("{},{}", s.a.host(), target.host());
        let dst = app(&target.namespace(&format!("bench-mem-{tool}")));
        let spec = format!("{tool} {} {} {} {hosts}", s.big_repo, dst, s.big.digest());
        let out = Command::new(std::env::current_exe().expect("bench binary"))
            .env(CHILD_ENV, spec)
            .stdin(Stdio::null())
            .output()
            .expect("memory child runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "memory child failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let peak: u64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("PEAK_RSS "))
            .and_then(|v| v.trim().parse().ok())
            .expect("the child reports its peak RSS");
        memory.push((tool, peak));
    }
    summary(&memory);
}

/// The child side of the memory measurement.
fn memory_child(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let [tool, src, dst, digest, hosts] = parts[..] else {
        panic!("bad child spec {spec:?}");
    };
    match tool {
        "floe" => {
            let client = OciRegistry::new(options(hosts.split(',').map(str::to_string).collect()))
                .expect("client");
            let (src, dst) = (
                Repository::new(src).expect("src"),
                Repository::new(dst).expect("dst"),
            );
            let digest = Digest::new(digest).expect("digest");
            runtime().block_on(async {
                let m = client
                    .resolve(&src, &Reference::Digest(digest.clone()))
                    .await
                    .expect("resolve");
                promote(&client, &src, &dst, &m, &tag("v1")).await;
            });
            println!("PEAK_RSS {}", peak_rss_bytes().expect("VmHWM"));
        }
        "skopeo" => {
            skopeo_copy(&format!("{src}@{digest}"), &format!("{dst}:v1"));
            let usage =
                nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
                    .expect("getrusage");
            // ru_maxrss is in KiB on Linux.
            println!("PEAK_RSS {}", usage.max_rss() as u64 * 1024);
        }
        other => panic!("unknown tool {other}"),
    }
}

/// Mean time of `group/function` from criterion's output, in seconds.
fn mean_seconds(group: &str, function: &str) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<bench> → target/criterion
    let target = exe.parent()?.parent()?.parent()?;
    let dir = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("criterion"));
    let text =
        std::fs::read_to_string(dir.join(group).join(function).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v["mean"]["point_estimate"].as_f64()? / 1e9)
}

fn summary(memory: &[(&str, u64)]) {
    println!("\n== floe-promotion-oci vs skopeo (same registries, same run) ==");
    println!("| operation | floe | skopeo | skopeo / floe |");
    println!("|---|---|---|---|");
    for (group, label) in [
        ("retag", "retag, same repository"),
        (
            "mount",
            "promotion to another repository (mount: 3 layers + config)",
        ),
        (
            "cross_registry_256mib",
            "promotion to another registry, 256 MiB",
        ),
    ] {
        let (Some(f), Some(s)) = (mean_seconds(group, "floe"), mean_seconds(group, "skopeo"))
        else {
            println!("| {label} | ? | ? | ? |");
            continue;
        };
        let show = |secs: f64| {
            if group == "cross_registry_256mib" {
                format!("{:.2} s ({:.0} MiB/s)", secs, 256.0 / secs)
            } else {
                format!("{:.1} ms", secs * 1e3)
            }
        };
        println!("| {label} | {} | {} | {:.1}x |", show(f), show(s), s / f);
    }
    let mem = |tool: &str| memory.iter().find(|(t, _)| *t == tool).map(|(_, b)| *b);
    if let (Some(f), Some(s)) = (mem("floe"), mem("skopeo")) {
        println!(
            "| peak RSS, 256 MiB cross-registry copy | {:.1} MiB | {:.1} MiB | {:.1}x |",
            f as f64 / MIB as f64,
            s as f64 / MIB as f64,
            s as f64 / f as f64
        );
    }
}

criterion_group!(benches, bench_promotions);

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        memory_child(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
