//! `tumorscan dataset ...`: index, summary, show, split.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tumorscan_data::render::{grid, label, overlay};
use tumorscan_data::split::{name_some, shared_cases, split_patients};
use tumorscan_data::table::{slice_rows, summarize, write_atomic, write_csv};
use tumorscan_data::{load_dataset, LoadOptions, LoadedDataset};

/// Dataset subcommands.
#[derive(Subcommand)]
pub enum DatasetCommand {
    /// Write the slice table (patient, slice, image_path, mask_path, has_tumor, tumor_pixels) as CSV.
    #[command(after_help = "Example:\n  tumorscan dataset index kaggle_3m/ --out slices.csv")]
    Index {
        /// Dataset folder (kaggle_3m layout).
        dir: PathBuf,
        /// Output CSV.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Count patients, slices, tumour slices, institutions, missing sequences, tumour sizes.
    #[command(
        after_help = "Examples:\n  tumorscan dataset summary kaggle_3m/\n  tumorscan dataset summary kaggle_3m/ --json > summary.json"
    )]
    Summary {
        /// Dataset folder.
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Draw random slices (half with tumour) with the mask outlined, or one patient as a strip.
    #[command(
        after_help = "Examples:\n  tumorscan dataset show kaggle_3m/ --count 6 --seed 1 --out grid.png\n  tumorscan dataset show kaggle_3m/ --patient TCGA_CS_4941_19960909 --out strip.png"
    )]
    Show {
        /// Dataset folder.
        dir: PathBuf,
        /// Number of slices to draw (at least 1).
        #[arg(long, default_value_t = 6, value_parser = parse_count)]
        count: usize,
        /// Seed for the random choice.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Show this patient's slices (every slice with tumour, plus neighbours) as a strip.
        #[arg(long)]
        patient: Option<String>,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Patient-level folds stratified by institution and tumour burden.
    #[command(after_help = "Example:\n  tumorscan dataset split kaggle_3m/ --folds 5 --seed 42 --out folds.csv")]
    Split {
        /// Dataset folder.
        dir: PathBuf,
        /// Number of folds.
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output CSV.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
}

/// How to load a dataset.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// Do not read or write the decoded-slice cache (~/.cache/tumorscan, or $TUMORSCAN_CACHE).
    #[arg(long)]
    pub no_cache: bool,
}

/// Load with timing on stderr.
pub fn load(dir: &Path, args: &LoadArgs) -> Result<LoadedDataset> {
    let t = Instant::now();
    let opts = if args.no_cache {
        LoadOptions::default()
    } else {
        LoadOptions::with_default_cache()
    };
    let ds = load_dataset(dir, &opts)?;
    eprintln!(
        "loaded {} slices of {} patients in {:.2} s ({})",
        ds.slices().count(),
        ds.patients.len(),
        t.elapsed().as_secs_f64(),
        if ds.from_cache {
            "cache hit"
        } else if args.no_cache {
            "no cache"
        } else if ds.cached {
            "decoded, cached"
        } else {
            "decoded; the cache could not be written"
        }
    );
    for p in &ds.patients {
        let gap = p.missing_numbers();
        if !gap.is_empty() {
            let gap: Vec<String> = gap.iter().map(u32::to_string).collect();
            eprintln!(
                "note: {} lacks slice(s) {} between its first and last; the slices either side are read as neighbours",
                p.id,
                name_some(&gap)
            );
        }
    }
    Ok(ds)
}

/// Parse `--count`: a picture of no slices is no picture.
fn parse_count(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a slice count: a whole number of at least 1")),
    }
}

fn refuse_overwrite(path: &Path, force: bool) -> Result<()> {
    // symlink_metadata: a link to nothing is there too, and would be replaced.
    if std::fs::symlink_metadata(path).is_ok() && !force {
        bail!("{} exists; pass --force to overwrite it", path.display());
    }
    Ok(())
}

