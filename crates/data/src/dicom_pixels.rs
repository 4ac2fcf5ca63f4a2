//! The stored values of a monochrome DICOM image's frames, from native (uncompressed) pixel
//! data or from the compressed transfer syntaxes PACS and cloud archives export: RLE Lossless, JPEG
//! (baseline 8-bit, lossless process 14 and its first-order predictor SV1; crate
//! `jpeg-decoder`) and JPEG 2000 and HTJ2K (lossless and lossy; crate `jpeg2k` over `openjp2`,
//! a pure Rust port of OpenJPEG) and JPEG-LS (lossless and near-lossless, one component; crate
//! `pure_jpegls`). 12-bit lossy JPEG, deflate and big endian are refused by name, with the way to
//! decompress them.
//!
//! Every encoded frame is checked against the data set before it is decoded (its width, height
//! and component count, and for JPEG 2000 before any sample is allocated), so that a stream
//! that disagrees with Rows / Columns is an error rather than a misread or a buffer sized by the
//! stream; what a decoder might still panic on is caught and reported as an unreadable frame.

use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;

/// How a transfer syntax stores pixel data, as far as this reader is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Implicit or explicit VR little endian: the samples as they are.
    Native,
    /// RLE Lossless (PS3.5 Annex G).
    Rle,
    /// JPEG (ISO 10918-1): baseline 8-bit and lossless (process 14, SV1).
    Jpeg,
    /// JPEG 2000 (ISO 15444-1), lossless or lossy.
    Jpeg2000,
    /// JPEG-LS (ISO 14495-1), lossless or near-lossless.
    JpegLs,
}

impl Encoding {
    /// The coding's name, for messages.
    fn codec(self) -> &'static str {
        match self {
            Encoding::Native => "native",
            Encoding::Rle => "RLE",
            Encoding::Jpeg => "JPEG",
            Encoding::Jpeg2000 => "JPEG 2000",
            Encoding::JpegLs => "JPEG-LS",
        }
    }
}

/// Whether a transfer syntax's coding loses information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Lossless by definition.
    Never,
    /// Lossy by definition (baseline JPEG).
    Always,
    /// Either (JPEG 2000, HTJ2K): the stream's wavelet, or LossyImageCompression, tells.
    Maybe,
    /// Either, and the stream says exactly which (JPEG-LS Near-Lossless: its NEAR, 0 lossless).
    Stream,
}

/// Transfer syntaxes read: UID, encoding, name, whether its coding loses information.
const READ: [(&str, Encoding, &str, Loss); 13] = [
    ("1.2.840.10008.1.2", Encoding::Native, "implicit VR little endian", Loss::Never),
    ("1.2.840.10008.1.2.1", Encoding::Native, "explicit VR little endian", Loss::Never),
    ("1.2.840.10008.1.2.5", Encoding::Rle, "RLE Lossless", Loss::Never),
    ("1.2.840.10008.1.2.4.50", Encoding::Jpeg, "JPEG Baseline", Loss::Always),
    ("1.2.840.10008.1.2.4.57", Encoding::Jpeg, "JPEG Lossless", Loss::Never),
    ("1.2.840.10008.1.2.4.70", Encoding::Jpeg, "JPEG Lossless SV1", Loss::Never),
    ("1.2.840.10008.1.2.4.90", Encoding::Jpeg2000, "JPEG 2000 Lossless", Loss::Never),
    ("1.2.840.10008.1.2.4.91", Encoding::Jpeg2000, "JPEG 2000", Loss::Maybe),
    // High-throughput JPEG 2000 (openjp2 decodes its HT block coder too).
    ("1.2.840.10008.1.2.4.201", Encoding::Jpeg2000, "HTJ2K Lossless", Loss::Never),
    ("1.2.840.10008.1.2.4.202", Encoding::Jpeg2000, "HTJ2K Lossless RPCL", Loss::Never),
    ("1.2.840.10008.1.2.4.203", Encoding::Jpeg2000, "HTJ2K", Loss::Maybe),
    ("1.2.840.10008.1.2.4.80", Encoding::JpegLs, "JPEG-LS Lossless", Loss::Never),
    ("1.2.840.10008.1.2.4.81", Encoding::JpegLs, "JPEG-LS Near-Lossless", Loss::Stream),
];

/// Transfer syntaxes known but not read, with their names for the message.
const REFUSED: [(&str, &str); 4] = [
    ("1.2.840.10008.1.2.4.51", "JPEG Extended (12-bit lossy)"),
    ("1.2.840.10008.1.2.1.99", "deflated explicit VR little endian"),
    ("1.2.840.10008.1.2.2", "explicit VR big endian (retired)"),
    ("1.2.840.10008.1.2.4.100", "MPEG-2 video"),
];

/// The transfer syntax named by `uid` as this reader reads it: (encoding, name, loss), or the
/// message for one it does not read.
pub(crate) fn encoding(uid: &str) -> Result<(Encoding, &'static str, Loss), String> {
    if let Some((_, enc, name, loss)) = READ.iter().find(|(u, ..)| *u == uid) {
        return Ok((*enc, name, *loss));
    }
    let name = REFUSED
        .iter()
        .find(|(u, _)| *u == uid)
        .map(|(_, n)| format!("{n} ({uid})"))
        .unwrap_or_else(|| uid.to_string());
    Err(format!(
        "transfer syntax {name} is not read: decompress the series first (e.g. gdcmconv --raw, or dcmdjpeg); read are uncompressed, RLE Lossless, JPEG Baseline, JPEG Lossless, JPEG 2000, HTJ2K and JPEG-LS"
    ))
}

