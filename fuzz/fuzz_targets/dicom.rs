//! DICOM files: `dicom::read_one_bytes`, then `dicom::assemble` on what it returns (the series
//! checks and 8-bit scaling).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tumorscan_data::dicom;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = dicom::read_one_bytes("fuzz.dcm", data) {
        let (rows, cols) = (s.rows, s.cols);
        let v = dicom::assemble(Path::new("fuzz"), vec![s]).expect("one slice is a series");
        assert_eq!(v.slices[0].rgb.len(), rows * cols * 3);
    }
});
