//! DICOM series input (crate `dicom-object`): every `.dcm` image file of a folder is one slice of
//! a series, ordered by InstanceNumber (by ImagePositionPatient along the slice normal where the
//! numbers are missing, repeat or do not run along the positions). Files that are not images
//! (segmentations, reports, ...; [`DicomFile::NotImage`]) and copies of a file (the same
//! SOPInstanceUID, position and pixels) are passed over with a note; some slices sharing a
//! position (echoes) and slices in another plane (a localiser) are refused, slices all at one
//! placeholder position left to their numbers. A multi-frame file (Enhanced MR, Legacy
//! Converted Enhanced MR) gives one slice per frame, placed and rescaled by its functional
//! groups (`dicom_frames.rs`). Pixel data is uncompressed (explicit or implicit VR little
//! endian) or compressed as RLE Lossless, JPEG Baseline / Lossless, JPEG 2000, HTJ2K or JPEG-LS
//! (`dicom_pixels.rs`); other transfer syntaxes (12-bit JPEG, ...) get a clear error asking for
//! decompression first (e.g. `gdcmconv --raw`), and lossily compressed slices a note.
//! Monochrome slices are taken as FLAIR in all three channels and
//! scaled to 8 bits by the series' 0.5..99.5 percentile range (per-volume z-scoring follows).
//! Mixed series, sizes or pixel formats in one folder are an error.
//!
//! Hostile files: `dicom-object` sizes its buffers by the lengths elements declare, and builds
//! nested sequences recursively. So before the object is built, the file meta group and the
//! data set are walked with the same parser and refused when an element or item declares more
//! bytes than the whole file holds, or sequences nest deeper than [`MAX_NESTING`]; the
//! transfer syntax is checked before the data set is parsed at all.

use crate::dicom_frames::{int, text};
use crate::volume::{DicomSeries, InputSlice, SourceImage, Volume};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, FileMetaTable, OpenFileOptions};
use dicom_parser::dataset::{DataSetReader, DataToken};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::path::{Path, PathBuf};

/// Largest Rows / Columns accepted, as for slice images.
pub const MAX_SIDE: usize = crate::image_io::MAX_SIDE as usize;
/// Deepest nesting of sequences and items accepted (each sequence level counts twice: the
/// sequence and its item).
pub const MAX_NESTING: usize = 32;
/// Longest run of item delimitation items outside any sequence accepted (see
/// [`check_stray_delimiters`]).
const MAX_STRAY_DELIMITERS: usize = 64;

/// One decoded DICOM slice, before it is scaled with the rest of its series.
#[derive(Debug, Clone)]
pub struct DicomSlice {
    /// Where it came from (a file path, or the name given to [`read_one_bytes`]).
    pub path: PathBuf,
    /// InstanceNumber, when present.
    pub number: Option<i64>,
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Rescaled values (RescaleSlope / RescaleIntercept applied), `rows * cols`, row-major.
    pub values: Vec<f32>,
    /// SeriesInstanceUID (empty when absent).
    pub series: String,
    /// Pixel spacing (column, row) in mm.
    pub spacing: Option<(f64, f64)>,
    /// ImagePositionPatient (mm), when present and finite.
    pub position: Option<[f64; 3]>,
    /// ImageOrientationPatient (row and column direction cosines), when present and finite.
    pub orientation: Option<[f64; 6]>,
    /// SliceThickness in mm.
    pub thickness: Option<f64>,
    /// Whether the stored values were MONOCHROME1 and are negated in `values`.
    pub inverted: bool,
    /// How the pixels lost, or may have lost, information to compression (the transfer syntax,
    /// the stream's coding, LossyImageCompression "01"), as a note; None when they did not.
    pub lossy: Option<String>,
    /// Samples with bits set above BitsStored, dropped as DCMTK drops them (overlay bits; or a
    /// BitsStored that understates the data, which then reads wrong).
    pub high_bits: usize,
    /// What a derived object (a DICOM Segmentation) needs to refer to this slice.
    pub reference: SliceReference,
}

/// A slice's identifiers and the patient and study attributes a derived object copies (empty
/// strings where absent).
#[derive(Debug, Clone, Default)]
pub struct SliceReference {
    /// SOPClassUID (else the file meta's MediaStorageSOPClassUID).
    pub sop_class: String,
    /// SOPInstanceUID (else the file meta's MediaStorageSOPInstanceUID).
    pub sop_instance: String,
    /// StudyInstanceUID.
    pub study: String,
    /// FrameOfReferenceUID.
    pub frame_of_reference: String,
    /// The values of [`crate::dicom_seg::COPIED`]'s attributes, in order.
    pub copied: Vec<String>,
    /// What could not be copied faithfully (their character set), when anything.
    pub charset_note: Option<String>,
    /// The frame's number (from 1) in a multi-frame image; None for a single-frame image.
    pub frame: Option<u32>,
}

/// One DICOM file: an image, or another kind of object that series readers pass over.
#[derive(Debug, Clone)]
pub enum DicomFile {
    /// An image: its slice, or the slices of a multi-frame image, one per frame in frame order.
    Image(Vec<DicomSlice>),
    /// Not an image (a segmentation, report, spectroscopy or private data object): what it is.
    NotImage(String),
}

impl DicomFile {
    /// The note for a file passed over as not an image.
    pub fn skipped_note(name: &str, what: &str) -> String {
        format!("skipped {name}: {what}, not an image")
    }
}

/// Read one DICOM file from memory, telling image slices from other objects; `name` stands for
/// the file path in labels and messages.
pub fn read_file_bytes(name: &str, bytes: &[u8]) -> Result<DicomFile, String> {
    read_file(Path::new(name), bytes)
}

/// Read a file of any image size.
fn read_file(path: &Path, bytes: &[u8]) -> Result<DicomFile, String> {
    read_file_at(path, bytes, |_| Ok::<(), std::convert::Infallible>(())).unwrap_or_else(|never| match never {})
}

/// An image's size as its data set states it, before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// NumberOfFrames (1 for a single-frame image).
    pub frames: usize,
}

/// [`read_file_bytes`], asking `admit(size)` before the pixel data is decoded: a compressed
/// frame can hold far more pixels than its bytes, and a multi-frame file many slices, so a
/// server sizes it first. The outer error is `admit`'s refusal, the inner one the file's.
pub fn read_file_bytes_admitting<E>(
    name: &str,
    bytes: &[u8],
    admit: impl FnOnce(ImageSize) -> Result<(), E>,
) -> Result<Result<DicomFile, String>, E> {
    read_file_at(Path::new(name), bytes, admit)
}

/// Read one single-frame DICOM image slice from memory (a multi-frame image or another kind of
/// object is an error); `name` stands for the file path in labels and messages.
pub fn read_one_bytes(name: &str, bytes: &[u8]) -> Result<DicomSlice, String> {
    match read_file_bytes(name, bytes)? {
        DicomFile::Image(mut slices) if slices.len() == 1 => Ok(slices.remove(0)),
        DicomFile::Image(slices) => Err(format!("a multi-frame image of {} frames, not one slice", slices.len())),
        DicomFile::NotImage(what) => Err(format!("{what}, not an image")),
    }
}

/// Explicit VR little endian element header at the start of `b`: (tag, length, header size).
fn explicit_le_header(b: &[u8]) -> Option<((u16, u16), u32, usize)> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let tag = (u16_at(0)?, u16_at(2)?);
    if tag.0 == 0xFFFE {
        return Some((tag, u32_at(4)?, 8));
    }
    // The same VR rule as dicom-encoding's explicit VR little endian decoder.
    use dicom_core::VR;
    let vr = VR::from_binary([*b.get(4)?, *b.get(5)?]).unwrap_or(VR::UN);
    match vr {
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OW | VR::SQ | VR::UC | VR::UR | VR::UT | VR::UN => Some((tag, u32_at(8)?, 12)),
        _ => Some((tag, u16_at(6)? as u32, 8)),
    }
}

/// Walk the file meta group (starting at "DICM") as `FileMetaTable::from_reader` does, refusing
/// element lengths beyond the end of the file: that reader zero-fills a buffer of the declared
/// length before reading into it.
fn check_meta(b: &[u8]) -> Result<(), String> {
    let bad = |what: &str| Err(format!("not a readable DICOM file: {what}"));
    if !b.starts_with(b"DICM") {
        return bad("no DICM marker at byte 128 (or 0)");
    }
    let mut pos = 4;
    match explicit_le_header(&b[pos..]) {
        Some(((2, 0), 4, n)) if b.len() >= pos + n + 4 => pos += n,
        _ => return bad("file meta group does not start with its group length"),
    }
    let group_length = u32::from_le_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]]);
    pos += 4;
    let mut read = 0u32;
    while read < group_length {
        let Some((tag, len, n)) = explicit_le_header(&b[pos..]) else {
            return bad("file meta group ends early");
        };
        if len == u32::MAX || len as usize > b.len() - pos - n {
            return bad(&format!(
                "file meta element ({:04X},{:04X}) declares {len} bytes, more than the file holds",
                tag.0, tag.1
            ));
        }
        pos += n + len as usize;
        read = read.saturating_add(n as u32).saturating_add(len);
    }
    Ok(())
}