/// How a slice lost information to compression, if it may have: from its transfer syntax's
/// coding `loss`, how its stream was `coded` when that was lossy (whatever the label says), and
/// its LossyImageCompression flag (`"01"` lossy, `"00"` not), where given.
pub(crate) fn lossy_note(loss: Loss, name: &str, flag: Option<&str>, coded: Option<&str>) -> Option<String> {
    if let Some(how) = coded {
        return Some(match loss {
            Loss::Never => format!("coded lossily ({how}) though its transfer syntax, {name}, is a lossless one"),
            Loss::Always | Loss::Maybe | Loss::Stream => format!("stored with lossy {name} compression"),
        });
    }
    match (loss, flag) {
        (Loss::Never | Loss::Stream, Some("01")) => Some("marked as lossily compressed before (LossyImageCompression 01)".into()),
        (Loss::Never | Loss::Stream, _) | (Loss::Maybe, Some("00")) => None,
        (Loss::Always, _) | (Loss::Maybe, Some("01")) => Some(format!("stored with lossy {name} compression")),
        (Loss::Maybe, _) => Some(format!(
            "stored with {name} compression, which may be lossy (LossyImageCompression not given)"
        )),
    }
}

/// The image's pixel format, from the data set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Format {
    pub rows: usize,
    pub cols: usize,
    /// BitsAllocated: 8 or 16.
    pub bits: u16,
    /// BitsStored (at most `bits`).
    pub stored: u16,
    /// Where the stored bits lie in a word: HighBit + 1 - BitsStored (0 almost always; the data
    /// in a word's high bits when HighBit is 15 with 12 bits stored), in native data and in
    /// streams coded at a precision above BitsStored.
    pub shift: u16,
    /// PixelRepresentation 1: two's complement samples.
    pub signed: bool,
}

/// A frame's stored sample values and what reading them showed.
#[derive(Debug, PartialEq)]
pub(crate) struct Frame {
    /// Stored values, row-major, `rows * cols` (before rescaling).
    pub values: Vec<f32>,
    /// How its stream was coded lossily, if it was (a baseline DCT JPEG, an irreversible JPEG
    /// 2000 wavelet, JPEG-LS with NEAR above 0), whatever its transfer syntax says.
    pub lossy: Option<&'static str>,
    /// Samples with bits set above BitsStored, which were dropped (overlay bits, or a
    /// BitsStored that understates the data).
    pub high_bits: usize,
}

/// Most pixels decoded from one file's compressed frames together (one frame of the largest
/// side read): a few kB of compressed stream can claim gigabytes of samples, where native data
/// must hold its bytes in the file.
pub(crate) const MAX_DECODED_PIXELS: usize = crate::dicom::MAX_SIDE * crate::dicom::MAX_SIDE;

/// The stored sample values of each of `frames` frames.
pub(crate) fn stored_frames(
    obj: &DefaultDicomObject,
    encoding: Encoding,
    f: Format,
    frames: usize,
    extended_offsets: &[u64],
) -> Result<Vec<Frame>, String> {
    let element = obj.element(tags::PIXEL_DATA).map_err(|_| "no pixel data".to_string())?;
    if encoding == Encoding::Native {
        let data = element.to_bytes().map_err(|e| format!("unreadable pixel data: {e}"))?;
        let frame_bytes = f.rows * f.cols * (f.bits as usize / 8);
        if frames > 1 && data.len() < frames * frame_bytes {
            return Err(format!(
                "pixel data holds {} bytes, {} expected for {frames} frames (truncated?)",
                data.len(),
                frames * frame_bytes
            ));
        }
        return (0..frames).map(|k| native(&data[(k * frame_bytes).min(data.len())..], f)).collect();
    }
    if frames.saturating_mul(f.rows).saturating_mul(f.cols) > MAX_DECODED_PIXELS {
        return Err(format!(
            "{frames} compressed frames of {}x{} hold more pixels than are decoded from one file (at most {MAX_DECODED_PIXELS} in all)",
            f.cols, f.rows
        ));
    }
    let value = element.value();
    let fragments = value
        .fragments()
        .ok_or("compressed pixel data without fragments (stored as native data?)")?;
    // The Basic Offset Table, else the Extended one (which large files carry instead).
    let offsets: Vec<u64> = match value.offset_table().unwrap_or_default() {
        [] => extended_offsets.to_vec(),
        basic => basic.iter().map(|&o| u64::from(o)).collect(),
    };
    // The bytes every frame's stream starts with: SOI (JPEG, JPEG-LS), SOC + SIZ (JPEG 2000).
    let start: &[u8] = match encoding {
        Encoding::Jpeg | Encoding::JpegLs => &[0xFF, 0xD8],
        Encoding::Jpeg2000 => &[0xFF, 0x4F, 0xFF, 0x51],
        Encoding::Rle | Encoding::Native => &[],
    };
    split_frames(fragments, &offsets, frames, start)?
        .into_iter()
        .map(|data| {
            if data.is_empty() {
                return Err("a compressed frame is empty".to_string());
            }
            let decoded = std::panic::catch_unwind(|| match encoding {
                Encoding::Rle => rle(&data, f).and_then(|bytes| native(&bytes, f)),
                Encoding::Jpeg => jpeg(&data, f),
                Encoding::Jpeg2000 => jpeg2000(&data, f),
                Encoding::JpegLs => jpeg_ls(&data, f),
                Encoding::Native => unreachable!("read above"),
            });
            let codec = encoding.codec();
            decoded.unwrap_or_else(|_| Err(format!("a {codec} frame could not be decoded (the decoder failed on it)")))
        })
        .collect()
}

