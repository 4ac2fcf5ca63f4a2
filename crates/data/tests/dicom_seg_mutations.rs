//! Hostile headers through the whole DICOM-to-SEG path: phantom series with random bytes
//! changed are read, assembled, checked and, where a SEG can refer to them, written and read
//! back. Nothing may panic, and every SEG written must read back with one frame per slice.

use rand::{Rng, SeedableRng};
use std::path::Path;
use tumorscan_data::dicom::{assemble, read_file_bytes, DicomFile};
use tumorscan_data::dicom_seg::{check_series, seg_file_bytes, SegmentationSource};

#[test]
fn mutated_series_are_refused_or_written_never_panic() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(59);
    let base: Vec<Vec<u8>> = (1..=3)
        .map(|n| tumorscan_data::phantom::dicom_slice(n, "1.2.3", 8, "1.2.840.10008.1.2.1", ["0.5", "0.7"]))
        .collect();
    let source = SegmentationSource {
        software: "tumorscan test".into(),
        algorithm: "phantom".into(),
    };
    let (mut written, mut refused) = (0, 0);
    for _ in 0..5000 {
        let mut files = base.clone();
        let f = &mut files[rng.random_range(0..3)];
        // Digits, signs and value separators reach the numeric strings (positions, spacing).
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(128..f.len());
            f[i] = match rng.random_range(0..4) {
                0 => rng.random(),
                1 => b'0' + rng.random_range(0..10),
                2 => b'\\',
                _ => b'-',
            };
        }
        let raws: Vec<_> = files
            .iter()
            .enumerate()
            .flat_map(|(i, b)| match read_file_bytes(&format!("IM{i}.dcm"), b) {
                Ok(DicomFile::Image(slices)) => slices,
                _ => Vec::new(),
            })
            .collect();
        if raws.is_empty() {
            continue;
        }
        let Ok(v) = assemble(Path::new("s"), raws) else {
            continue;
        };
        let series = v.dicom.as_ref().expect("a DICOM volume carries its series");
        if check_series(series, &v.slices).is_err() {
            refused += 1;
            continue;
        }
        let masks: Vec<Vec<u8>> = v.slices.iter().map(|s| vec![1u8; (s.width * s.height) as usize]).collect();
        let bytes = seg_file_bytes(series, &v.slices, &masks, &source).expect("checked series");
        let back = tumorscan_data::phantom::read_seg(&bytes).expect("a written SEG reads back");
        assert_eq!(back.masks, masks);
        written += 1;
    }
    assert!(written > 1000 && refused > 50, "written {written}, refused {refused}");
}