/// Walk the data set with the parser `dicom-object` uses, refusing (before any value is read)
/// lengths beyond the size of the file and nesting deeper than [`MAX_NESTING`].
fn check_dataset(data: &[u8], ts_uid: &str, file_len: usize) -> Result<(), String> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| format!("unsupported transfer syntax {ts_uid}"))?;
    let reader = DataSetReader::new_with_ts(data, ts).map_err(|e| format!("not a readable DICOM file: {e}"))?;
    let too_long = |len: dicom_core::Length| len.get().is_some_and(|l| l as usize > file_len);
    let mut depth = 0usize;
    for token in reader {
        match token.map_err(|e| format!("not a readable DICOM file: {e}"))? {
            DataToken::ElementHeader(h) if too_long(h.len) => {
                return Err(format!(
                    "not a readable DICOM file: element {} declares {} bytes, more than the file holds",
                    h.tag, h.len
                ))
            }
            DataToken::ItemStart { len } if too_long(len) => {
                return Err(format!(
                    "not a readable DICOM file: an item declares {len} bytes, more than the file holds"
                ))
            }
            DataToken::SequenceStart { .. } | DataToken::PixelSequenceStart | DataToken::ItemStart { .. } => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "not a readable DICOM file: sequences nest deeper than {MAX_NESTING} levels"
                    ));
                }
            }
            DataToken::SequenceEnd | DataToken::ItemEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// `dicom-parser` skips an item delimitation item (FFFE,E00D) met outside any sequence by
/// calling itself again, so a long run of them overflows the stack (found by review; a
/// 1.6 MB file of them aborts the process). Refuse any run of more than
/// [`MAX_STRAY_DELIMITERS`] consecutive ones, wherever it starts; real files have none.
fn check_stray_delimiters(data: &[u8]) -> Result<(), String> {
    const DELIMITER: [u8; 4] = [0xFE, 0xFF, 0x0D, 0xE0];
    let at = |i: usize| data.get(i..i + 4) == Some(&DELIMITER[..]);
    for (start, &byte) in data.iter().enumerate() {
        if byte == 0xFE && at(start) && (start < 8 || !at(start - 8)) {
            let run = (0..).take_while(|k| at(start + 8 * k)).count();
            if run > MAX_STRAY_DELIMITERS {
                return Err(format!(
                    "not a readable DICOM file: {run} consecutive item delimiters at byte {start}"
                ));
            }
        }
    }
    Ok(())
}

/// A parsed file: the object, its transfer syntax as read and its Extended Offset Table's offsets
/// (empty when it has none).
type Parsed = (DefaultDicomObject, Syntax, Vec<u64>);

/// How a transfer syntax stores pixel data: its encoding, name and whether it loses information.
type Syntax = (crate::dicom_pixels::Encoding, &'static str, crate::dicom_pixels::Loss);

/// Parse the file (with its guards) into an object; Ok(Err(what)) for a known non-image SOP class
/// (from the file meta, before the data set is parsed).
fn parse(bytes: &[u8]) -> Result<Result<Parsed, &'static str>, String> {
    let start = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        128
    } else {
        0
    };
    let file = &bytes[start..];
    check_meta(file)?;
    let mut rest = file;
    let meta = FileMetaTable::from_reader(&mut rest).map_err(|e| format!("not a readable DICOM file: {e}"))?;
    if let Some(what) = non_image_class(meta.media_storage_sop_class_uid().trim_end_matches(['\0', ' '])) {
        return Ok(Err(what));
    }
    let ts = meta.transfer_syntax().trim_end_matches(['\0', ' ']).to_string();
    let syntax = crate::dicom_pixels::encoding(&ts)?;
    let meta_len = file.len() - rest.len();
    let (file, extended_offsets): (std::borrow::Cow<[u8]>, _) = match without_extended_offset_table(rest) {
        Some((data, offsets)) => ([&file[..meta_len], &data].concat().into(), offsets),
        None => (file.into(), Vec::new()),
    };
    let rest = &file[meta_len..];
    check_stray_delimiters(rest)?;
    check_dataset(rest, &ts, bytes.len()).map_err(|e| with_long_vr_hint(e, rest))?;
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(&file[..])
        .map(|obj| Ok((obj, syntax, extended_offsets)))
        .map_err(|e| format!("not a readable DICOM file: {e}"))
}

/// `error` with the likely cause added when the data set holds an explicit VR element of VR
/// OV, SV or UV (64-bit values): `dicom-rs` 0.8 reads their lengths from 2 bytes instead of 4,
/// so the rest of the file parses as garbage ("element (C73E,2333) declares 3129642548 bytes").
fn with_long_vr_hint(error: String, data: &[u8]) -> String {
    let long_vr = data
        .windows(4)
        .any(|w| matches!(&w[..2], b"OV" | b"SV" | b"UV") && w[2..] == [0, 0]);
    match long_vr {
        true => format!(
            "{error} (it seems to hold an element of VR OV, SV or UV, which this reader cannot parse: rewrite the file without it, e.g. with dcmodify or gdcmconv)"
        ),
        false => error,
    }
}

/// The data set without its Extended Offset Table (7FE0,0001) and its lengths (7FE0,0002), when
/// it has them, as explicit VR little endian elements right before the Pixel Data: `dicom-rs`
/// 0.8 reads an OV element's length from 2 bytes instead of 4 (its list of long-length VRs
/// lacks OV), so the rest of such a file parsed as garbage. The elements are cut out and the
/// table's offsets returned (they tell frames apart as a Basic Offset Table does).
fn without_extended_offset_table(data: &[u8]) -> Option<(Vec<u8>, Vec<u64>)> {
    const TABLE: [u8; 8] = [0xE0, 0x7F, 0x01, 0x00, b'O', b'V', 0, 0];
    const LENGTHS: [u8; 8] = [0xE0, 0x7F, 0x02, 0x00, b'O', b'V', 0, 0];
    const PIXEL_DATA: [u8; 4] = [0xE0, 0x7F, 0x10, 0x00];
    let element_end = |at: usize, header: &[u8; 8]| -> Option<usize> {
        (data.get(at..at + 8)? == header).then_some(())?;
        let len = u32::from_le_bytes(data.get(at + 8..at + 12)?.try_into().ok()?) as usize;
        at.checked_add(12 + len).filter(|end| *end <= data.len())
    };
    // The first place where the three headers follow each other (the bytes alone can occur
    // inside another element's value).
    let (start, lengths, pixels) = data.windows(8).enumerate().filter(|(_, w)| *w == TABLE).find_map(|(start, _)| {
        let lengths = element_end(start, &TABLE)?;
        let pixels = element_end(lengths, &LENGTHS)?;
        (data.get(pixels..pixels + 4)? == PIXEL_DATA).then_some((start, lengths, pixels))
    })?;
    let offsets = data[start + 12..lengths]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Some(([&data[..start], &data[pixels..]].concat(), offsets))
}

fn read_file_at<E>(path: &Path, bytes: &[u8], admit: impl FnOnce(ImageSize) -> Result<(), E>) -> Result<Result<DicomFile, String>, E> {
    let (obj, syntax, extended_offsets) = match parse(bytes) {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(what)) => return Ok(Ok(DicomFile::NotImage(what.to_string()))),
        Err(e) => return Ok(Err(e)),
    };
    if let Some(size) = image_size(&obj) {
        admit(size)?;
    }
    Ok(read_image(path, obj, syntax, &extended_offsets))
}

/// Rows, Columns and NumberOfFrames, when present and positive (frames 1 when absent).
fn image_size(obj: &DefaultDicomObject) -> Option<ImageSize> {
    let positive = |tag| usize::try_from(int(obj, tag)?).ok().filter(|n| *n > 0);
    let frames = match obj.element(tags::NUMBER_OF_FRAMES) {
        Ok(_) => positive(tags::NUMBER_OF_FRAMES)?,
        Err(_) => 1,
    };
    Some(ImageSize {
        rows: positive(tags::ROWS)?,
        cols: positive(tags::COLUMNS)?,
        frames,
    })
}

/// Most frames read from one multi-frame file (a whole-brain stack is a few hundred).
pub const MAX_FRAMES: usize = 4096;