/// Each frame's encoded bytes: one frame is all the fragments; several are one fragment each,
/// or grouped by an offset table (byte offsets of each frame's first fragment, counted from the
/// first fragment's item header, 8 bytes per item header; entries that are not a fragment's
/// start make the table unusable), or without one by the fragments that open with `start`, the
/// bytes each frame's stream starts with (as DCMTK finds them). JPEG's and JPEG-LS's coded data
/// cannot hold SOI; should a JPEG 2000 fragment within a frame begin with SOC + SIZ, the count
/// disagrees and the file is refused.
fn split_frames(fragments: &[Vec<u8>], offsets: &[u64], frames: usize, start: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if frames == 1 {
        return Ok(vec![fragments.concat()]);
    }
    if fragments.len() == frames {
        return Ok(fragments.to_vec());
    }
    // Where each fragment starts, counted as the offset table counts.
    let starts: Vec<u64> = fragments
        .iter()
        .scan(0u64, |at, f| {
            let start = *at;
            *at += 8 + f.len() as u64;
            Some(start)
        })
        .collect();
    let table_usable = offsets.len() == frames
        && offsets.windows(2).all(|w| w[1] > w[0])
        && offsets.first() == Some(&0)
        && offsets.iter().all(|o| starts.binary_search(o).is_ok());
    if !table_usable {
        let firsts: Vec<usize> = (0..fragments.len())
            .filter(|&i| !start.is_empty() && fragments[i].starts_with(start))
            .chain([fragments.len()])
            .collect();
        if firsts.len() == frames + 1 && firsts[0] == 0 {
            return Ok(firsts.windows(2).map(|w| fragments[w[0]..w[1]].concat()).collect());
        }
        return Err(format!(
            "{frames} frames in {} fragments without a usable offset table: the frames cannot be told apart",
            fragments.len()
        ));
    }
    // Every entry is a fragment's start, so each frame gets its fragments.
    let mut out = vec![Vec::new(); frames];
    for (fragment, at) in fragments.iter().zip(&starts) {
        let frame = offsets.iter().rposition(|o| o <= at).unwrap_or(0);
        out[frame].extend_from_slice(fragment);
    }
    Ok(out)
}

/// Native little-endian samples.
fn native(data: &[u8], f: Format) -> Result<Frame, String> {
    let n = f.rows * f.cols;
    let need = n * (f.bits as usize / 8);
    if data.len() < need {
        return Err(format!("pixel data holds {} bytes, {need} expected (truncated?)", data.len()));
    }
    Ok(match f.bits {
        8 => stored_values(data[..n].iter().map(|&v| u32::from(v)), f.bits, None, f),
        _ => stored_values(
            data[..need].chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))),
            f.bits,
            None,
            f,
        ),
    })
}

/// A stored sample's value: the bits above BitsStored dropped (overlay planes or junk some
/// writers leave there; read whole, they turned a 12-bit image into noise), and signed samples
/// read as BitsStored-bit two's complement (sign-extended or not in the word), as pydicom,
/// GDCM and DCMTK read them.
fn sample_value(raw: u32, f: Format) -> f32 {
    if f.signed {
        sign_extend(raw, f.stored)
    } else {
        (raw & (u32::MAX >> (32 - u32::from(f.stored.clamp(1, 32))))) as f32
    }
}

/// A frame of samples `precision` bits wide (native words, or a stream's decoded samples): their
/// stored values, and how many had bits set above BitsStored. Samples wider than BitsStored are
/// whole words, the stored bits where HighBit places them (DCMTK codes 12 bits under HighBit 15
/// as 16-bit samples); a stream coded at BitsStored holds the stored bits alone.
fn stored_values(samples: impl IntoIterator<Item = u32>, precision: u16, lossy: Option<&'static str>, f: Format) -> Frame {
    let shift = if precision > f.stored { f.shift } else { 0 };
    // Bits between BitsStored and the sample's width: zero, or for a negative signed sample its
    // sign's extension; anything else is an overlay or data BitsStored leaves out.
    let extra = u32::from(precision.saturating_sub(shift).saturating_sub(f.stored).min(31));
    let stored = u32::from(f.stored.clamp(1, 31));
    let set_above = |w: u32| {
        let above = (w >> stored) & ((1u32 << extra) - 1);
        let negative = f.signed && (w >> (stored - 1)) & 1 == 1;
        above != 0 && !(negative && above == (1u32 << extra) - 1)
    };
    let mut high_bits = 0;
    let values = samples
        .into_iter()
        .map(|raw| {
            let word = raw >> shift;
            high_bits += usize::from(set_above(word));
            sample_value(word, f)
        })
        .collect();
    Frame { values, lossy, high_bits }
}

/// A value of `bits` bits read as two's complement (JPEG codes signed samples as their bits).
fn sign_extend(v: u32, bits: u16) -> f32 {
    let bits = bits.clamp(1, 32) as u32;
    let v = v & (u32::MAX >> (32 - bits));
    if bits < 32 && v >> (bits - 1) == 1 {
        (v as i64 - (1i64 << bits)) as f32
    } else {
        v as f32
    }
}

