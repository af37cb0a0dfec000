//! Prints the transcript benchmark's figures for each member count given (default 8 16 64), one
//! JSON object per line: `cargo run --release -p stockade-attest --example transcript_bench -- 64`.
//! The `stockade bench transcript --members M` command calls the same function.

use stockade_attest::transcript::bench_transcript;

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![8, 16, 64]
    } else {
        counts
    };
    for members in counts {
        match bench_transcript(members) {
            Ok(figures) => println!("{}", figures.to_json()),
            Err(e) => {
                eprintln!("transcript bench for {members} members failed: {e}");
                std::process::exit(1);
            }
        }
    }
}