fn read_image(path: &Path, obj: DefaultDicomObject, syntax: Syntax, extended_offsets: &[u64]) -> Result<DicomFile, String> {
    if obj.element(tags::PIXEL_DATA).is_err() && obj.element(tags::ROWS).is_err() {
        return Ok(DicomFile::NotImage("a DICOM object without pixel data".to_string()));
    }
    // A multi-frame IOD (Enhanced MR, legacy-converted, ...) has NumberOfFrames, even for one frame.
    let multi_frame = obj.element(tags::NUMBER_OF_FRAMES).is_ok();
    let frames = int(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1);
    if !(1..=MAX_FRAMES as i64).contains(&frames) {
        return Err(format!("unsupported NumberOfFrames {frames} (1 to {MAX_FRAMES} are read)"));
    }
    let frames = frames as usize;
    let rows = int(&obj, tags::ROWS).ok_or("no Rows")?;
    let cols = int(&obj, tags::COLUMNS).ok_or("no Columns")?;
    let bits = int(&obj, tags::BITS_ALLOCATED).unwrap_or(16);
    let stored = int(&obj, tags::BITS_STORED).filter(|b| (1..=bits).contains(b)).unwrap_or(bits);
    // HighBit places the stored bits in the word (DCMTK honours it; read from bit 0, data in the
    // high bits came out as noise); a HighBit that cannot hold them is ignored.
    let high_bit = int(&obj, tags::HIGH_BIT)
        .filter(|h| *h + 1 >= stored && *h < bits)
        .unwrap_or(stored - 1);
    let samples = int(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let signed = int(&obj, tags::PIXEL_REPRESENTATION).unwrap_or(0) == 1;
    if rows <= 0 || cols <= 0 || rows as usize > MAX_SIDE || cols as usize > MAX_SIDE {
        return Err(format!("unsupported image size {cols}x{rows}"));
    }
    let (rows, cols) = (rows as usize, cols as usize);
    if samples != 1 || !(bits == 8 || bits == 16) {
        return Err(format!(
            "unsupported pixel format ({samples} samples, {bits} bits): expected monochrome 8 or 16 bit"
        ));
    }
    // MONOCHROME1 shows low values white: negated, the percentile scaling below shows it as
    // MONOCHROME2 (read as stored, the image was a negative and the tumour vanished).
    let photometric = text(&obj, tags::PHOTOMETRIC_INTERPRETATION)
        .map(|s| s.to_ascii_uppercase())
        .unwrap_or_else(|| "MONOCHROME2".into());
    let sign = match photometric.as_str() {
        "MONOCHROME1" => -1.0,
        "MONOCHROME2" => 1.0,
        other => {
            return Err(format!(
                "unsupported PhotometricInterpretation {other}: expected MONOCHROME1 or MONOCHROME2"
            ))
        }
    };
    let geometry = crate::dicom_frames::geometry(&obj, frames, multi_frame)?;
    let (encoding, ts_name, loss) = syntax;
    let format = crate::dicom_pixels::Format {
        rows,
        cols,
        bits: bits as u16,
        stored: stored as u16,
        shift: (high_bit + 1 - stored) as u16,
        signed,
    };
    let stored_frames = crate::dicom_pixels::stored_frames(&obj, encoding, format, frames, extended_offsets)?;
    let flag = text(&obj, tags::LOSSY_IMAGE_COMPRESSION);
    let (copied, charset_note) = copied_attributes(&obj);
    let reference = SliceReference {
        sop_class: text(&obj, tags::SOP_CLASS_UID)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| obj.meta().media_storage_sop_class_uid().trim_end_matches('\0').to_string()),
        sop_instance: text(&obj, tags::SOP_INSTANCE_UID)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| obj.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_string()),
        study: text(&obj, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        frame_of_reference: text(&obj, tags::FRAME_OF_REFERENCE_UID).unwrap_or_default(),
        copied,
        charset_note,
        frame: None,
    };
    let series = text(&obj, tags::SERIES_INSTANCE_UID).unwrap_or_default();
    let number = int(&obj, tags::INSTANCE_NUMBER);
    let slices = stored_frames
        .into_iter()
        .zip(geometry)
        .enumerate()
        .map(|(k, (frame, g))| {
            let (slope, intercept) = (g.rescale.0 as f32, g.rescale.1 as f32);
            DicomSlice {
                path: path.to_path_buf(),
                position: g.position,
                orientation: g.orientation,
                // Frames are numbered within their file.
                number: if multi_frame { Some(k as i64 + 1) } else { number },
                rows,
                cols,
                values: frame.values.into_iter().map(|v| sign * (v * slope + intercept)).collect(),
                series: series.clone(),
                spacing: g.spacing,
                thickness: g.thickness,
                inverted: sign < 0.0,
                // Each frame's own stream says whether it was coded lossily.
                lossy: crate::dicom_pixels::lossy_note(loss, ts_name, flag.as_deref(), frame.lossy),
                high_bits: frame.high_bits,
                reference: SliceReference {
                    frame: multi_frame.then_some(k as u32 + 1),
                    ..reference.clone()
                },
            }
        })
        .collect();
    Ok(DicomFile::Image(slices))
}

/// The values of [`crate::dicom_seg::COPIED`]'s attributes as a derived object can carry them
/// (written as UTF-8), and the note when some could not be. Text in a character set that
/// `dicom-rs` decodes (one of the single-byte sets, UTF-8, GB18030) is copied as read; under
/// ISO 2022 code extensions (several character sets) or one it does not know (GBK), only values
/// in plain ASCII are, and of a person's name its alphabetic group (before '='), so that no
/// garbled name goes out under the patient's ID.
fn copied_attributes(obj: &DefaultDicomObject) -> (Vec<String>, Option<String>) {
    let charset = text(obj, tags::SPECIFIC_CHARACTER_SET).unwrap_or_default();
    // Japanese multi-byte sets are code extensions: alone (not valid DICOM) they decode wrongly.
    let decoded = !charset.contains('\\')
        && !charset.contains("IR 87")
        && !charset.contains("IR 159")
        && (charset.is_empty() || dicom_encoding::text::SpecificCharacterSet::from_code(&charset).is_some());
    let plain = |v: &str| v.is_ascii() && !v.contains('\u{1b}');
    let mut dropped = Vec::new();
    let values = crate::dicom_seg::COPIED
        .iter()
        .map(|(tag, vr, name)| {
            let value = text(obj, *tag).unwrap_or_default();
            if decoded || plain(&value) {
                return value;
            }
            let alphabetic = value.split('=').next().unwrap_or_default();
            if *vr == dicom_core::VR::PN && !alphabetic.is_empty() && plain(alphabetic) {
                dropped.push(format!("{name} as its alphabetic group only"));
                return alphabetic.to_string();
            }
            dropped.push(format!("{name} left empty"));
            String::new()
        })
        .collect();
    let note = (!dropped.is_empty()).then(|| {
        format!(
            "in the DICOM Segmentation {}: the series' character set \"{charset}\" is not one this reader decodes",
            dropped.join(", ")
        )
    });
    (values, note)
}

/// DICOM objects that are not images, by SOP class (the class or a class under it): a series
/// folder, as PACS and viewers export it, may hold them beside its slices (a segmentation such
/// as `predict`'s own `<volume>_seg.dcm`, a report, a presentation state). Objects of other
/// classes without pixel data (spectroscopy, vendors' private data) are told by that.
const NOT_IMAGES: [(&str, &str); 9] = [
    (crate::dicom_seg::SEG_SOP_CLASS, "a DICOM Segmentation"),
    (
        "1.2.840.10008.5.1.4.1.1.66",
        "a DICOM segmentation, registration or raw data object",
    ),
    ("1.2.840.10008.5.1.4.1.1.88", "a DICOM structured report"),
    ("1.2.840.10008.5.1.4.1.1.11", "a DICOM presentation state"),
    ("1.2.840.10008.5.1.4.1.1.481", "a DICOM radiotherapy object"),
    ("1.2.840.10008.5.1.4.1.1.104", "an encapsulated document"),
    ("1.2.840.10008.5.1.4.1.1.9", "a DICOM waveform"),
    ("1.2.840.10008.5.1.4.1.1.4.2", "an MR spectroscopy object"),
    ("1.2.840.10008.5.1.4.38", "a hanging protocol"),
];

/// What a SOP class is when it is a known kind of non-image object.
fn non_image_class(class: &str) -> Option<&'static str> {
    NOT_IMAGES
        .iter()
        .find(|(uid, _)| class == *uid || class.strip_prefix(uid).is_some_and(|rest| rest.starts_with('.')))
        .map(|(_, what)| *what)
}

/// What a folder of `.dcm` files holds.
#[derive(Debug)]
pub enum SeriesRead {
    /// One series (files that are not images passed over, said in its notes).
    Volume(Box<Volume>),
    /// No images at all (a study's SEG or report series): the notes of what was passed over.
    NoImages(Vec<String>),
}

/// Read the `.dcm` files of one folder as a series; files that are not images are passed over.
pub fn read_series(dir: &Path, files: &[PathBuf]) -> Result<SeriesRead, String> {
    let mut slices = Vec::new();
    let mut skipped = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
        match read_file(f, &bytes).map_err(|e| format!("{}: {e}", f.display()))? {
            DicomFile::Image(image) => slices.extend(image),
            DicomFile::NotImage(what) => skipped.push((f, what)),
        }
    }
    if slices.is_empty() && !skipped.is_empty() {
        let notes = skipped
            .iter()
            .map(|(f, what)| DicomFile::skipped_note(&f.display().to_string(), what));
        return Ok(SeriesRead::NoImages(notes.collect()));
    }
    let mut volume = assemble(dir, slices)?;
    // The volume's notes are told with its folder: the file's own name is enough.
    volume
        .notes
        .extend(skipped.iter().map(|(f, what)| DicomFile::skipped_note(&file_name(f), what)));
    Ok(SeriesRead::Volume(Box::new(volume)))
}

/// A path's file name, for notes told with their folder.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().to_string())
}

/// `name` with `#frame` for a frame of a multi-frame file (as a NIfTI volume's slice is named).
fn with_frame(name: String, frame: Option<u32>) -> String {
    match frame {
        Some(k) => format!("{name}#{k}"),
        None => name,
    }
}

/// A slice's file name, with `#frame` for a frame of a multi-frame file.
fn slice_name(r: &DicomSlice) -> String {
    with_frame(file_name(&r.path), r.reference.frame)
}

/// The normal of the plane whose rows and columns run along ImageOrientationPatient `o`.
pub(crate) fn plane_normal(o: &[f64; 6]) -> [f64; 3] {
    [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]]
}

/// How far position `p` lies along `normal` (mm).
pub(crate) fn along(normal: [f64; 3], p: [f64; 3]) -> f64 {
    p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2]
}