/// RLE Lossless (PS3.5 Annex G) to native little-endian bytes. Written out here because
/// `dicom-transfer-syntax-registry`'s adapter indexes past the end of a short segment (a panic
/// on a truncated file); this one checks every offset and length.
fn rle(data: &[u8], f: Format) -> Result<Vec<u8>, String> {
    let word = |i: usize| {
        data.get(4 * i..4 * i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let bytes = f.bits as usize / 8;
    let segments = word(0).ok_or("RLE data shorter than its header")?;
    if segments != bytes {
        return Err(format!(
            "RLE data has {segments} segments, {bytes} expected for monochrome {}-bit samples",
            f.bits
        ));
    }
    let n = f.rows * f.cols;
    let mut out = vec![0u8; n * bytes];
    for s in 0..segments {
        let start = word(1 + s).ok_or("RLE data shorter than its header")?;
        let end = if s + 1 < segments {
            word(2 + s).ok_or("RLE data shorter than its header")?
        } else {
            data.len()
        };
        let segment = data
            .get(start..end)
            .filter(|_| start >= 64)
            .ok_or_else(|| format!("RLE segment {s} lies outside the data ({start}..{end} of {})", data.len()))?;
        // A segment holds the plane and at most a padding byte (its length is even).
        let plane = packbits(segment, n + 2);
        if plane.len() < n || plane.len() > n + 1 {
            return Err(format!(
                "RLE segment {s} decodes to {}{} samples but Rows x Columns are {n}",
                plane.len(),
                if plane.len() > n { " or more" } else { "" }
            ));
        }
        // Segments run from the most significant byte; native order is little endian.
        let byte = bytes - 1 - s;
        for (i, v) in plane.into_iter().take(n).enumerate() {
            out[i * bytes + byte] = v;
        }
    }
    Ok(out)
}

/// PackBits: what a segment decodes to, up to `limit` bytes (a cut-off last run counts as far
/// as it goes).
fn packbits(segment: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    let mut i = 0;
    while out.len() < limit {
        let Some(&header) = segment.get(i) else { break };
        i += 1;
        match header as i8 {
            h @ 0..=127 => {
                let end = (i + h as usize + 1).min(segment.len());
                out.extend_from_slice(&segment[i..end]);
                i = end;
            }
            h @ -127..=-1 => {
                let Some(&v) = segment.get(i) else { break };
                i += 1;
                out.extend(std::iter::repeat_n(v, (1 - h as isize) as usize));
            }
            -128 => {}
        }
    }
    out.truncate(limit);
    out
}

fn jpeg(data: &[u8], f: Format) -> Result<Frame, String> {
    use jpeg_decoder::PixelFormat;
    let mut decoder = jpeg_decoder::Decoder::new(data);
    decoder.read_info().map_err(|e| format!("unreadable JPEG frame: {e}"))?;
    let info = decoder.info().ok_or("unreadable JPEG frame: no frame header")?;
    if (info.width as usize, info.height as usize) != (f.cols, f.rows) {
        return Err(format!(
            "the JPEG frame is {}x{} but Columns x Rows say {}x{}",
            info.width, info.height, f.cols, f.rows
        ));
    }
    let sample = match info.pixel_format {
        PixelFormat::L8 => 1,
        PixelFormat::L16 => 2,
        other => return Err(format!("the JPEG frame is {other:?}, not monochrome")),
    };
    decoder.set_max_decoding_buffer_size(f.rows * f.cols * sample);
    let pixels = decoder.decode().map_err(|e| format!("unreadable JPEG frame: {e}"))?;
    if pixels.len() != f.rows * f.cols * sample {
        return Err("the JPEG frame decoded to the wrong number of samples".into());
    }
    let lossy = (info.coding_process != jpeg_decoder::CodingProcess::Lossless).then_some("DCT JPEG");
    let precision = jpeg_header(data).map_or(f.stored, |h| h.precision);
    // jpeg-decoder gives 16-bit samples in native byte order.
    Ok(match sample {
        1 => stored_values(pixels.iter().map(|&v| u32::from(v)), precision, lossy, f),
        _ => stored_values(
            pixels.chunks_exact(2).map(|c| u32::from(u16::from_ne_bytes([c[0], c[1]]))),
            precision,
            lossy,
            f,
        ),
    })
}

fn jpeg2000(data: &[u8], f: Format) -> Result<Frame, String> {
    // The header first: the decoder allocates what the stream's header says.
    let image = jpeg2k::DumpImage::from_bytes(data).map_err(|e| format!("unreadable JPEG 2000 frame: {e}"))?;
    let img = &image.img;
    if (img.width() as usize, img.height() as usize) != (f.cols, f.rows) || img.num_components() != 1 {
        return Err(format!(
            "the JPEG 2000 frame is {}x{} with {} components but the data set says {}x{} monochrome",
            img.width(),
            img.height(),
            img.num_components(),
            f.cols,
            f.rows
        ));
    }
    image.decode().map_err(|e| format!("unreadable JPEG 2000 frame: {e}"))?;
    let component = image.img.components().first().ok_or("the JPEG 2000 frame has no component")?;
    let samples = component.data();
    if samples.len() != f.rows * f.cols {
        return Err("the JPEG 2000 frame decoded to the wrong number of samples".into());
    }
    // A stream coded unsigned holds the stored bits (two's complement ones for signed data, as
    // some encoders write them); a signed one holds the values.
    let precision = component.precision() as u16;
    let lossy = irreversible_wavelet(data).then_some("irreversible 9/7 wavelet");
    // A signed stream's values as their two's complement bits, `precision` wide.
    let bits = u32::MAX >> (32 - u32::from(precision.clamp(1, 32)));
    Ok(stored_values(samples.iter().map(|&v| v as u32 & bits), precision, lossy, f))
}

fn jpeg_ls(data: &[u8], f: Format) -> Result<Frame, String> {
    let h = jpeg_header(data).ok_or("unreadable JPEG-LS frame: no frame and scan header")?;
    if (h.cols, h.rows, h.components) != (f.cols, f.rows, 1) {
        return Err(format!(
            "the JPEG-LS frame is {}x{} with {} components but the data set says {}x{} monochrome",
            h.cols, h.rows, h.components, f.cols, f.rows
        ));
    }
    let decoded = jpegls::decode(&without_fill_bytes(data), f.cols as u32, f.rows as u32);
    let (pixels, ..) = decoded.map_err(|e| match e {
        jpegls::CodecError::Truncated { offset, .. } => {
            format!("unreadable JPEG-LS frame: its coded data is cut short or corrupt (at byte {offset})")
        }
        e => format!("unreadable JPEG-LS frame: {e}"),
    })?;
    if pixels.len() != f.rows * f.cols {
        return Err("the JPEG-LS frame decoded to the wrong number of samples".into());
    }
    // JPEG-LS codes signed samples as their bits, as lossless JPEG does.
    let lossy = (h.scan_parameter > 0).then_some("near-lossless JPEG-LS");
    Ok(stored_values(pixels.into_iter().map(u32::from), h.precision, lossy, f))
}

/// The stream without the 0xFF fill bytes a JPEG stream may carry before any marker (T.81
/// B.1.1.2; DCMTK pads an odd-length JPEG-LS frame so, before its EOI): `pure_jpegls` reads a
/// marker at once after each segment and the EOI right after the scan. A scan's own data never
/// ends in 0xFF (bit stuffing follows each 0xFF with a byte below 0x80). A stream whose header
/// cannot be walked is left as it is, for the decoder to refuse.
fn without_fill_bytes(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const SOS: u8 = 0xDA;
    let fill_at = |at: usize| data.get(at..at + 2) == Some(&[0xFF, 0xFF]);
    if !data.starts_with(&[0xFF, 0xD8]) || !data.windows(2).any(|w| w == [0xFF, 0xFF]) {
        return data.into();
    }
    // SOI, then each header segment up to and including the scan header, fill dropped.
    let mut out = data[..2].to_vec();
    let mut at = 2;
    loop {
        while fill_at(at) {
            at += 1;
        }
        let Some(&[0xFF, marker, hi, lo]) = data.get(at..at + 4) else {
            return data.into();
        };
        let end = at + 2 + u16::from_be_bytes([hi, lo]) as usize;
        let Some(segment) = data.get(at..end) else {
            return data.into();
        };
        out.extend_from_slice(segment);
        at = end;
        if marker == SOS {
            break;
        }
    }
    // The scan, then the EOI without the fill before it.
    let rest = &data[at..];
    match rest.windows(2).rposition(|w| w == [0xFF, 0xD9]) {
        Some(eoi) => {
            let fill = rest[..eoi].iter().rev().take_while(|&&b| b == 0xFF).count();
            out.extend_from_slice(&rest[..eoi - fill]);
            out.extend_from_slice(&rest[eoi..]);
        }
        None => out.extend_from_slice(rest),
    }
    out.into()
}

/// What a JPEG or JPEG-LS stream's frame header and first scan header say.
#[derive(Debug, PartialEq)]
struct JpegHeader {
    /// Sample precision in bits.
    precision: u16,
    cols: usize,
    rows: usize,
    components: u8,
    /// The scan header's first parameter after its component list: NEAR in JPEG-LS (the
    /// largest error the coding allows; 0 is lossless), Ss in JPEG.
    scan_parameter: u8,
}

/// A JPEG or JPEG-LS stream's frame header (SOFn, SOF55) and first scan header, read from the
/// marker segments before its scan.
fn jpeg_header(data: &[u8]) -> Option<JpegHeader> {
    // SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC); SOF55 (JPEG-LS).
    let is_frame = |m: u8| ((0xC0..=0xCF).contains(&m) && ![0xC4, 0xC8, 0xCC].contains(&m)) || m == 0xF7;
    const SOS: u8 = 0xDA;
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let (mut at, mut frame) = (2, None);
    while let Some(&[0xFF, marker, hi, lo]) = data.get(at..at + 4) {
        match marker {
            // A fill byte before a marker.
            0xFF => {
                at += 1;
                continue;
            }
            // Lf, P, Y (rows), X (columns), Nf, ...
            m if is_frame(m) => {
                let b = data.get(at + 4..at + 10)?;
                let size = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]) as usize;
                frame = Some((u16::from(b[0]), size(3), size(1), b[5]));
            }
            // Ls, Ns, (Cs, Tm or Td/Ta) per component, NEAR or Ss, ...
            SOS => {
                let (precision, cols, rows, components) = frame?;
                let ns = *data.get(at + 4)? as usize;
                let scan_parameter = *data.get(at + 5 + 2 * ns)?;
                return Some(JpegHeader {
                    precision,
                    cols,
                    rows,
                    components,
                    scan_parameter,
                });
            }
            _ => {}
        }
        at += 2 + u16::from_be_bytes([hi, lo]) as usize;
    }
    None
}

