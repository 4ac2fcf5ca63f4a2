//! `tumorscan`: find brain tumours in MRI slices and outline them.

mod bench_cmd;
mod compare_cmd;
mod dataset_cmd;
mod evaluate_cmd;
mod pool_cmd;
mod predict_cmd;
mod serve_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  # Detect and outline tumours in the bundled sample slices with the built-in models
  tumorscan predict samples/ --out results/
  # Look at a dataset (Kaggle kaggle_3m layout, .tif or .png)
  tumorscan dataset summary kaggle_3m/
  tumorscan dataset show kaggle_3m/ --count 6 --seed 1 --out grid.png
  # Patient-level folds, then train and evaluate the segmentation model
  tumorscan dataset split kaggle_3m/ --folds 5 --seed 42 --out folds.csv
  tumorscan train segment --data kaggle_3m/ --folds folds.csv --val-fold 1 --test-fold 0 --out runs/seg
  tumorscan evaluate segment --model runs/seg/best --data kaggle_3m/ --folds folds.csv --fold 0 --out eval/seg";

/// Find brain tumours in MRI slices (detection) and outline them (segmentation).
#[derive(Parser)]
#[command(name = "tumorscan", version, about, after_help = EXAMPLES)]
struct Cli {
    /// Worker threads for the computation (default: one per core, or RAYON_NUM_THREADS).
    /// Two trainings side by side on a 2-core machine run faster with `--threads 1` each.
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

/// Most `--threads`.
const MAX_THREADS: usize = 1024;

/// Size the global rayon pool, which the CPU backend's kernels and the data pipeline share.
fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let Some(n) = threads else {
        // rayon reads it itself, past --threads' limit.
        if let Some(n) = std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
            anyhow::ensure!(n <= MAX_THREADS, "RAYON_NUM_THREADS={n}: at most {MAX_THREADS}");
        }
        return Ok(());
    };
    anyhow::ensure!(n > 0, "--threads must be at least 1");
    // --threads 100000 spent ten minutes starting threads before it was killed.
    anyhow::ensure!(n <= MAX_THREADS, "--threads {n}: at most {MAX_THREADS}");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    // Measured: --threads 1000 on 2 cores made a 1.6 s predict take 69 s.
    if n > 4 * cores {
        eprintln!("note: --threads {n} on {cores} core(s) is slower than one thread per core, not faster");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| anyhow::anyhow!("cannot start {n} threads: {e}"))
}

#[derive(Subcommand)]
enum Command {
    /// Describe, list, draw and split a dataset (each reads and checks every file).
    #[command(subcommand)]
    Dataset(dataset_cmd::DatasetCommand),
    /// Train the segmentation or the detection model.
    // Boxed: its options make it several times larger than the other commands.
    #[command(subcommand)]
    Train(Box<train_cmd::TrainCommand>),
    /// Evaluate a model on a held-out fold.
    #[command(subcommand)]
    Evaluate(evaluate_cmd::EvaluateCommand),
    /// Detect and outline tumours in slices, folders or NIfTI volumes (the main job).
    Predict(predict_cmd::PredictArgs),
    /// Merge the predictions.csv files of --shard runs.
    Merge(predict_cmd::MergeArgs),
    /// HTTP API and web viewer.
    Serve(serve_cmd::ServeArgs),
    /// Time training steps and inference of the shipped architectures (see bench/compare).
    Bench(bench_cmd::BenchArgs),
}

fn main() {
    tumorscan_model::tune_allocator();
    match run(Cli::parse()) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", message(&e));
            std::process::exit(1);
        }
    }
}

/// The error and its causes on one line, as anyhow's `{:#}`, but without a cause that the text
/// before it already quotes (errors that print their source, such as "x.csv: cannot read: No
/// such file", would otherwise repeat it).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.ends_with(&part) {
            text = format!("{text}: {part}");
        }
    }
    text
}

/// Runs the chosen command; the exit code on success.
fn run(cli: Cli) -> anyhow::Result<i32> {
    set_threads(cli.threads)?;
    match cli.command {
        Command::Dataset(c) => dataset_cmd::run(c).map(|_| 0),
        Command::Train(c) => train_cmd::run(*c).map(|_| 0),
        Command::Evaluate(c) => evaluate_cmd::run(c).map(|_| 0),
        Command::Predict(a) => predict_cmd::run(a),
        Command::Merge(a) => predict_cmd::merge(a),
        Command::Serve(a) => serve_cmd::run(a).map(|_| 0),
        Command::Bench(a) => bench_cmd::run(a).map(|_| 0),
    }
}

#[cfg(test)]
mod tests {
    use super::message;

    #[test]
    fn message_does_not_repeat_a_cause_the_text_quotes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(tumorscan_data::DataError::Io {
            path: "x.csv".into(),
            source: io,
        })
        .context("reading the folds");
        assert_eq!(message(&e), "reading the folds: x.csv: cannot read: No such file");
    }

    #[test]
    fn message_keeps_causes_it_does_not_quote() {
        let e = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(message(&e), "outer: middle: inner");
    }
}
