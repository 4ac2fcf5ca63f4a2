//! Bounded load run against a running `tumorscan serve` on loopback: N concurrent clients each
//! POST one slice (raw body) and time the answer. Prints throughput, p50/p99 latency and the
//! status codes; pass the server's PID to also read its peak RSS (VmHWM).
//!
//!   cargo run --release -p tumorscan-serve --example load -- 127.0.0.1:8080 samples/TCGA_CS_5393_19990606/TCGA_CS_5393_19990606_8.tif 200 [PID]

use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: load ADDR SLICE CONCURRENT [SERVER_PID]");
        std::process::exit(2);
    }
    let (addr, n): (String, usize) = (args[1].clone(), args[3].parse().unwrap_or(200));
    let body = std::fs::read(&args[2]).unwrap_or_else(|e| {
        eprintln!("{}: {e}", args[2]);
        std::process::exit(1)
    });
    let t0 = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (addr, body) = (addr.clone(), body.clone());
            std::thread::spawn(move || -> (u16, Duration) {
                let t = Instant::now();
                let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
                    return (0, t.elapsed());
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(300)));
                let head = format!(
                    "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/tiff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if s.write_all(head.as_bytes()).and_then(|_| s.write_all(&body)).is_err() {
                    return (0, t.elapsed());
                }
                let mut resp = Vec::new();
                let _ = s.read_to_end(&mut resp);
                let code = String::from_utf8_lossy(&resp[..resp.len().min(16)])
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                (code, t.elapsed())
            })
        })
        .collect();
    let mut results: Vec<(u16, Duration)> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    let wall = t0.elapsed().as_secs_f64();
    results.sort_by_key(|r| r.1);
    let q = |p: f64| results[((results.len() - 1) as f64 * p).round() as usize].1.as_secs_f64();
    let mut codes = std::collections::BTreeMap::new();
    for (c, _) in &results {
        *codes.entry(*c).or_insert(0) += 1;
    }
    let ok = codes.get(&200).copied().unwrap_or(0);
    println!(
        "requests {n} concurrent, wall {wall:.1} s, throughput {:.2} req/s (200 OK), p50 {:.2} s, p99 {:.2} s, codes {codes:?}",
        ok as f64 / wall,
        q(0.5),
        q(0.99)
    );
    if let Some(pid) = args.get(4) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!("server peak RSS: {}", l.trim_start_matches("VmHWM:").trim());
        }
    }
}
