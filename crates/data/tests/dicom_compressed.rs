//! Compressed DICOM pixel data, decoded by tumorscan and compared with what pydicom (with GDCM
//! and pylibjpeg) decodes the same files to. The fixtures are a synthetic phantom written by
//! `interop/dicom-compressed/make_fixtures.py`; each read one has its pydicom pixels beside it.

use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use tumorscan_data::dicom::{assemble, read_file_bytes, read_one_bytes, DicomFile};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom-compressed")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(format!("{name}.dcm"))).unwrap()
}

/// pydicom's pixels for a fixture.
fn expected(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixtures().join(format!("{name}.pixels"))).unwrap();
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
        .collect()
}

/// Largest difference between tumorscan's and pydicom's decoding of each fixture: lossless
/// syntaxes (and JPEG 2000, decoded by ports of one library) exactly, baseline JPEG's inverse
/// DCT to within 1 (libjpeg and jpeg-decoder round differently); JPEG-LS (CharLS wrote it)
/// exactly, near-lossless too. DCMTK's (a fill byte before JPEG-LS's end marker; 12 bits under
/// HighBit 15 coded as whole 16-bit words, read without HighBit's shift as 0 tumour pixels)
/// give the phantom's stored values.
const READ: [(&str, f32); 20] = [
    ("rle-u12", 0.0),
    ("rle-u8", 0.0),
    ("rle-s16", 0.0),
    ("jpeg-lossless-sv1-u12", 0.0),
    ("jpeg-lossless-sv1-s16", 0.0),
    ("jpeg-lossless-u16", 0.0),
    ("jpeg-baseline-u8", 1.0),
    ("jpeg2000-lossless-u12", 0.0),
    ("jpeg2000-lossless-s16", 0.0),
    ("jpeg2000-u12", 0.0),
    ("jpeg2000-lossless-u12-two-fragments", 0.0),
    ("htj2k-lossless-u12", 0.0),
    ("htj2k-lossless-rpcl-s16", 0.0),
    ("htj2k-u12", 0.0),
    ("jpeg-ls-lossless-u12", 0.0),
    ("jpeg-ls-lossless-s16", 0.0),
    ("jpeg-ls-near-lossless-u12", 0.0),
    ("jpeg-ls-lossless-u12-dcmtk-fill", 0.0),
    ("jpeg-ls-lossless-u12-high-bit-15-dcmtk", 0.0),
    ("jpeg-lossless-sv1-u12-high-bit-15-dcmtk", 0.0),
];

#[test]
fn compressed_slices_decode_as_pydicom_decodes_them() {
    for (name, tolerance) in READ {
        let slice = read_one_bytes(name, &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((slice.rows, slice.cols), (40, 56), "{name}");
        assert_eq!(slice.high_bits, 0, "{name}: bits above BitsStored");
        let want = expected(name);
        assert_eq!(slice.values.len(), want.len(), "{name}");
        let worst = slice.values.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst <= tolerance, "{name}: differs from pydicom by up to {worst}");
        // The signed phantoms go below zero; the others do not.
        let min = slice.values.iter().copied().fold(f32::MAX, f32::min);
        assert_eq!(min < 0.0, name.ends_with("s16"), "{name}: min {min}");
        // Lossy compression is noted; where the syntax allows both and the file does not say
        // (LossyImageCompression), that it may be.
        let note = slice.lossy.unwrap_or_default();
        match name {
            "jpeg-baseline-u8" => assert!(note.contains("lossy JPEG Baseline"), "{name}: {note}"),
            // Irreversible wavelets: lossy, whatever the label allows.
            "jpeg2000-u12" | "htj2k-u12" => assert!(note.starts_with("stored with lossy"), "{name}: {note}"),
            // NEAR 3: lossy, as the syntax allows.
            "jpeg-ls-near-lossless-u12" => {
                assert_eq!(note, "stored with lossy JPEG-LS Near-Lossless compression", "{name}")
            }
            _ => assert_eq!(note, "", "{name}"),
        }
    }
    // A reversible stream under a syntax that allows loss may have been truncated: said so.
    let relabelled = relabel(
        &fixture("jpeg2000-lossless-u12"),
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
    );
    let slice = read_one_bytes("a/IM1.dcm", &relabelled).unwrap();
    assert_eq!(slice.values, expected("jpeg2000-lossless-u12"));
    let v = assemble(Path::new("a"), vec![slice]).unwrap();
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("1 of 1 slices stored with JPEG 2000 compression, which may be lossy")),
        "{:?}",
        v.notes
    );
    // A JPEG-LS stream says exactly whether it is lossless (NEAR 0): under the near-lossless
    // label, a lossless one gets no note.
    let relabelled = relabel(&fixture("jpeg-ls-lossless-u12"), "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81");
    let slice = read_one_bytes("IM1.dcm", &relabelled).unwrap();
    assert_eq!((slice.values, slice.lossy), (expected("jpeg-ls-lossless-u12"), None));
}

