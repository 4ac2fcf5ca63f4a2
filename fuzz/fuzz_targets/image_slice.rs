//! Slice images and masks: `decode_slice` (both channel policies) and `decode_mask` on the same
//! bytes, under a TIFF and a PNG name (the name picks the decoder when the magic bytes don't).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tumorscan_data::image_io::{decode_mask, decode_slice, ChannelPolicy};
use tumorscan_data::volume::InputSlice;

fuzz_target!(|data: &[u8]| {
    for name in ["fuzz.tif", "fuzz.png"] {
        let path = Path::new(name);
        let _ = decode_slice(path, data, ChannelPolicy::Strict);
        let mask = decode_mask(path, data).ok().map(|m| m.data);
        if let Ok(img) = decode_slice(path, data, ChannelPolicy::Lenient) {
            assert_eq!(img.data.len(), img.width as usize * img.height as usize * 3);
            if let Some(m) = &mask {
                assert_eq!(m.len(), img.width as usize * img.height as usize);
            }
            let _ = InputSlice::from_image(name.into(), "fuzz".into(), 0, img, mask);
        }
    }
});