/// The normal of a slice's plane; without ImageOrientationPatient, an axial stack's.
fn normal_of(r: &DicomSlice) -> [f64; 3] {
    r.orientation.as_ref().map_or([0.0, 0.0, 1.0], plane_normal)
}

/// The normal of a series' plane: that of the first slice that has an orientation (the others
/// agree, [`check_one_plane`]); an axial stack's when none has. Taken from the first slice
/// alone, one file without ImageOrientationPatient made a coronal series "axial", all its
/// slices one depth, and its interleaved numbering scrambled the volume.
fn series_normal(raws: &[DicomSlice]) -> [f64; 3] {
    raws.iter().find(|r| r.orientation.is_some()).map_or([0.0, 0.0, 1.0], normal_of)
}

/// A slice's position along `normal` (mm; 0 without ImagePositionPatient).
fn depth(normal: [f64; 3], r: &DicomSlice) -> f64 {
    r.position.map_or(0.0, |p| along(normal, p))
}

/// The distance between neighbouring slice centres (their median, mm) of slices in order, when
/// every slice has a position: what a slice's voxels span in depth. SliceThickness is the
/// excited slab, which series with gaps or overlaps space otherwise.
fn slice_spacing(raws: &[DicomSlice]) -> Option<f64> {
    if raws.len() < 2 || raws.iter().any(|r| r.position.is_none()) {
        return None;
    }
    let normal = series_normal(raws);
    let mut steps: Vec<f64> = raws
        .windows(2)
        .map(|w| (depth(normal, &w[1]) - depth(normal, &w[0])).abs())
        .collect();
    steps.sort_by(f64::total_cmp);
    Some(steps[steps.len() / 2]).filter(|s| *s > 0.0 && s.is_finite())
}

/// What a series' plane means for the model, trained on axial slices shown anterior up with
/// the patient's right on the left: a series is shown as stored (DICOM viewers do the same), so
/// another plane, or axial rows and columns that run otherwise, is said.
fn plane_note(r: &DicomSlice) -> Option<String> {
    let o = r.orientation?;
    let n = normal_of(r);
    let main = (0..3).max_by(|&a, &b| n[a].abs().total_cmp(&n[b].abs()))?;
    let plane = match main {
        0 => "sagittal",
        1 => "coronal",
        // Patient coordinates are LPS: along a row x should grow (to the patient's left), down
        // a column y (to posterior).
        _ => {
            let turned = if o[0].abs() < 0.5 || o[4].abs() < 0.5 {
                "turned 90 degrees (rows and columns swapped)"
            } else {
                match (o[0] > 0.0, o[4] > 0.0) {
                    (true, true) => return None,
                    (false, false) => "upside down (rotated 180 degrees)",
                    (true, false) => "upside down (flipped top to bottom)",
                    (false, true) => "mirrored left to right",
                }
            };
            return Some(format!(
                "its axial slices are {turned} against the slices the model was trained on (ImageOrientationPatient): its masks may be less accurate"
            ));
        }
    };
    Some(format!(
        "a {plane} series (ImageOrientationPatient): the model was trained on axial slices, so its masks here are not reliable"
    ))
}

/// Put a series' slices in order: by InstanceNumber when every slice has its own and the
/// numbers run along the positions (either way); otherwise along the slice normal by
/// ImagePositionPatient when every slice has one (as `dcm2niix` orders them); otherwise by
/// InstanceNumber and file name. Returns a note when the numbers did not decide.
fn order_slices(raws: &mut [DicomSlice]) -> Result<Option<String>, String> {
    let mut numbers: Vec<i64> = raws.iter().filter_map(|r| r.number).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let normal = series_normal(raws);
    // File names in natural order (IM2 before IM10), as `predict` orders 2D slices.
    let by_name = |a: &DicomSlice, b: &DicomSlice| crate::layout::natural_cmp(&a.path.to_string_lossy(), &b.path.to_string_lossy());
    let monotonic = |d: &[f64]| d.windows(2).all(|w| w[1] >= w[0]) || d.windows(2).all(|w| w[1] <= w[0]);
    // Some slices without a position (a frame lacking its Plane Position group) cannot be placed
    // by it: all keep their numbers' order, which must agree with the others' positions (shuffled
    // frames with one unplaced scrambled the volume silently).
    let missing = raws.iter().filter(|r| r.position.is_none()).count();
    let n = raws.len();
    if missing > 0 && missing < n {
        raws.sort_by_key(|r| r.number);
        // Strictly along the stack: equal steps would let two volumes (echoes) through.
        let placed: Vec<f64> = raws.iter().filter(|r| r.position.is_some()).map(|r| depth(normal, r)).collect();
        let strictly = placed.windows(2).all(|w| w[1] > w[0]) || placed.windows(2).all(|w| w[1] < w[0]);
        if numbers.len() != n || !strictly {
            return Err(format!(
                "{missing} of {n} slices have no ImagePositionPatient, and the InstanceNumbers (or frame numbers) do not place them: they are missing, repeat, or do not follow the others' positions"
            ));
        }
        return Ok(Some(format!(
            "slices ordered by InstanceNumber (or frame number): {missing} of {n} have no ImagePositionPatient (the others' positions follow that order)"
        )));
    }
    // Positions order the slices only when they differ (not a converter's placeholder).
    let positioned = missing == 0 && raws.iter().any(|r| (depth(normal, r) - depth(normal, &raws[0])).abs() >= 1e-3);
    if numbers.len() == n {
        raws.sort_by_key(|r| r.number);
        // Numbers that do not run along the positions (interleaved or shuffled numbering) would
        // scramble the volume: its neighbours, 3D clean-up and spacing.
        if positioned {
            let d: Vec<f64> = raws.iter().map(|r| depth(normal, r)).collect();
            if !monotonic(&d) {
                raws.sort_by(|a, b| depth(normal, a).total_cmp(&depth(normal, b)));
                return Ok(Some(
                    "slices ordered by ImagePositionPatient: their InstanceNumbers (or frame numbers) do not follow their positions".into(),
                ));
            }
        }
        return Ok(None);
    }
    if positioned {
        raws.sort_by(|a, b| depth(normal, a).total_cmp(&depth(normal, b)).then_with(|| by_name(a, b)));
        return Ok(Some(
            "slices ordered by ImagePositionPatient (InstanceNumber missing or repeated)".into(),
        ));
    }
    raws.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| by_name(a, b)));
    Ok(Some(
        "slices ordered by file name: InstanceNumber missing or repeated and no ImagePositionPatient".into(),
    ))
}

/// Refuse slices that do not lie in the plane, and the in-plane directions, the rest share (a
/// localiser stored with the stack): stacked into the volume, one changed its neighbours' masks
/// and the volume without a word.
fn check_one_plane(raws: &[DicomSlice]) -> Result<(), String> {
    let oriented: Vec<(&DicomSlice, [f64; 6])> = raws.iter().filter_map(|r| Some((r, r.orientation?))).collect();
    let same = |a: &[f64; 6], b: &[f64; 6]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 0.01);
    // The stack's plane is the one most slices share.
    let Some((_, common)) = oriented
        .iter()
        .max_by_key(|(_, o)| oriented.iter().filter(|(_, p)| same(o, p)).count())
    else {
        return Ok(());
    };
    let odd: Vec<String> = oriented
        .iter()
        .filter(|(_, o)| !same(o, common))
        .map(|(r, _)| slice_name(r))
        .collect();
    if odd.is_empty() {
        return Ok(());
    }
    let them = if odd.len() == 1 { "it" } else { "them" };
    Err(format!(
        "{} of {} slices ({}{}) are not oriented as the rest (another plane, or turned within it: ImageOrientationPatient): a localiser? Remove {them} from the series, or predict {them} apart",
        odd.len(),
        raws.len(),
        odd.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        if odd.len() > 3 { ", ..." } else { "" },
    ))
}

/// Refuse a series in which some slices share a position (several echoes, b-values or time
/// points in one series): its volume would hold two images in one place. Slices all at one
/// position carry no usable positions (a converter's placeholder) and are left to their numbers.
fn check_distinct_positions(raws: &[DicomSlice]) -> Result<(), String> {
    // Among the slices that have a position (one without let two echoes through).
    let placed: Vec<&DicomSlice> = raws.iter().filter(|r| r.position.is_some()).collect();
    if placed.len() < 2 {
        return Ok(());
    }
    let normal = series_normal(raws);
    let mut at: Vec<(f64, &DicomSlice)> = placed.iter().map(|r| (depth(normal, r), *r)).collect();
    at.sort_by(|a, b| a.0.total_cmp(&b.0));
    let same = |w: &[(f64, &DicomSlice)]| (w[1].0 - w[0].0).abs() < 1e-3;
    let shared = at.windows(2).filter(|w| same(w)).count();
    if shared == 0 || shared == placed.len() - 1 {
        return Ok(());
    }
    let w = at.windows(2).find(|w| same(w)).unwrap_or(&at[..2]);
    Err(format!(
        "{} and {} lie at the same position ({shared} pair{} of slices do): a series of several volumes (echoes, b-values, time points)? Split it into one volume each, e.g. with dcm2niix (which writes one NIfTI file per echo), and predict those",
        slice_name(w[0].1),
        slice_name(w[1].1),
        if shared == 1 { "" } else { "s" }
    ))
}