/// Whether a JPEG 2000 codestream codes with the irreversible 9/7 wavelet, which loses
/// information (the reversible 5/3 one can be lossless): in a COD or COC segment of the main
/// header or of any tile-part header (a COC or tile COD overrides the main COD).
fn irreversible_wavelet(data: &[u8]) -> bool {
    const SOC: [u8; 2] = [0xFF, 0x4F];
    const COD: u8 = 0x52;
    const COC: u8 = 0x53;
    const SOT: u8 = 0x90;
    const SOD: u8 = 0x93;
    // A JP2 file wrapped around the codestream (not DICOM's form, but seen) starts elsewhere.
    let Some(start) = data.windows(2).take(4096).position(|w| w == SOC) else {
        return false;
    };
    let mut at = start + 2;
    // Marker segments of the main header, then of each tile-part header (up to its SOD, after
    // which the tile-part's data runs to SOT + Psot).
    let mut tile_end: Option<usize> = None;
    while let Some(&[0xFF, marker, hi, lo]) = data.get(at..at + 4) {
        let len = u16::from_be_bytes([hi, lo]) as usize;
        match marker {
            // Scod, progression, layers (2), MCT, levels, block width, height, style, transform.
            COD if data.get(at + 13) == Some(&0) => return true,
            // Ccoc (one byte below 257 components), Scoc, levels, width, height, style, transform.
            COC if data.get(at + 10) == Some(&0) => return true,
            SOT => {
                // Isot, Psot (the tile-part's length from its SOT; 0: to the end), ...
                let psot = data
                    .get(at + 6..at + 10)
                    .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
                tile_end = (psot > 0).then_some(at + psot);
            }
            // The tile-part's data: on to the next tile-part header, if its length is known.
            SOD => match tile_end {
                Some(end) if end > at => {
                    at = end;
                    continue;
                }
                _ => return false,
            },
            _ => {}
        }
        at += 2 + len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_runs_literals_and_short_data() {
        // A literal of 3, a run of 4, a no-op, a literal of 1.
        let seg = [2, 1, 2, 3, (-3i8) as u8, 9, 0x80, 0, 7];
        assert_eq!(packbits(&seg, 100), vec![1, 2, 3, 9, 9, 9, 9, 7]);
        // Decoding stops at the limit, and at the end of the data.
        assert_eq!(packbits(&seg, 5), vec![1, 2, 3, 9, 9]);
        assert_eq!(packbits(&[5, 1], 10), vec![1]);
        assert_eq!(packbits(&[(-5i8) as u8], 10), Vec::<u8>::new());
    }

    #[test]
    fn rle_header_and_segments_are_checked() {
        let f = Format {
            rows: 1,
            cols: 2,
            bits: 16,
            stored: 16,
            shift: 0,
            signed: false,
        };
        // Two segments: high bytes [0x01, 0x02], low bytes [0x03, 0x04].
        let mut data = vec![0u8; 64];
        data[0] = 2;
        data[4] = 64;
        data[8] = 67;
        data.extend_from_slice(&[1, 0x01, 0x02, 1, 0x03, 0x04]);
        assert_eq!(
            native(&rle(&data, f).unwrap(), f).unwrap().values,
            vec![0x0103 as f32, 0x0204 as f32]
        );
        let mut wrong = data.clone();
        wrong[0] = 3;
        assert!(rle(&wrong, f).unwrap_err().contains("3 segments"));
        let mut outside = data.clone();
        outside[8] = 200;
        assert!(rle(&outside, f).unwrap_err().contains("outside"));
        assert!(rle(&data[..68], f).unwrap_err().contains("segment 1 decodes to 0 samples"));
        // A plane longer than Rows x Columns (by more than a padding byte) is not this image's.
        let g = Format { bits: 8, stored: 8, ..f };
        let mut long = vec![0u8; 64];
        long[0] = 1;
        long[4] = 64;
        long.extend_from_slice(&[3, 1, 2, 3, 4]);
        assert!(rle(&long, g).unwrap_err().contains("decodes to 4 or more samples"));
        assert_eq!(rle(&long[..67], g).unwrap(), vec![1, 2]);
        assert!(rle(&data[..10], f).is_err());
    }

    #[test]
    fn frames_are_told_apart_by_fragment_or_offset_table() {
        let frags = vec![vec![1u8, 2], vec![3, 4, 5, 6], vec![7, 8]];
        assert_eq!(split_frames(&frags, &[], 1, &[]).unwrap(), vec![vec![1, 2, 3, 4, 5, 6, 7, 8]]);
        assert_eq!(split_frames(&frags, &[], 3, &[]).unwrap(), frags);
        // Frame 2 starts at the third fragment: 8 + 2 + 8 + 4 bytes in.
        assert_eq!(
            split_frames(&frags, &[0, 22], 2, &[]).unwrap(),
            vec![vec![1, 2, 3, 4, 5, 6], vec![7, 8]]
        );
        assert!(split_frames(&frags, &[], 2, &[])
            .unwrap_err()
            .contains("without a usable offset table"));
        assert!(split_frames(&frags, &[0, 0], 2, &[]).is_err());
        // Entries past the data or within a fragment (10 and 22 are the starts) are unusable.
        for table in [[0, 500], [0, 12]] {
            assert!(split_frames(&frags, &table, 2, &[])
                .unwrap_err()
                .contains("without a usable offset table"));
        }
        // Without a table, by the fragments that open a stream (SOI here); a count that does not
        // match, or a first fragment that opens none, is refused.
        let soi = vec![vec![0xFF, 0xD8, 1], vec![2], vec![0xFF, 0xD8, 3], vec![4], vec![5]];
        let two = vec![vec![0xFF, 0xD8, 1, 2], vec![0xFF, 0xD8, 3, 4, 5]];
        assert_eq!(split_frames(&soi, &[], 2, &[0xFF, 0xD8]).unwrap(), two);
        assert!(split_frames(&soi, &[], 3, &[0xFF, 0xD8]).is_err());
        assert!(split_frames(&soi[1..], &[], 2, &[0xFF, 0xD8]).is_err());
    }

    /// Bits above BitsStored (overlays, junk) made a 12-bit image noise; 12-bit two's
    /// complement stored without sign extension read as +3,500 for -600.
    #[test]
    fn native_samples_keep_bits_stored_only() {
        let f = Format {
            rows: 1,
            cols: 2,
            bits: 16,
            stored: 12,
            shift: 0,
            signed: false,
        };
        let data = [0x34, 0xF2, 0xFF, 0x0F]; // 0xF234 (high bits set), 0x0FFF
        let frame = native(&data, f).unwrap();
        // The dropped bits are counted.
        assert_eq!((frame.values, frame.high_bits), (vec![0x234 as f32, 4095.0], 1));
        let s = Format { signed: true, ..f };
        // 0xDA8 is -600 in 12 bits, stored without extension; 0xFDA8 with; neither has bits
        // above BitsStored, 0x3DA8 has.
        let frame = native(&[0xA8, 0x0D, 0xA8, 0xFD, 0xA8, 0x3D], Format { cols: 3, ..s }).unwrap();
        assert_eq!((frame.values, frame.high_bits), (vec![-600.0, -600.0, -600.0], 1));
        // -2049 (0xF7FF) does not fit 12 bits: its high bits are set though its 12-bit sign is
        // not, so it is counted (it reads as +2047).
        let frame = native(&[0xFF, 0xF7], Format { cols: 1, ..s }).unwrap();
        assert_eq!((frame.values, frame.high_bits), (vec![2047.0], 1));
        // HighBit 15 with 12 bits stored: the sample in the word's high bits; bits below it
        // are not above BitsStored.
        let high = Format { shift: 4, ..f };
        let frame = native(&[0x3F, 0x12, 0x0F, 0x00], high).unwrap();
        assert_eq!((frame.values, frame.high_bits), (vec![0x123 as f32, 0.0], 0));
        let s8 = Format {
            bits: 8,
            stored: 8,
            signed: true,
            ..f
        };
        assert_eq!(native(&[0xFF, 0x7F], s8).unwrap().values, vec![-1.0, 127.0]);
    }

    #[test]
    fn signed_samples_are_sign_extended_from_bits_stored() {
        assert_eq!(sign_extend(0xFFF, 12), -1.0);
        assert_eq!(sign_extend(0x7FF, 12), 2047.0);
        assert_eq!(sign_extend(0xFFFF, 16), -1.0);
        assert_eq!(sign_extend(0x1FFFF, 16), -1.0);
    }

    /// The 9/7 wavelet was looked for in the main COD only; a COC or a tile-part COD sets it too.
    #[test]
    fn the_irreversible_wavelet_is_found_wherever_it_is_set() {
        let soc_siz = [0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x04, 0xAA, 0xAA];
        // COD: marker, length 12, Scod, progression, layers (2), MCT, levels, cb w, cb h, style, transform.
        let cod = |t: u8| vec![0xFF, 0x52, 0x00, 0x0C, 0, 0, 0, 1, 0, 5, 4, 4, 0, t];
        // COC: marker, length 9, Ccoc, Scoc, levels, cb w, cb h, style, transform.
        let coc = |t: u8| vec![0xFF, 0x53, 0x00, 0x09, 0, 0, 5, 4, 4, 0, t];
        // SOT: marker, length 10, Isot, Psot (whole tile-part), TPsot, TNsot; then SOD and data.
        let tile = |header: Vec<u8>| {
            let psot = (12 + header.len() + 2 + 4) as u32;
            let mut t = vec![0xFF, 0x90, 0x00, 0x0A, 0, 0];
            t.extend(psot.to_be_bytes());
            t.extend([0, 1]);
            t.extend(header);
            t.extend([0xFF, 0x93, 1, 2, 3, 4]);
            t
        };
        let stream = |parts: Vec<Vec<u8>>| [soc_siz.to_vec(), parts.concat(), vec![0xFF, 0xD9]].concat();
        assert!(!irreversible_wavelet(&stream(vec![cod(1), tile(vec![])])));
        assert!(irreversible_wavelet(&stream(vec![cod(0), tile(vec![])])));
        assert!(irreversible_wavelet(&stream(vec![cod(1), coc(0), tile(vec![])])));
        assert!(irreversible_wavelet(&stream(vec![cod(1), tile(vec![]), tile(cod(0))])));
        assert!(!irreversible_wavelet(&stream(vec![cod(1), tile(coc(1))])));
    }

    #[test]
    fn a_jpeg_ls_header_gives_precision_size_components_and_near() {
        // SOI, an APP segment, SOF55 (12 bits, 40 x 56, Nf components), SOS (NEAR 3, ILV 0).
        let stream = |nf: u8, near: u8| {
            let mut s = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAB, 0xCD];
            s.extend([0xFF, 0xF7, 0x00, 0x0B, 12, 0x00, 40, 0x00, 56, nf, 1, 0x11, 0]);
            s.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, near, 0x00, 0x00, 0x55]);
            s
        };
        let header = |components, scan_parameter| JpegHeader {
            precision: 12,
            cols: 56,
            rows: 40,
            components,
            scan_parameter,
        };
        assert_eq!(jpeg_header(&stream(1, 3)), Some(header(1, 3)));
        assert_eq!(jpeg_header(&stream(3, 0)), Some(header(3, 0)));
        let whole = stream(1, 0);
        // A fill byte before a marker is passed over.
        assert_eq!(jpeg_header(&[&whole[..8], &[0xFF], &whole[8..]].concat()), Some(header(1, 0)));
        // Cut before the scan's NEAR, without a frame header, or not a JPEG stream: nothing to tell.
        assert_eq!(jpeg_header(&whole[..whole.len() - 6]), None);
        assert_eq!(jpeg_header(&[&whole[..8], &whole[21..]].concat()), None);
        assert_eq!(jpeg_header(&whole[2..]), None);
    }

    #[test]
    fn fill_bytes_before_markers_are_dropped() {
        // SOI, an APP segment, SOS, scan data, EOI (and a pad byte), with `fill` 0xFF bytes
        // before the APP, the SOS and the EOI.
        let stream = |fill: usize| {
            let f = vec![0xFF; fill];
            [
                &[0xFF, 0xD8][..],
                &f,
                &[0xFF, 0xE0, 0x00, 0x03, 0xAB],
                &f,
                &[0xFF, 0xDA, 0x00, 0x03, 0x01],
                &[0x12, 0xFF, 0x34],
                &f,
                &[0xFF, 0xD9, 0x00],
            ]
            .concat()
        };
        for fill in [0, 1, 3] {
            assert_eq!(without_fill_bytes(&stream(fill)).as_ref(), stream(0).as_slice(), "{fill}");
        }
        // Not a JPEG stream, or a header that cannot be walked: as it is.
        assert_eq!(without_fill_bytes(&[0x12, 0xFF, 0xFF]).as_ref(), &[0x12, 0xFF, 0xFF]);
        let cut = &stream(1)[..8];
        assert_eq!(without_fill_bytes(cut).as_ref(), cut);
    }

    #[test]
    fn whole_words_coded_above_bits_stored_keep_their_high_bit_place() {
        // 12 bits stored under HighBit 15: a 16-bit stream holds the word, a 12-bit one the bits.
        let f = Format {
            rows: 1,
            cols: 1,
            bits: 16,
            stored: 12,
            shift: 4,
            signed: false,
        };
        let frame = |samples: Vec<u32>, precision, f| stored_values(samples, precision, None, f);
        assert_eq!(frame(vec![0xABC0], 16, f).values, [0xABC as f32]);
        assert_eq!(frame(vec![0x0ABC], 12, f).values, [0xABC as f32]);
        let signed = Format { signed: true, ..f };
        assert_eq!(frame(vec![0xFFF0], 16, signed).values, [-1.0]);
        // 16-bit samples under 12 bits stored at HighBit 11: the top 4 bits are above it.
        let low = Format { shift: 0, ..f };
        assert_eq!(frame(vec![0x1ABC, 0x0ABC], 16, low).high_bits, 1);
    }

    #[test]
    fn lossy_coding_is_told_from_the_syntax_and_the_flag() {
        assert_eq!(lossy_note(Loss::Never, "RLE Lossless", None, None), None);
        assert!(lossy_note(Loss::Never, "RLE Lossless", Some("01"), None)
            .unwrap()
            .contains("before"));
        assert!(lossy_note(Loss::Always, "JPEG Baseline", Some("00"), None)
            .unwrap()
            .contains("lossy JPEG Baseline"));
        assert_eq!(lossy_note(Loss::Maybe, "JPEG 2000", Some("00"), None), None);
        assert!(lossy_note(Loss::Maybe, "JPEG 2000", Some("01"), None)
            .unwrap()
            .contains("lossy JPEG 2000"));
        assert!(lossy_note(Loss::Maybe, "HTJ2K", None, None).unwrap().contains("may be lossy"));
        // What the stream says overrides the label and the flag.
        let mislabelled = lossy_note(Loss::Never, "JPEG Lossless SV1", Some("00"), Some("DCT JPEG")).unwrap();
        assert!(mislabelled.contains("coded lossily (DCT JPEG)"), "{mislabelled}");
        assert!(lossy_note(Loss::Maybe, "JPEG 2000", Some("00"), Some("irreversible 9/7 wavelet"))
            .unwrap()
            .contains("lossy JPEG 2000"));
        // JPEG-LS Near-Lossless is lossless exactly when its stream's NEAR is 0.
        assert_eq!(lossy_note(Loss::Stream, "JPEG-LS Near-Lossless", None, None), None);
        let near = lossy_note(Loss::Stream, "JPEG-LS Near-Lossless", Some("00"), Some("near-lossless JPEG-LS"));
        assert!(near.unwrap().contains("lossy JPEG-LS Near-Lossless"));
    }

    #[test]
    fn unread_syntaxes_are_named() {
        assert_eq!(encoding("1.2.840.10008.1.2.4.70").unwrap().0, Encoding::Jpeg);
        assert_eq!(encoding("1.2.840.10008.1.2.4.81").unwrap().0, Encoding::JpegLs);
        let e = encoding("1.2.840.10008.1.2.4.51").unwrap_err();
        assert!(e.contains("JPEG Extended (12-bit lossy)") && e.contains("decompress"), "{e}");
        assert!(encoding("1.2.3.4").unwrap_err().contains("1.2.3.4"));
    }
}
