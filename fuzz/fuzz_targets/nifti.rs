//! NIfTI-1 volumes, plain or gzipped (detected by magic bytes): `nifti::read_bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = tumorscan_data::nifti::read_bytes("fuzz.nii.gz", data) {
        let (nx, ny, nz) = v.nifti.as_ref().expect("NIfTI geometry").dims;
        assert_eq!(v.slices.len(), nz);
        for s in &v.slices {
            assert_eq!((s.width as usize, s.height as usize), (nx, ny));
            assert_eq!(s.rgb.len(), nx * ny * 3);
        }
    }
});