/// A multi-frame fixture's frames, checked against pydicom's pixels.
fn frames_as_pydicom_reads_them(name: &str, frames: usize) -> Vec<tumorscan_data::dicom::DicomSlice> {
    let DicomFile::Image(slices) = read_file_bytes(name, &fixture(name)).unwrap() else {
        panic!("{name}: not an image")
    };
    assert_eq!(slices.len(), frames, "{name}");
    let values: Vec<f32> = slices.iter().flat_map(|f| f.values.iter().copied()).collect();
    assert_eq!(values, expected(name), "{name}");
    slices
}

/// A multi-frame file with an Extended Offset Table (its OV elements threw dicom-rs 0.8's
/// parser off: "element (C73E,2333) declares 3129642548 bytes") reads frame by frame.
#[test]
fn an_extended_offset_table_does_not_stop_a_multi_frame_file() {
    frames_as_pydicom_reads_them("jpeg2000-lossless-u12-3-frames-eot", 3);
}

/// Frames split over several fragments with no offset table are told apart by the fragments
/// that open a stream (SOI), as DCMTK tells them apart (pydicom looks for each frame's end marker).
#[test]
fn frames_without_an_offset_table_are_found_by_their_start() {
    frames_as_pydicom_reads_them("jpeg-ls-3-frames-6-fragments-no-table", 3);
}

/// Each frame's own stream says whether it was coded lossily: of two JPEG-LS frames under the
/// lossless label, only the near-lossless one is noted.
#[test]
fn a_lossy_frame_is_noted_alone() {
    let frames = frames_as_pydicom_reads_them("jpeg-ls-2-frames-second-near", 2);
    let notes: Vec<_> = frames.iter().map(|f| f.lossy.clone()).collect();
    assert_eq!(notes[0], None);
    assert!(
        notes[1]
            .as_deref()
            .unwrap_or_default()
            .contains("coded lossily (near-lossless JPEG-LS)"),
        "{notes:?}"
    );
}

/// A few kB of compressed frames cannot claim gigabytes of samples: frames of the largest side
/// read, two of them, are refused before any is decoded.
#[test]
fn compressed_frames_are_decoded_within_a_pixel_budget() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let bytes = fixture("jpeg-ls-2-frames-second-near");
    let mut obj = dicom_object::OpenFileOptions::new().from_reader(&bytes[128..]).unwrap();
    for tag in [tags::ROWS, tags::COLUMNS] {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(8192u16)));
    }
    let mut edited = Vec::new();
    obj.write_all(&mut edited).unwrap();
    let e = read_file_bytes("big.dcm", &edited).unwrap_err();
    assert!(
        e.contains("2 compressed frames of 8192x8192 hold more pixels than are decoded from one file"),
        "{e}"
    );
}

/// A file with its transfer syntax UID replaced by another of the same length.
fn relabel(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let at = bytes.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
    [&bytes[..at], to.as_bytes(), &bytes[at + from.len()..]].concat()
}

/// Lossy streams under a lossless label (baseline DCT JPEG as JPEG Lossless SV1, an
/// irreversible JPEG 2000 wavelet as JPEG 2000 Lossless, near-lossless JPEG-LS as JPEG-LS
/// Lossless) decoded with no word of it.
#[test]
fn lossy_streams_under_lossless_labels_are_said() {
    for (name, from, to, how) in [
        ("jpeg-baseline-u8", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "DCT JPEG"),
        (
            "jpeg2000-u12",
            "1.2.840.10008.1.2.4.91",
            "1.2.840.10008.1.2.4.90",
            "irreversible 9/7 wavelet",
        ),
        (
            "jpeg-ls-near-lossless-u12",
            "1.2.840.10008.1.2.4.81",
            "1.2.840.10008.1.2.4.80",
            "near-lossless JPEG-LS",
        ),
    ] {
        let slice = read_one_bytes(name, &relabel(&fixture(name), from, to)).unwrap();
        let note = slice.lossy.unwrap_or_default();
        assert!(note.contains(&format!("coded lossily ({how})")), "{name}: {note}");
    }
}

