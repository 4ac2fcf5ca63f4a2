//! DICOM files: `dicom::read_file_bytes`, then `dicom::assemble` on the image's slices (one, or
//! a multi-frame file's frames: the series checks and 8-bit scaling).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tumorscan_data::dicom;

fuzz_target!(|data: &[u8]| {
    if let Ok(dicom::DicomFile::Image(slices)) = dicom::read_file_bytes("fuzz.dcm", data) {
        let (rows, cols, n) = (slices[0].rows, slices[0].cols, slices.len());
        // The frames of one file may share a position (refused as echoes); one slice is a series.
        if let Ok(v) = dicom::assemble(Path::new("fuzz"), slices) {
            assert!(v.slices.len() <= n);
            assert!(v.slices.iter().all(|s| s.rgb.len() == rows * cols * 3));
        } else {
            assert!(n > 1, "one slice is a series");
        }
    }
});