/// Run a dataset subcommand.
pub fn run(cmd: DatasetCommand) -> Result<()> {
    match cmd {
        DatasetCommand::Index { dir, out, force, load: l } => {
            refuse_overwrite(&out, force)?;
            let ds = load(&dir, &l)?;
            let rows = slice_rows(&ds);
            write_csv(&out, &rows).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} rows to {}", rows.len(), out.display());
        }
        DatasetCommand::Summary { dir, json, load: l } => {
            let s = summarize(&load(&dir, &l)?);
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("{s}");
            }
        }
        DatasetCommand::Show {
            dir,
            count,
            seed,
            patient,
            out,
            force,
            load: l,
        } => {
            refuse_overwrite(&out, force)?;
            let ds = load(&dir, &l)?;
            let img = match patient {
                Some(id) => patient_strip(&ds, &id)?,
                None => {
                    let (img, drawn) = random_grid(&ds, count, seed);
                    if drawn == 0 {
                        bail!("{} has no slices to draw", dir.display());
                    }
                    if drawn < count {
                        eprintln!("drew {drawn} slices, not {count}: {} has only {drawn}", dir.display());
                    }
                    img
                }
            };
            // Encoded first and renamed into place: an interrupted run leaves the old picture.
            let mut png = Vec::new();
            img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            write_atomic(&out, &png).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} ({}x{})", out.display(), img.width(), img.height());
        }
        DatasetCommand::Split {
            dir,
            folds,
            seed,
            out,
            force,
            load: l,
        } => {
            if folds < 2 {
                bail!("--folds must be at least 2");
            }
            refuse_overwrite(&out, force)?;
            let ds = load(&dir, &l)?;
            let shared = shared_cases(&ds);
            for (case, ids) in &shared {
                eprintln!("note: {} are one case ({case}): kept in one fold", name_some(ids));
            }
            let patients = ds.patients.len() - shared.iter().map(|(_, ids)| ids.len() - 1).sum::<usize>();
            if patients < folds {
                bail!("{patients} patients cannot fill {folds} folds");
            }
            let rows = split_patients(&ds, folds, seed);
            write_csv(&out, &rows).with_context(|| format!("writing {}", out.display()))?;
            println!("fold patients tumour-slices institutions");
            for f in 0..folds {
                let r: Vec<_> = rows.iter().filter(|r| r.fold == f).collect();
                let mut inst = std::collections::BTreeMap::new();
                for x in &r {
                    *inst.entry(x.institution.as_str()).or_insert(0) += 1;
                }
                let inst: Vec<String> = inst.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                println!(
                    "{f:>4} {:>8} {:>13} {}",
                    r.len(),
                    r.iter().map(|x| x.tumor_slices).sum::<usize>(),
                    inst.join(" ")
                );
            }
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}

fn tile(s: &tumorscan_data::Slice) -> image::RgbImage {
    let mut t = overlay(&s.image, s.width, s.height, Some(&s.mask), None);
    let short = s.patient.trim_start_matches("TCGA_");
    let short = short.rsplit_once('_').map(|(a, _)| a).unwrap_or(short);
    let what = if s.has_tumor() {
        format!("tumour {} px", s.tumor_pixels())
    } else {
        "no tumour".to_string()
    };
    label(&mut t, &[&format!("{short} #{}", s.number), &what]);
    t
}

/// A grid of up to `count` random slices, half with tumour where there are enough (the other
/// kind fills in where one runs short); returns it with the number of slices drawn.
fn random_grid(ds: &LoadedDataset, count: usize, seed: u64) -> (image::RgbImage, usize) {
    let chosen = choose_slices(ds, count, seed);
    let tiles: Vec<_> = chosen.iter().map(|s| tile(s)).collect();
    (grid(&tiles, (chosen.len() as f64).sqrt().ceil().max(3.0) as usize), chosen.len())
}

/// Up to `count` random slices for a grid, half with tumour where there are enough.
fn choose_slices(ds: &LoadedDataset, count: usize, seed: u64) -> Vec<&tumorscan_data::Slice> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut tumor, clean): (Vec<_>, Vec<_>) = ds.slices().partition(|s| s.has_tumor());
    // Tumour-free slices above or below the head are black panels that show nothing: draw
    // from those where FLAIR shows tissue (a tenth of the pixels above a dim level), unless
    // there are too few of them.
    let shows_tissue = |s: &&tumorscan_data::Slice| {
        let lit = s.image.chunks_exact(3).filter(|p| p[1] > 20).count();
        lit * 10 >= s.image.len() / 3
    };
    let (mut tissue, mut dark): (Vec<_>, Vec<_>) = clean.into_iter().partition(shows_tissue);
    tumor.shuffle(&mut rng);
    tissue.shuffle(&mut rng);
    dark.shuffle(&mut rng);
    // Dark slices only after every slice that shows tissue, so a large --count gets them all.
    let clean: Vec<_> = tissue.into_iter().chain(dark).collect();
    let want_clean = (count / 2).min(clean.len());
    let want_tumor = (count - want_clean).min(tumor.len());
    let want_clean = (count - want_tumor).min(clean.len());
    let mut chosen: Vec<_> = tumor.into_iter().take(want_tumor).collect();
    chosen.extend(clean.into_iter().take(want_clean));
    chosen
}