/// Check that slices form one series and turn them into a volume (in the order the module docs
/// describe), scaled to 8 bits by the series' percentile range.
pub fn assemble(dir: &Path, mut raws: Vec<DicomSlice>) -> Result<Volume, String> {
    let first = raws.first().ok_or("no DICOM files")?;
    if let Some(odd) = raws.iter().find(|r| r.series != first.series) {
        return Err(format!(
            "inconsistent DICOM series: {} belongs to series {} but {} to {}",
            odd.path.display(),
            odd.series,
            first.path.display(),
            first.series
        ));
    }
    if let Some(odd) = raws.iter().find(|r| (r.rows, r.cols) != (first.rows, first.cols)) {
        return Err(format!(
            "inconsistent DICOM series: {} is {}x{} but {} is {}x{}",
            odd.path.display(),
            odd.cols,
            odd.rows,
            first.path.display(),
            first.cols,
            first.rows
        ));
    }
    if let Some(odd) = raws.iter().find(|r| r.values.is_empty() || r.values.len() != r.rows * r.cols) {
        return Err(format!("{}: pixel values do not match the image size", odd.path.display()));
    }
    // A copy of a file (the same SOPInstanceUID, position and pixels) is one slice, not two.
    // Different images under one UID (some converters give every slice one) stay slices; the
    // SEG, which refers to slices by UID, then refuses them.
    let mut keep = Vec::with_capacity(raws.len());
    let mut copies = Vec::new();
    let mut copied: Vec<(&PathBuf, &PathBuf, usize)> = Vec::new();
    for (i, r) in raws.iter().enumerate() {
        let copy_of = raws[..i].iter().zip(&keep).find(|(k, kept)| {
            **kept
                && !r.reference.sop_instance.is_empty()
                && k.reference.sop_instance == r.reference.sop_instance
                && k.position == r.position
                && k.values == r.values
        });
        if let Some((k, _)) = copy_of {
            // A copied multi-frame file is one note, not one per frame (its frames come together).
            let frames_of_another = r.reference.frame.is_some() && r.path != k.path;
            match copied.last_mut() {
                Some((c, o, n)) if frames_of_another && *c == &r.path && *o == &k.path => *n += 1,
                _ if frames_of_another => copied.push((&r.path, &k.path, 1)),
                _ => copies.push(format!("skipped {}: a copy of {}", slice_name(r), slice_name(k))),
            }
        }
        keep.push(copy_of.is_none());
    }
    copies.extend(copied.iter().map(|(c, o, n)| {
        format!(
            "skipped {}: {n} frame{}, copies of {}'s",
            file_name(c),
            if *n == 1 { "" } else { "s" },
            file_name(o)
        )
    }));
    let mut keep = keep.into_iter();
    raws.retain(|_| keep.next().unwrap_or(true));
    check_one_plane(&raws)?;
    check_distinct_positions(&raws)?;
    let first = &raws[0];
    let thickness = first.thickness;
    let order_note = order_slices(&mut raws)?;
    let spacing = slice_spacing(&raws);
    // Volumes (mL) count each slice as deep as the step to the next, as NIfTI's pixdim[3] does.
    let spacing_note = match (spacing, thickness) {
        (Some(step), Some(t)) if (step - t).abs() > 0.05 * t => Some(format!(
            "slices are {step:.2} mm apart (ImagePositionPatient) but {t:.2} mm thick (SliceThickness): volumes use the spacing"
        )),
        _ => None,
    };
    let plane_note = plane_note(&raws[0]);
    let placeholder_note = (raws.len() > 1 && raws.iter().all(|r| r.position.is_some() && r.position == raws[0].position)).then(|| {
        "every slice has the same ImagePositionPatient, so positions cannot order them (InstanceNumbers, or names, do); if they are echoes or time points of one slice rather than a stack, predict them apart".to_string()
    });
    let charset_note = raws[0].reference.charset_note.clone();
    // The networks learnt from losslessly stored slices; lossy compression can move the mask.
    // Each way of loss counted apart (a series can mix lossy and possibly lossy slices).
    let mut ways: Vec<(&str, usize)> = Vec::new();
    for how in raws.iter().filter_map(|r| r.lossy.as_deref()) {
        match ways.iter_mut().find(|(w, _)| *w == how) {
            Some((_, n)) => *n += 1,
            None => ways.push((how, 1)),
        }
    }
    // Bits above BitsStored are dropped, as DCMTK drops them (overlay planes); where BitsStored
    // understates the data instead, the slice reads wrong, so it is said.
    let high = raws.iter().filter(|r| r.high_bits > 0).count();
    let high_bits_note = (high > 0).then(|| {
        format!(
            "{high} of {} slices have samples with bits set above BitsStored, dropped as DCMTK drops them (overlay bits); if BitsStored understates the data, those slices read wrong: check them in a viewer",
            raws.len()
        )
    });
    let lossy_note = (!ways.is_empty()).then(|| {
        let counts: Vec<String> = ways.iter().map(|(how, n)| format!("{n} of {} slices {how}", raws.len())).collect();
        format!(
            "{}: the built-in model learnt from losslessly stored images, so masks may differ from the original's",
            counts.join("; ")
        )
    });
    let series = DicomSeries {
        study_uid: raws[0].reference.study.clone(),
        series_uid: raws[0].series.clone(),
        frame_of_reference_uid: raws[0].reference.frame_of_reference.clone(),
        copied: raws[0].reference.copied.clone(),
        instances: raws
            .iter()
            .map(|r| SourceImage {
                class: r.reference.sop_class.clone(),
                instance: r.reference.sop_instance.clone(),
                frame: r.reference.frame,
            })
            .collect(),
        thickness_mm: thickness,
        spacing_mm: spacing,
    };
    let photometric_note = raws[0]
        .inverted
        .then(|| "MONOCHROME1 (low values shown white) inverted to read".to_string());
    let mut all: Vec<f32> = raws.iter().flat_map(|r| r.values.iter().copied().step_by(7)).collect();
    all.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
    let (lo, hi) = (q(0.005), q(0.995));
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    let slices = raws
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let rgb = r
                .values
                .iter()
                .flat_map(|&v| [((v - lo) * scale).clamp(0.0, 255.0).round() as u8; 3])
                .collect();
            let stem = r
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| format!("slice{i}"));
            InputSlice {
                label: with_frame(r.path.display().to_string(), r.reference.frame),
                stem: match r.reference.frame {
                    Some(k) => format!("{stem}_f{k:03}"),
                    None => stem,
                },
                // The slice's place in the volume; InstanceNumber where that decided it.
                number: match (&order_note, r.number) {
                    (None, Some(n)) => n.clamp(0, u32::MAX as i64) as u32,
                    _ => i as u32 + 1,
                },
                width: r.cols as u32,
                height: r.rows as u32,
                rgb,
                spacing_mm: r.spacing,
                position_mm: r.position,
                orientation: r.orientation,
                truth: None,
                notes: std::iter::once("monochrome DICOM used as FLAIR in all three channels".to_string())
                    .chain(order_note.clone())
                    .chain(spacing_note.clone())
                    .chain(photometric_note.clone())
                    .chain(plane_note.clone())
                    .chain(r.lossy.clone())
                    .chain((r.high_bits > 0).then(|| format!("{} samples with bits set above BitsStored dropped", r.high_bits)))
                    .collect(),
            }
        })
        .collect();
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "dicom".into());
    Ok(Volume {
        id,
        source: dir.to_path_buf(),
        slices,
        nifti: None,
        dicom: Some(Box::new(series)),
        slice_thickness_mm: spacing.or(thickness),
        notes: plane_note
            .into_iter()
            .chain(placeholder_note)
            .chain(charset_note)
            .chain(lossy_note)
            .chain(high_bits_note)
            .chain(copies)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small 16-bit monochrome slice, as a file's bytes.
    fn dicom(number: u32, series: &str, size: u16, ts: &str) -> Vec<u8> {
        crate::phantom::dicom_slice(number, series, size, ts, ["0.5", "0.7"])
    }

    const EXPLICIT: &str = "1.2.840.10008.1.2.1";

    #[test]
    fn slices_read_from_bytes_and_files_and_assemble_in_order() {
        let a = read_one_bytes("s/IM2.dcm", &dicom(2, "1.2.3", 4, EXPLICIT)).unwrap();
        assert_eq!((a.rows, a.cols, a.number, a.series.as_str()), (4, 4, Some(2), "1.2.3"));
        assert_eq!(a.spacing, Some((0.7, 0.5)));
        assert_eq!(a.position, Some([0.0, 0.0, 10.0]));
        assert_eq!(a.thickness, Some(5.0));
        assert_eq!(a.values[1], 240.0);
        // Implicit VR, and a file without the 128-byte preamble.
        let implicit = dicom(1, "1.2.3", 4, "1.2.840.10008.1.2");
        let b = read_one_bytes("s/IM1.dcm", &implicit).unwrap();
        let c = read_one_bytes("s/IM3.dcm", &dicom(3, "1.2.3", 4, EXPLICIT)[128..]).unwrap();
        let v = assemble(Path::new("s"), vec![a, c, b]).unwrap();
        assert_eq!(v.id, "s");
        assert_eq!(v.slice_thickness_mm, Some(5.0));
        let stems: Vec<&str> = v.slices.iter().map(|s| s.stem.as_str()).collect();
        assert_eq!(stems, ["IM1", "IM2", "IM3"]);
        assert_eq!(v.slices[0].rgb.len(), 4 * 4 * 3);

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("IM9.dcm");
        std::fs::write(&f, &implicit).unwrap();
        let SeriesRead::Volume(v) = read_series(dir.path(), std::slice::from_ref(&f)).unwrap() else {
            panic!("no volume")
        };
        assert_eq!(v.slices[0].label, f.display().to_string());
    }

    /// A MONOCHROME1 series was read as a negative (the tumour vanished), and volumes counted
    /// SliceThickness where the slices were spaced otherwise (half the volume with 5 mm gaps).
    #[test]
    fn monochrome1_is_inverted_and_volumes_use_the_slice_spacing() {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        let with_photometric = |bytes: &[u8], value: &str| {
            let mut obj = parse(bytes).unwrap().unwrap().0;
            obj.put(DataElement::new(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                PrimitiveValue::from(value),
            ));
            let mut out = Vec::new();
            obj.write_all(&mut out).unwrap();
            out
        };
        let plain = dicom(1, "1.2.3", 4, EXPLICIT);
        let m2 = read_one_bytes("m2.dcm", &with_photometric(&plain, "MONOCHROME2")).unwrap();
        let m1 = read_one_bytes("m1.dcm", &with_photometric(&plain, "MONOCHROME1 ")).unwrap();
        assert!(!m2.inverted && m1.inverted);
        assert_eq!(m1.values, m2.values.iter().map(|v| -v).collect::<Vec<_>>());
        let v = assemble(Path::new("s"), vec![m1]).unwrap();
        assert!(
            v.slices[0].notes.iter().any(|n| n.contains("MONOCHROME1")),
            "{:?}",
            v.slices[0].notes
        );
        let err = read_one_bytes("p.dcm", &with_photometric(&plain, "PALETTE COLOR")).unwrap_err();
        assert!(err.contains("PhotometricInterpretation"), "{err}");

        // Three slices 5 mm apart (the phantom's positions) but 2.5 mm thick.
        let mut raws: Vec<DicomSlice> = (1..=3)
            .map(|n| read_one_bytes(&format!("IM{n}.dcm"), &dicom(n, "1.2.3", 4, EXPLICIT)).unwrap())
            .collect();
        raws.iter_mut().for_each(|r| r.thickness = Some(2.5));
        let v = assemble(Path::new("s"), raws.clone()).unwrap();
        assert_eq!(v.slice_thickness_mm, Some(5.0));
        assert!(
            v.slices[0].notes.iter().any(|n| n.contains("5.00 mm apart")),
            "{:?}",
            v.slices[0].notes
        );
        // Without positions, SliceThickness is all there is.
        raws.iter_mut().for_each(|r| r.position = None);
        assert_eq!(assemble(Path::new("s"), raws).unwrap().slice_thickness_mm, Some(2.5));
    }

    /// A sagittal series was segmented as if axial, without a word.
    #[test]
    fn series_in_other_planes_or_upside_down_are_said() {
        let oriented = |o: [f64; 6]| {
            let mut s = read_one_bytes("IM1.dcm", &dicom(1, "1.2.3", 4, EXPLICIT)).unwrap();
            s.orientation = Some(o);
            assemble(Path::new("s"), vec![s]).unwrap().notes
        };
        assert!(oriented([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).is_empty(), "axial, anterior up");
        // Slightly oblique axial is still axial.
        assert!(oriented([1.0, 0.0, 0.0, 0.0, 0.94, -0.34]).is_empty());
        let sagittal = oriented([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]);
        assert!(sagittal[0].contains("a sagittal series"), "{sagittal:?}");
        let coronal = oriented([1.0, 0.0, 0.0, 0.0, 0.0, -1.0]);
        assert!(coronal[0].contains("a coronal series"), "{coronal:?}");
        let flipped = oriented([-1.0, 0.0, 0.0, 0.0, -1.0, 0.0]);
        assert!(flipped[0].contains("upside down (rotated 180"), "{flipped:?}");
        // Rows and columns swapped, or turned 90 degrees, were not said.
        for o in [[0.0, 1.0, 0.0, 1.0, 0.0, 0.0], [0.0, -1.0, 0.0, 1.0, 0.0, 0.0]] {
            assert!(oriented(o)[0].contains("turned 90 degrees"), "{o:?}");
        }
        assert!(oriented([-1.0, 0.0, 0.0, 0.0, 1.0, 0.0])[0].contains("mirrored left to right"));
        assert!(oriented([1.0, 0.0, 0.0, 0.0, -1.0, 0.0])[0].contains("flipped top to bottom"));
    }

    /// Bits above BitsStored are dropped, and said: where BitsStored understates the data
    /// rather than leaving overlay bits there, the slice reads wrong.
    #[test]
    fn samples_with_bits_above_bits_stored_are_said() {
        let a = read_one_bytes("s/IM1.dcm", &dicom(1, "1.2.3", 4, EXPLICIT)).unwrap();
        let mut b = read_one_bytes("s/IM2.dcm", &dicom(2, "1.2.3", 4, EXPLICIT)).unwrap();
        assert_eq!((a.high_bits, b.high_bits), (0, 0));
        b.high_bits = 3;
        let v = assemble(Path::new("s"), vec![a, b]).unwrap();
        assert!(
            v.notes
                .iter()
                .any(|n| n.starts_with("1 of 2 slices have samples with bits set above BitsStored")),
            "{:?}",
            v.notes
        );
        assert!(v.slices[1]
            .notes
            .iter()
            .any(|n| n == "3 samples with bits set above BitsStored dropped"));
        assert!(!v.slices[0].notes.iter().any(|n| n.contains("BitsStored")));
    }

    #[test]
    fn mixed_series_and_sizes_are_refused() {
        let a = read_one_bytes("IM1.dcm", &dicom(1, "1.2.3", 4, EXPLICIT)).unwrap();
        let b = read_one_bytes("IM2.dcm", &dicom(2, "9.9", 4, EXPLICIT)).unwrap();
        let c = read_one_bytes("IM3.dcm", &dicom(3, "1.2.3", 8, EXPLICIT)).unwrap();
        assert!(assemble(Path::new("s"), vec![a.clone(), b])
            .unwrap_err()
            .contains("inconsistent DICOM series"));
        assert!(assemble(Path::new("s"), vec![a, c]).unwrap_err().contains("is 8x8"));
        assert!(assemble(Path::new("s"), vec![]).is_err());
    }

    #[test]
    fn compressed_truncated_and_lying_files_are_refused() {
        let extended = dicom(1, "1.2.3", 4, "1.2.840.10008.1.2.4.51");
        assert!(read_one_bytes("j.dcm", &extended).unwrap_err().contains("decompress"));
        // A compressed transfer syntax over native pixel data (no fragments) is an error.
        let jpeg = dicom(1, "1.2.3", 4, "1.2.840.10008.1.2.4.50");
        assert!(read_one_bytes("j.dcm", &jpeg).is_err());
        let good = dicom(1, "1.2.3", 4, EXPLICIT);
        assert!(read_one_bytes("t.dcm", &good[..good.len() - 3]).is_err());
        assert!(read_one_bytes("x.dcm", b"DICM? no").is_err());
        assert!(read_one_bytes("e.dcm", b"").is_err());
        // Pixel data that claims 4 GB: refused before the parser allocates it.
        let pd = good.windows(4).rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00]).unwrap();
        let mut lying = good.clone();
        lying[pd + 8..pd + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert!(read_one_bytes("l.dcm", &lying).unwrap_err().contains("more than the file holds"));
        // The same for a file meta element (Transfer Syntax UID is at the meta group's end).
        let ts = good.windows(4).position(|w| w == [0x02, 0x00, 0x10, 0x00]).unwrap();
        let mut lying = good.clone();
        lying[ts + 6..ts + 8].copy_from_slice(&0xFFF0u16.to_le_bytes());
        assert!(read_one_bytes("m.dcm", &lying).is_err());
    }

    #[test]
    fn deeply_nested_sequences_are_refused() {
        let good = dicom(1, "1.2.3", 4, EXPLICIT);
        // Insert, before Instance Number (0020,0013), 40 nested undefined-length sequences.
        let at = good.windows(4).position(|w| w == [0x20, 0x00, 0x13, 0x00]).unwrap();
        let mut b = good[..at].to_vec();
        for _ in 0..40 {
            b.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]); // (0008,1115) SQ
            b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
            // item
        }
        b.extend_from_slice(&good[at..]);
        assert!(read_one_bytes("n.dcm", &b).unwrap_err().contains("nest deeper"));
    }

    #[test]
    fn without_distinct_instance_numbers_slices_follow_their_position() {
        let slice = |name: &str, number: Option<i64>, z: Option<f64>| {
            let mut s = read_one_bytes(name, &dicom(1, "1.2.3", 4, EXPLICIT)).unwrap();
            s.number = number;
            s.reference.sop_instance = name.to_string();
            s.position = z.map(|z| [0.0, 0.0, z]);
            s.orientation = Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
            s
        };
        let stems = |v: &Volume| v.slices.iter().map(|s| s.stem.clone()).collect::<Vec<_>>();
        // Distinct numbers decide, whatever the positions.
        let v = assemble(
            Path::new("s"),
            vec![slice("b.dcm", Some(2), Some(0.0)), slice("a.dcm", Some(1), Some(5.0))],
        )
        .unwrap();
        assert_eq!(stems(&v), ["a", "b"]);
        assert_eq!(v.slices[0].notes.len(), 1);
        // Numbers missing or repeated: positions along the normal decide, with a note.
        let v = assemble(
            Path::new("s"),
            vec![
                slice("a.dcm", None, Some(10.0)),
                slice("b.dcm", None, Some(-5.0)),
                slice("c.dcm", Some(1), Some(2.5)),
            ],
        )
        .unwrap();
        assert_eq!(stems(&v), ["b", "c", "a"]);
        assert_eq!(v.slices.iter().map(|s| s.number).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(
            v.slices[0].notes[1].contains("ordered by ImagePositionPatient"),
            "{:?}",
            v.slices[0].notes
        );
        // A slice with neither a position nor a number of its own has no place: refused (it was
        // put by file name, or first, whatever the others' positions said).
        let err = assemble(
            Path::new("s"),
            vec![slice("b.dcm", Some(1), None), slice("a.dcm", Some(1), Some(0.0))],
        )
        .unwrap_err();
        assert!(err.contains("do not place them"), "{err}");
        // File names in natural order: IM2 before IM10 (as text, IM10 came first).
        let v = assemble(
            Path::new("s"),
            vec![
                slice("IM10.dcm", None, None),
                slice("IM2.dcm", None, None),
                slice("IM1.dcm", None, None),
            ],
        )
        .unwrap();
        assert_eq!(stems(&v), ["IM1", "IM2", "IM10"]);
    }

    #[test]
    fn runs_of_stray_item_delimiters_are_refused_without_overflowing_the_stack() {
        let good = dicom(1, "1.2.3", 4, EXPLICIT);
        let at = good.windows(4).position(|w| w == [0x20, 0x00, 0x13, 0x00]).unwrap();
        let with = |n: usize| {
            let mut b = good[..at].to_vec();
            for _ in 0..n {
                b.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
            }
            b.extend_from_slice(&good[at..]);
            b
        };
        // A few are skipped (as the parser does) ...
        assert_eq!(read_one_bytes("a.dcm", &with(3)).unwrap().rows, 4);
        // ... 200 000 used to overflow the parser's stack (test threads have 2 MB).
        assert!(read_one_bytes("b.dcm", &with(200_000))
            .unwrap_err()
            .contains("consecutive item delimiters"));
    }

    /// `bytes` with `elements` put in (replacing any of the same tag) and `remove` taken out.
    fn edited(bytes: &[u8], elements: Vec<dicom_core::DataElement<dicom_object::InMemDicomObject>>, remove: &[dicom_core::Tag]) -> Vec<u8> {
        let mut obj = parse(bytes).unwrap().unwrap().0;
        for e in elements {
            obj.put(e);
        }
        for tag in remove {
            obj.remove_element(*tag);
        }
        let mut out = Vec::new();
        obj.write_all(&mut out).unwrap();
        out
    }

    fn text_element(tag: dicom_core::Tag, vr: dicom_core::VR, value: &str) -> dicom_core::DataElement<dicom_object::InMemDicomObject> {
        dicom_core::DataElement::new(tag, vr, dicom_core::PrimitiveValue::from(value))
    }

    /// Found by the session-59 audit: numbers that do not run along the positions scrambled the
    /// volume (and the SEG's spacing); a copy of a file became a second slice; two images at one
    /// place (echoes) were merged; a multi-frame file was read as one slice; objects without
    /// pixel data failed the whole series.
    #[test]
    fn series_are_put_in_place_copies_dropped_and_odd_files_told() {
        let at = |n: u32, z: &str| {
            let position = dicom_core::PrimitiveValue::Strs(["0", "0", z].iter().map(|s| s.to_string()).collect());
            let bytes = edited(
                &dicom(n, "1.2.3", 4, EXPLICIT),
                vec![dicom_core::DataElement::new(
                    tags::IMAGE_POSITION_PATIENT,
                    dicom_core::VR::DS,
                    position,
                )],
                &[],
            );
            read_one_bytes(&format!("IM{n}.dcm"), &bytes).unwrap()
        };
        // Interleaved numbering: 1 at 0 mm, 2 at 10, 3 at 5.
        let v = assemble(Path::new("s"), vec![at(1, "0"), at(2, "10"), at(3, "5")]).unwrap();
        let stems: Vec<&str> = v.slices.iter().map(|s| s.stem.as_str()).collect();
        assert_eq!(stems, ["IM1", "IM3", "IM2"]);
        assert!(
            v.slices[0].notes.iter().any(|n| n.contains("do not follow their positions")),
            "{:?}",
            v.slices[0].notes
        );
        assert_eq!(v.slice_thickness_mm, Some(5.0));
        // A copy under another name is passed over.
        let v = assemble(Path::new("s"), vec![at(1, "0"), at(2, "5"), at(2, "5")]).unwrap();
        assert_eq!(v.slices.len(), 2);
        assert!(v.notes.iter().any(|n| n.contains("a copy of")), "{:?}", v.notes);
        // Different images under one UID (a converter's habit) stay slices; the SEG refuses them.
        let mut other = at(3, "10");
        other.reference.sop_instance = "1.2.826.0.1.2".into();
        let v = assemble(Path::new("s"), vec![at(1, "0"), at(2, "5"), other]).unwrap();
        assert_eq!(v.slices.len(), 3);
        let why = crate::dicom_seg::check_series(v.dicom.as_ref().unwrap(), &v.slices).unwrap_err();
        assert!(why.contains("different images with one SOPInstanceUID"), "{why}");
        // Without numbers, placeholder positions leave the order to the names, IM2 before IM10.
        let unnumbered = |n: u32| {
            let mut s = at(n, "0");
            s.number = None;
            s
        };
        let v = assemble(Path::new("s"), vec![unnumbered(10), unnumbered(2), unnumbered(1)]).unwrap();
        let stems: Vec<&str> = v.slices.iter().map(|s| s.stem.as_str()).collect();
        assert_eq!(stems, ["IM1", "IM2", "IM10"]);
        assert!(
            v.slices[0].notes.iter().any(|n| n.contains("ordered by file name")),
            "{:?}",
            v.slices[0].notes
        );
        // All at one placeholder position: ordered by number, no SEG.
        let v = assemble(Path::new("s"), vec![at(2, "0"), at(1, "0"), at(3, "0")]).unwrap();
        let stems: Vec<&str> = v.slices.iter().map(|s| s.stem.as_str()).collect();
        assert_eq!(stems, ["IM1", "IM2", "IM3"]);
        assert!(v.notes.iter().any(|n| n.contains("the same ImagePositionPatient")), "{:?}", v.notes);
        let why = crate::dicom_seg::check_series(v.dicom.as_ref().unwrap(), &v.slices).unwrap_err();
        assert!(why.contains("share a position"), "{why}");
        // Two images at one place (another echo: its own instance) are refused.
        let mut echo = at(3, "5");
        echo.reference.sop_instance = "1.2.826.0.1.99".into();
        let err = assemble(Path::new("s"), vec![at(1, "0"), at(2, "5"), echo]).unwrap_err();
        assert!(err.contains("same position"), "{err}");
        // A file claiming more frames than its pixel data holds is refused; an object without
        // pixel data is not an image.
        let frames = edited(
            &dicom(1, "1.2.3", 4, EXPLICIT),
            vec![text_element(tags::NUMBER_OF_FRAMES, dicom_core::VR::IS, "20")],
            &[],
        );
        assert!(read_file_bytes("mf.dcm", &frames).unwrap_err().contains("for 20 frames"));
        let spectrum = edited(
            &dicom(1, "1.2.3", 4, EXPLICIT),
            vec![],
            &[tags::PIXEL_DATA, tags::ROWS, tags::COLUMNS],
        );
        assert!(matches!(read_file_bytes("mrs.dcm", &spectrum).unwrap(), DicomFile::NotImage(w) if w.contains("without pixel data")));
    }

    /// Names in a character set dicom-rs does not decode (ISO 2022 code extensions, GBK) are
    /// not copied garbled into a derived object: a person name keeps its plain alphabetic group,
    /// other values are left empty, with a note.
    /// A multi-frame (Enhanced MR) file was refused; now each frame is a slice, placed by its
    /// own Plane Position functional group and rescaled by the shared one, named `file#frame`,
    /// and its SEG refers to each frame by number within the one instance.
    #[test]
    fn multi_frame_images_are_read_frame_by_frame() {
        let frame = |v: u16| vec![v; 16];
        // Stored out of order along z, as an acquisition order can be.
        let bytes = crate::phantom::dicom_multiframe(1, "1.2.3", 4, &[(10.0, frame(30)), (0.0, frame(10)), (5.0, frame(20))]);
        let DicomFile::Image(slices) = read_file_bytes("mf/MF.dcm", &bytes).unwrap() else {
            panic!("not an image")
        };
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[1].values, vec![20.0; 16], "rescaled by the shared slope of 2");
        assert_eq!(slices[1].position, Some([0.0, 0.0, 0.0]));
        assert_eq!(slices[0].orientation, Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]));
        assert_eq!((slices[2].spacing, slices[2].thickness), (Some((0.5, 0.5)), Some(5.0)));
        let frames: Vec<_> = slices.iter().map(|s| s.reference.frame).collect();
        assert_eq!(frames, [Some(1), Some(2), Some(3)]);
        assert!(read_one_bytes("mf/MF.dcm", &bytes)
            .unwrap_err()
            .contains("multi-frame image of 3 frames"));

        let v = assemble(Path::new("mf"), slices.clone()).unwrap();
        let labels: Vec<&str> = v.slices.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["mf/MF.dcm#2", "mf/MF.dcm#3", "mf/MF.dcm#1"]);
        assert_eq!(v.slices[0].stem, "MF_f002");
        assert!(
            v.slices[0].notes.iter().any(|n| n.contains("frame numbers")),
            "{:?}",
            v.slices[0].notes
        );
        assert_eq!(v.slice_thickness_mm, Some(5.0));
        let series = v.dicom.as_ref().unwrap();
        crate::dicom_seg::check_series(series, &v.slices).unwrap();
        let source = crate::dicom_seg::SegmentationSource {
            software: "test".into(),
            algorithm: "test".into(),
        };
        let masks = vec![vec![1u8; 16]; 3];
        let seg = crate::dicom_seg::seg_file_bytes(series, &v.slices, &masks, &source).unwrap();
        let back = crate::phantom::read_seg(&seg).unwrap();
        assert_eq!(back.sources, vec!["1.2.826.0.2.1"; 3]);
        assert_eq!(back.source_frames, [Some(2), Some(3), Some(1)]);
        let obj = OpenFileOptions::new().from_reader(&seg[128..]).unwrap();
        let referenced = obj.element(tags::REFERENCED_SERIES_SEQUENCE).unwrap().items().unwrap()[0]
            .element(tags::REFERENCED_INSTANCE_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()
            .len();
        assert_eq!(referenced, 1, "the one instance is listed once");

        // A copy of the file is read once; two stacks at the same positions (echoes) are refused.
        let copy = read_file_bytes("mf/MF copy.dcm", &bytes).unwrap();
        let DicomFile::Image(copy) = copy else { panic!() };
        let v = assemble(Path::new("mf"), slices.iter().cloned().chain(copy).collect()).unwrap();
        assert_eq!(v.slices.len(), 3);
        assert!(
            v.notes.iter().any(|n| n == "skipped MF copy.dcm: 3 frames, copies of MF.dcm's"),
            "{:?}",
            v.notes
        );
        let echoes = crate::phantom::dicom_multiframe(
            2,
            "1.2.3",
            4,
            &[(0.0, frame(10)), (5.0, frame(20)), (0.0, frame(40)), (5.0, frame(50))],
        );
        let DicomFile::Image(echoes) = read_file_bytes("e.dcm", &echoes).unwrap() else {
            panic!()
        };
        assert!(assemble(Path::new("e"), echoes).unwrap_err().contains("same position"));
        // Pixel data shorter than its frames is refused.
        assert!(read_file_bytes("t.dcm", &bytes[..bytes.len() - 2]).is_err());
    }

    /// Found by an audit (session 60): shuffled frames with one lacking its position were left
    /// in frame order without a word (9,087 tumour pixels for 31,063); a localiser frame in
    /// another plane was stacked with the axial slices; echoes were named by file only.
    #[test]
    fn slices_that_cannot_be_placed_are_refused_by_name() {
        let slice = |name: &str, number: i64, z: Option<f64>, orientation: [f64; 6]| {
            let mut s = read_one_bytes(name, &dicom(number as u32, "1.2.3", 4, EXPLICIT)).unwrap();
            s.number = Some(number);
            s.position = z.map(|z| [0.0, 0.0, z]);
            s.orientation = Some(orientation);
            s
        };
        let axial = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let sagittal = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0];
        // One without a position among shuffled ones: no order can be trusted.
        let shuffled = vec![
            slice("a.dcm", 1, Some(10.0), axial),
            slice("b.dcm", 2, None, axial),
            slice("c.dcm", 3, Some(0.0), axial),
            slice("d.dcm", 4, Some(5.0), axial),
        ];
        let err = assemble(Path::new("s"), shuffled).unwrap_err();
        assert!(err.contains("1 of 4 slices have no ImagePositionPatient"), "{err}");
        // In order, it takes its number's place, with a note.
        let ordered = vec![
            slice("a.dcm", 1, Some(0.0), axial),
            slice("b.dcm", 2, None, axial),
            slice("c.dcm", 3, Some(10.0), axial),
        ];
        let v = assemble(Path::new("s"), ordered).unwrap();
        assert!(
            v.slices[1].notes.iter().any(|n| n.contains("1 of 3 have no ImagePositionPatient")),
            "{:?}",
            v.slices[1].notes
        );
        // A slice in another plane, whichever place it has.
        let localiser = vec![
            slice("loc.dcm", 1, Some(0.0), sagittal),
            slice("a.dcm", 2, Some(0.0), axial),
            slice("b.dcm", 3, Some(5.0), axial),
        ];
        let err = assemble(Path::new("s"), localiser).unwrap_err();
        assert!(err.starts_with("1 of 3 slices (loc.dcm) are not oriented as the rest"), "{err}");
        // Second audit: one file without orientation made a coronal series "axial" (every
        // slice one depth) and its interleaved numbers scrambled the volume.
        let coronal = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0];
        let mut slices: Vec<DicomSlice> = [1, 3, 5, 2, 4]
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                let mut s = slice(&format!("IM{n}.dcm"), n, Some(0.0), coronal);
                s.position = Some([0.0, 5.0 * k as f64, 0.0]);
                s
            })
            .collect();
        slices[0].orientation = None;
        let v = assemble(Path::new("s"), slices).unwrap();
        let ys: Vec<f64> = v.slices.iter().map(|s| s.position_mm.unwrap()[1]).collect();
        assert_eq!(ys, [0.0, 5.0, 10.0, 15.0, 20.0], "placed along the coronal normal");
        // Two echoes with one slice unplaced: still two volumes at the same positions.
        let mut echoes: Vec<DicomSlice> = (0..6)
            .map(|k| slice(&format!("E{k}.dcm"), k + 1, Some(5.0 * (k % 3) as f64), axial))
            .collect();
        echoes[5].position = None;
        assert!(assemble(Path::new("s"), echoes).unwrap_err().contains("same position"));
        // Each way of loss is counted apart.
        let mut mixed = vec![
            slice("a.dcm", 1, Some(0.0), axial),
            slice("b.dcm", 2, Some(5.0), axial),
            slice("c.dcm", 3, Some(10.0), axial),
        ];
        mixed[0].lossy = Some("stored with lossy JPEG 2000 compression".into());
        mixed[1].lossy = Some("stored with JPEG 2000 compression, which may be lossy".into());
        let v = assemble(Path::new("s"), mixed).unwrap();
        assert!(
            v.notes.iter().any(|n| n.starts_with("1 of 3 slices stored with lossy JPEG 2000 compression; 1 of 3 slices stored with JPEG 2000 compression, which may be lossy:")),
            "{:?}",
            v.notes
        );
        // Echoes in one multi-frame file are named by frame.
        let frame = |v: u16| vec![v; 16];
        let echoes = crate::phantom::dicom_multiframe(
            2,
            "1.2.3",
            4,
            &[(0.0, frame(10)), (5.0, frame(20)), (0.0, frame(40)), (5.0, frame(50))],
        );
        let DicomFile::Image(echoes) = read_file_bytes("e.dcm", &echoes).unwrap() else {
            panic!()
        };
        let err = assemble(Path::new("e"), echoes).unwrap_err();
        assert!(err.starts_with("e.dcm#1 and e.dcm#3 lie at the same position"), "{err}");
    }

    #[test]
    fn names_in_undecoded_character_sets_are_not_copied_garbled() {
        let name = |charset: &str, value: &[u8]| {
            let mut obj = parse(&dicom(1, "1.2.3", 4, EXPLICIT)).unwrap().unwrap().0;
            obj.put(text_element(tags::SPECIFIC_CHARACTER_SET, dicom_core::VR::CS, charset));
            let mut out = Vec::new();
            obj.write_all(&mut out).unwrap();
            // Patch the name's raw bytes in (dicom-rs would encode a Rust string its own way).
            let at = out.windows(9).position(|w| w == b"Phantom^T").unwrap();
            let len_at = at - 2;
            let mut value = value.to_vec();
            if value.len() % 2 == 1 {
                value.push(b' ');
            }
            let mut patched = out[..len_at].to_vec();
            patched.extend_from_slice(&(value.len() as u16).to_le_bytes());
            patched.extend_from_slice(&value);
            patched.extend_from_slice(&out[at + "Phantom^Test".len()..]);
            let slice = read_one_bytes("n.dcm", &patched).unwrap();
            let v = assemble(Path::new("s"), vec![slice]).unwrap();
            (v.dicom.unwrap().copied[0].clone(), v.notes)
        };
        let (jis, notes) = name("ISO 2022 IR 6\\ISO 2022 IR 87", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B");
        assert_eq!(jis, "Yamada^Tarou");
        assert!(
            notes.iter().any(|n| n.contains("PatientName as its alphabetic group only")),
            "{notes:?}"
        );
        let (gbk, notes) = name("GBK", b"\xcd\xf5^\xd0\xa1\xb6\xab");
        assert_eq!(gbk, "");
        assert!(notes.iter().any(|n| n.contains("PatientName left empty")), "{notes:?}");
        let (latin1, _) = name("ISO_IR 100", b"M\xfcller^Zo\xeb");
        assert_eq!(latin1, "Müller^Zoë");
    }
}
