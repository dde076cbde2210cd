//! How long a light image takes beside two heavy ones on a 2-core host,
//! with the heavy images' engine children at the worker's own priority and
//! at the niceness the worker gives them (`worker/src/runtime/priority.rs`).
//! Every image runs as the worker runs it: `Isolation::run`, a sandboxed
//! child of the release binary. `scripts/bench-priority` prints the table.

#[allow(dead_code)]
mod timing;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Limits;
use common::recipe::Op;
use serde_json::json;
use worker::isolate::{Isolation, Original, Share};
use worker::sandbox::Sandbox;

/// The niceness the worker gives a 24 MP teeth whitening (about 5 s of a
/// core): 4 steps per doubling past a second.
const HEAVY_NICE: u8 = 8;

fn ops(value: serde_json::Value) -> Vec<Op> {
    serde_json::from_value(value).unwrap()
}

fn testdata(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    std::fs::read(dir.join(name)).unwrap()
}

/// `name` resized to `width`×`height`, as a JPEG.
fn photo(name: &str, width: u32, height: u32) -> Vec<u8> {
    let resize = ops(json!([
        {"op": "resize", "width": width, "height": height, "fit": "fill"},
        {"op": "format", "format": "jpeg", "quality": 90}
    ]));
    worker::engine::process(&testdata(name), &resize, &Limits::default(), None)
        .unwrap()
        .bytes
}

async fn run(isolation: &Isolation, input: &[u8], ops: &[Op], share: Share) -> f64 {
    let started = Instant::now();
    let original = Original::from_bytes(input).unwrap();
    isolation
        .run(original, ops, &Limits::default(), share)
        .await
        .unwrap();
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let isolation = Isolation {
        program: PathBuf::from(env!("CARGO_BIN_EXE_darkroom-worker")),
        deadline: Duration::from_secs(600),
        sandbox: Sandbox::On,
    };
    let light_input = photo("rocket.jpg", 4000, 3000);
    let heavy_input = photo("coffee.png", 6000, 4000);
    let light = ops(json!([{"op": "resize", "width": 1600, "height": 1200, "fit": "inside"}]));
    let heavy = ops(json!([{"op": "teeth_whiten"}]));
    let light_share = Share::memory(1 << 30);

    let mut alone = Vec::new();
    for _ in 0..7 {
        alone.push(run(&isolation, &light_input, &light, light_share).await);
    }
    let alone = timing::median(alone);
    println!("light: a 12 MP JPEG resized to 1600×1200; heavy: a 24 MP teeth whitening");
    println!();
    println!("| two heavy images beside it, at | light image, median s | × alone |");
    println!("|---|---:|---:|");
    println!("| (none) | {alone:.3} | 1.00× |");
    for nice in [0, HEAVY_NICE] {
        let heavy_share = Share {
            memory: 4 << 30,
            nice,
        };
        let mut beside = Vec::new();
        for _ in 0..7 {
            let load = [(); 2].map(|()| {
                let (isolation, input, heavy) =
                    (isolation.clone(), heavy_input.clone(), heavy.clone());
                tokio::spawn(async move { run(&isolation, &input, &heavy, heavy_share).await })
            });
            // Both heavy children are decoding by now (the 24 MP decode alone takes longer).
            tokio::time::sleep(Duration::from_millis(300)).await;
            beside.push(run(&isolation, &light_input, &light, light_share).await);
            for heavy in load {
                heavy.await.unwrap();
            }
        }
        let beside = timing::median(beside);
        println!(
            "| nice {nice}{} | {beside:.3} | {:.2}× |",
            if nice == HEAVY_NICE {
                ", as the worker runs them"
            } else {
                ""
            },
            beside / alone
        );
    }
}