/// The patient named `id`, or the one patient whose name starts with it.
fn find_patient<'a>(ds: &'a LoadedDataset, id: &str) -> Result<&'a tumorscan_data::Patient> {
    if id.is_empty() {
        bail!("--patient is empty; give a patient folder name (or its start)");
    }
    if let Some(p) = ds.patient(id) {
        return Ok(p);
    }
    let matches: Vec<&tumorscan_data::Patient> = ds.patients.iter().filter(|p| p.id.starts_with(id)).collect();
    match matches.as_slice() {
        [p] => Ok(p),
        [] => {
            let ids: Vec<&str> = ds.patients.iter().map(|p| p.id.as_str()).collect();
            bail!("no patient '{id}' in {} (e.g. {})", ds.root.display(), name_some(&ids))
        }
        several => {
            let ids: Vec<&str> = several.iter().map(|p| p.id.as_str()).collect();
            bail!("'{id}' names {} patients: {}; give more of the name", ids.len(), name_some(&ids))
        }
    }
}

fn patient_strip(ds: &LoadedDataset, id: &str) -> Result<image::RgbImage> {
    let p = find_patient(ds, id)?;
    // Every slice would be too wide for 88-slice volumes: show tumour slices and one either side.
    let keep: Vec<usize> = (0..p.slices.len())
        .filter(|&i| (i.saturating_sub(1)..=(i + 1).min(p.slices.len() - 1)).any(|j| p.slices[j].has_tumor()))
        .collect();
    let keep = if keep.is_empty() {
        (0..p.slices.len()).step_by(p.slices.len().div_ceil(12).max(1)).collect()
    } else {
        keep
    };
    let tiles: Vec<_> = keep.iter().map(|&i| tile(&p.slices[i])).collect();
    Ok(grid(&tiles, tiles.len().min(10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--count` as large as the dataset drew only the slices that show tissue (55 of 60), and
    /// an empty or ambiguous `--patient` drew the first match.
    #[test]
    fn large_counts_draw_every_slice_and_patients_are_named_exactly() {
        let mut ds = tumorscan_data::phantom::phantom_dataset(3, 10, 32);
        for s in ds.patients[0].slices.iter_mut().filter(|s| !s.has_tumor()) {
            s.image.iter_mut().for_each(|v| *v = 0);
        }
        let all = ds.slices().count();
        assert_eq!(choose_slices(&ds, all, 1).len(), all);
        assert_eq!(choose_slices(&ds, all + 5, 1).len(), all);
        let first = ds.patients[0].id.clone();
        assert_eq!(find_patient(&ds, &first).unwrap().id, first);
        assert_eq!(find_patient(&ds, &first[..first.len() - 2]).unwrap().id, first);
        for bad in ["", "TCGA", "nobody"] {
            assert!(find_patient(&ds, bad).is_err(), "'{bad}'");
        }
    }

    /// Black tumour-free slices (above or below the head) are not drawn while others remain.
    #[test]
    fn grids_draw_tumour_free_slices_that_show_tissue() {
        let mut ds = tumorscan_data::phantom::phantom_dataset(4, 12, 32);
        let mut black = 0;
        for p in &mut ds.patients {
            for s in p.slices.iter_mut().filter(|s| !s.has_tumor()).step_by(2) {
                s.image.iter_mut().for_each(|v| *v = 0);
                black += 1;
            }
        }
        assert!(black > 0);
        for seed in 0..5 {
            let chosen = choose_slices(&ds, 6, seed);
            assert_eq!(chosen.len(), 6);
            assert!(chosen.iter().all(|s| s.image.iter().any(|&v| v > 20)), "seed {seed}");
        }
    }
}