#[test]
fn syntaxes_not_read_are_named_with_the_way_out() {
    let name = "jpeg-extended-u12";
    let e = read_one_bytes(name, &fixture(name)).unwrap_err();
    assert!(e.contains("JPEG Extended") && e.contains("gdcmconv --raw"), "{name}: {e}");
}

/// A stream whose size disagrees with Rows / Columns is refused, not misread into the
/// data set's grid; a cut stream is an error, not a panic.
#[test]
fn streams_that_disagree_with_the_data_set_are_refused() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    for name in [
        "jpeg-lossless-sv1-u12",
        "jpeg2000-lossless-u12",
        "rle-u12",
        "jpeg-baseline-u8",
        "jpeg-ls-lossless-u12",
    ] {
        let bytes = fixture(name);
        let mut obj = dicom_object::OpenFileOptions::new().from_reader(&bytes[128..]).unwrap();
        obj.put(DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(39u16)));
        let mut edited = Vec::new();
        obj.write_all(&mut edited).unwrap();
        let e = read_one_bytes(name, &edited).unwrap_err();
        let said = match name.starts_with("rle") {
            // RLE has no size of its own: its planes hold more samples than 39 rows.
            true => e.contains("or more samples but Rows x Columns are 2184"),
            false => e.contains("56x40") && e.contains("56x39"),
        };
        assert!(said, "{name}: {e}");
        obj.put(DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(41u16)));
        let mut edited = Vec::new();
        obj.write_all(&mut edited).unwrap();
        assert!(read_one_bytes(name, &edited).is_err(), "{name} read with Rows 41");
        for cut in [40, 400, 1000] {
            assert!(read_one_bytes(name, &bytes[..bytes.len() - cut]).is_err(), "{name} cut by {cut}");
        }
    }
}

/// Random bytes changed anywhere in the compressed files, and in multi-frame files (the
/// phantom Enhanced MR, three JPEG 2000 frames with an Extended Offset Table, three JPEG-LS
/// frames in six fragments with none): each is
/// read or refused, its frames assembled or refused, and the process survives (the decoders'
/// own panics are caught and reported).
#[test]
fn mutated_compressed_files_never_bring_the_reader_down() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(60);
    let (mut read, mut refused) = (0, 0);
    // More per file with DICOM_MUTATIONS=N (a long run before a release).
    let per_file = std::env::var("DICOM_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let frame = |v: u16| vec![v; 16 * 16];
    let multi_frame = tumorscan_data::phantom::dicom_multiframe(1, "1.2.3", 16, &[(0.0, frame(10)), (5.0, frame(20)), (10.0, frame(30))]);
    let bases: Vec<(&str, Vec<u8>)> = READ
        .iter()
        .map(|(name, _)| (*name, fixture(name)))
        .chain([
            ("enhanced-mr", multi_frame),
            ("jpeg2000-lossless-u12-3-frames-eot", fixture("jpeg2000-lossless-u12-3-frames-eot")),
            (
                "jpeg-ls-3-frames-6-fragments-no-table",
                fixture("jpeg-ls-3-frames-6-fragments-no-table"),
            ),
        ])
        .collect();
    for (name, base) in bases {
        for _ in 0..per_file {
            let mut f = base.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(128..f.len());
                f[i] = rng.random();
            }
            match read_file_bytes(name, &f) {
                Ok(DicomFile::Image(slices)) => {
                    assert!(slices.iter().all(|s| s.values.len() == s.rows * s.cols));
                    if let Ok(v) = assemble(Path::new("m"), slices) {
                        assert!(v.slices.iter().all(|s| s.rgb.len() == (s.width * s.height * 3) as usize));
                    }
                    read += 1
                }
                _ => refused += 1,
            }
        }
    }
    assert!(read > 100 && refused > 100, "read {read}, refused {refused}");
}
