//! Engine throughput: how fast the scheduler plans and runs a large asset with a fake clock.
//!
//! The plan is a two-hour asset of 100,000 jobs (video and audio segments of about 0.14 s each, so the
//! count matches the largest playlists seen in the wild). The driver completes each started job at
//! once, so what is measured is the engine alone: bookkeeping per start and per completion.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stowage_task::IntegrityPolicy;
use stowage_task::engine::{
    Action, ConcurrencyLimits, Engine, EngineConfig, Failure, JobId, JobSpec, Outcome, Plan, RenditionSpec,
    RetryPolicy,
};

const JOBS: u64 = 100_000;

fn plan() -> Plan<'static> {
    let mut plan = Plan::new();
    let video = plan.add_rendition(RenditionSpec::new().bandwidth(5_000_000));
    let audio = plan.add_rendition(RenditionSpec::new().bandwidth(128_000));
    let segment = Duration::from_millis(144);
    for i in 0..JOBS / 2 {
        let at = segment * i as u32;
        plan.add_job(JobSpec::new(JobId(2 * i), video, at, segment, "video.cdn.example"));
        plan.add_job(JobSpec::new(JobId(2 * i + 1), audio, at, segment, "audio.cdn.example"));
    }
    plan
}

/// Runs the engine to its end; every `fail_every`-th completion is a retryable failure.
fn run(fail_every: u64) -> usize {
    let config = EngineConfig::default()
        .concurrency(ConcurrencyLimits::default().max_total(16).max_per_host(16))
        .retry(RetryPolicy::default().max_attempts(20).max_retry_time(Duration::from_secs(1 << 30)))
        .integrity(IntegrityPolicy::Tolerant)
        .seed(1);
    let mut engine = Engine::new(config, plan()).expect("valid plan");
    let mut now = Instant::now();
    engine.resume(now);
    let mut started = std::collections::VecDeque::new();
    let mut completions = 0u64;
    loop {
        while let Some(action) = engine.poll_action() {
            match action {
                Action::Start { job, .. } => started.push_back(job),
                Action::Finished { .. } => return engine.progress().segments_done,
                _ => {}
            }
        }
        now += Duration::from_millis(5);
        match started.pop_front() {
            Some(job) => {
                completions += 1;
                let outcome = if fail_every > 0 && completions.is_multiple_of(fail_every) {
                    Outcome::Failure(Failure::retryable("reset"))
                } else {
                    Outcome::success(100_000)
                };
                engine.handle_completed(now, job, outcome);
            }
            None => {
                now = engine.poll_timeout().expect("a retry waits").max(now);
                engine.handle_timeout(now);
            }
        }
    }
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(JOBS));
    group.sample_size(10);
    // The bound side by side: the least any scheduler in timeline order does, one heap push and pop per
    // job, with no limits, retries, progress or ranges.
    group.bench_function("baseline: heap push and pop of 100k", |b| {
        b.iter(|| {
            let mut heap = std::collections::BinaryHeap::with_capacity(JOBS as usize);
            for i in 0..JOBS {
                heap.push(std::cmp::Reverse((i * 144_000_000, (i % 2) as u32, i as u32)));
            }
            let mut n = 0u64;
            while let Some(entry) = heap.pop() {
                n = n.wrapping_add(u64::from(entry.0.2));
            }
            black_box(n)
        });
    });
    group.bench_function("plan 100k jobs", |b| {
        b.iter(|| black_box(Engine::new(EngineConfig::default(), plan())));
    });
    group.bench_function("run 100k jobs", |b| b.iter(|| black_box(run(0))));
    group.bench_function("run 100k jobs, 5% retried", |b| b.iter(|| black_box(run(20))));
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
