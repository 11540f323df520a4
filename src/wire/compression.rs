//! The OP_COMPRESSED compressors and bounded decompression.
//!
//! Decompression never trusts the declared size for an allocation: snappy's own length
//! preamble must equal the declared size and be reachable from the input (a snappy block
//! expands at most about 21 times), and zlib and zstd stream into a buffer that grows only as
//! output appears and stops one byte past the declared size.

use std::io::Read;

use super::error::{DecodeErrorKind, EncodeError};

/// A compressor id of OP_COMPRESSED, as negotiated in the handshake's `compression` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compressor {
    /// 0: the message travels uncompressed inside the wrapper.
    Noop,
    /// 1: raw (unframed) snappy.
    Snappy,
    /// 2: zlib (RFC 1950: deflate with the zlib header and Adler-32 trailer).
    Zlib,
    /// 3: zstd frames.
    Zstd,
}

/// Upper bound on the snappy expansion ratio: the densest element, a 3-byte copy, yields 64 bytes.
const SNAPPY_MAX_EXPANSION: usize = 22;

impl Compressor {
    /// The id on the wire.
    pub fn id(self) -> u8 {
        match self {
            Compressor::Noop => 0,
            Compressor::Snappy => 1,
            Compressor::Zlib => 2,
            Compressor::Zstd => 3,
        }
    }

    /// The compressor for an id on the wire.
    pub fn from_id(id: u8) -> Option<Compressor> {
        match id {
            0 => Some(Compressor::Noop),
            1 => Some(Compressor::Snappy),
            2 => Some(Compressor::Zlib),
            3 => Some(Compressor::Zstd),
            _ => None,
        }
    }

    /// The name used in connection strings and the handshake (`snappy`, `zlib`, `zstd`, `noop`).
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Noop => "noop",
            Compressor::Snappy => "snappy",
            Compressor::Zlib => "zlib",
            Compressor::Zstd => "zstd",
        }
    }

    /// The compressor with this name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Compressor> {
        [Compressor::Noop, Compressor::Snappy, Compressor::Zlib, Compressor::Zstd]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Decompresses `input`, which must expand to exactly `declared` bytes, appending to `out`.
pub fn decompress(
    compressor: Compressor,
    input: &[u8],
    declared: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeErrorKind> {
    let start = out.len();
    match compressor {
        Compressor::Noop => out.extend_from_slice(input),
        Compressor::Snappy => decompress_snappy(input, declared, out)?,
        Compressor::Zlib => read_bounded(flate2::read::ZlibDecoder::new(input), input.len(), declared, out)?,
        Compressor::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(decompression_error)?;
            read_bounded(decoder, input.len(), declared, out)?;
        }
    }
    let actual = out.len() - start;
    if actual != declared {
        out.truncate(start);
        return Err(DecodeErrorKind::UncompressedSizeMismatch { declared, actual });
    }
    Ok(())
}

fn decompress_snappy(input: &[u8], declared: usize, out: &mut Vec<u8>) -> Result<(), DecodeErrorKind> {
    let actual = snap::raw::decompress_len(input).map_err(decompression_error)?;
    if actual != declared {
        return Err(DecodeErrorKind::UncompressedSizeMismatch { declared, actual });
    }
    if actual > input.len().saturating_mul(SNAPPY_MAX_EXPANSION).saturating_add(64) {
        return Err(DecodeErrorKind::Decompression(format!(
            "snappy preamble claims {actual} bytes from {} compressed bytes",
            input.len()
        )));
    }
    let start = out.len();
    out.resize(start + actual, 0);
    let written = snap::raw::Decoder::new()
        .decompress(input, out.get_mut(start..).unwrap_or_default())
        .map_err(|e| {
            out.truncate(start);
            decompression_error(e)
        })?;
    out.truncate(start + written);
    Ok(())
}

/// Reads at most `declared + 1` bytes, so too much output is detected without producing it all.
/// The first reservation is bounded by what the input could plausibly expand to.
fn read_bounded(
    reader: impl Read,
    input_len: usize,
    declared: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecodeErrorKind> {
    let limit = u64::try_from(declared).unwrap_or(u64::MAX).saturating_add(1);
    out.reserve(declared.min(input_len.saturating_mul(8).saturating_add(1024)));
    reader.take(limit).read_to_end(out).map_err(decompression_error)?;
    Ok(())
}

fn decompression_error(error: impl std::fmt::Display) -> DecodeErrorKind {
    DecodeErrorKind::Decompression(error.to_string())
}

/// Compresses `input` and appends the result to `out`. `level` applies to zlib (0-9) and zstd
/// (1-22); `None` takes each library's default.
pub fn compress(
    compressor: Compressor,
    input: &[u8],
    level: Option<i32>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let error = |e: std::io::Error| EncodeError::Compression(e.to_string());
    match compressor {
        Compressor::Noop => out.extend_from_slice(input),
        Compressor::Snappy => {
            let start = out.len();
            out.resize(start + snap::raw::max_compress_len(input.len()), 0);
            let written = snap::raw::Encoder::new()
                .compress(input, out.get_mut(start..).unwrap_or_default())
                .map_err(|e| EncodeError::Compression(e.to_string()))?;
            out.truncate(start + written);
        }
        Compressor::Zlib => {
            let level = match level.and_then(|l| u32::try_from(l).ok()) {
                Some(l) => flate2::Compression::new(l.min(9)),
                None => flate2::Compression::default(),
            };
            let mut encoder = flate2::write::ZlibEncoder::new(out, level);
            std::io::Write::write_all(&mut encoder, input).map_err(error)?;
            encoder.finish().map_err(error)?;
        }
        Compressor::Zstd => {
            let level = level.unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL);
            zstd::stream::copy_encode(input, out, level).map_err(error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compressor; 4] = [Compressor::Noop, Compressor::Snappy, Compressor::Zlib, Compressor::Zstd];

    fn sample() -> Vec<u8> {
        (0..10_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect()
    }

    #[test]
    fn names_and_ids_round_trip() {
        for c in ALL {
            assert_eq!(Compressor::from_id(c.id()), Some(c));
            assert_eq!(Compressor::from_name(c.name()), Some(c));
            assert_eq!(Compressor::from_name(&c.name().to_uppercase()), Some(c));
        }
        assert_eq!(Compressor::from_id(4), None);
        assert_eq!(Compressor::from_name("lz4"), None);
    }

    #[test]
    fn every_compressor_round_trips() {
        let input = sample();
        for c in ALL {
            let mut compressed = Vec::new();
            compress(c, &input, None, &mut compressed).unwrap();
            let mut out = b"prefix".to_vec();
            decompress(c, &compressed, input.len(), &mut out).unwrap();
            assert_eq!(&out[..6], b"prefix", "{c}");
            assert_eq!(&out[6..], &input[..], "{c}");
        }
    }

    #[test]
    fn declared_size_must_match_for_every_compressor() {
        let input = sample();
        for c in ALL {
            let mut compressed = Vec::new();
            compress(c, &input, Some(1), &mut compressed).unwrap();
            for declared in [input.len() - 1, input.len() + 1] {
                let mut out = Vec::new();
                let err = decompress(c, &compressed, declared, &mut out).unwrap_err();
                assert!(
                    matches!(err, DecodeErrorKind::UncompressedSizeMismatch { .. }),
                    "{c}: {err}"
                );
                assert!(out.len() <= declared + 1, "{c}: produced {} bytes", out.len());
            }
        }
    }

    #[test]
    fn zlib_bomb_stops_one_byte_past_the_declared_size() {
        let zeros = vec![0u8; 8 << 20];
        let mut bomb = Vec::new();
        compress(Compressor::Zlib, &zeros, Some(9), &mut bomb).unwrap();
        assert!(bomb.len() < 16 << 10, "8 MiB of zeros compress to {} bytes", bomb.len());
        let mut out = Vec::new();
        let err = decompress(Compressor::Zlib, &bomb, 1000, &mut out).unwrap_err();
        assert_eq!(
            err,
            DecodeErrorKind::UncompressedSizeMismatch {
                declared: 1000,
                actual: 1001
            }
        );
        assert!(
            out.capacity() < 1 << 20,
            "capacity {} grew with the bomb",
            out.capacity()
        );
    }

    #[test]
    fn zstd_bomb_stops_one_byte_past_the_declared_size() {
        let zeros = vec![0u8; 8 << 20];
        let mut bomb = Vec::new();
        compress(Compressor::Zstd, &zeros, Some(19), &mut bomb).unwrap();
        let mut out = Vec::new();
        let err = decompress(Compressor::Zstd, &bomb, 4096, &mut out).unwrap_err();
        assert_eq!(
            err,
            DecodeErrorKind::UncompressedSizeMismatch {
                declared: 4096,
                actual: 4097
            }
        );
    }

    #[test]
    fn snappy_preamble_larger_than_the_input_can_expand_is_rejected_before_allocating() {
        // Preamble varint for 40,000,000 followed by a single literal byte.
        let mut input = Vec::new();
        let mut n: u32 = 40_000_000;
        while n >= 0x80 {
            input.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
            n >>= 7;
        }
        input.push(u8::try_from(n).unwrap());
        input.extend_from_slice(&[0x00, b'x']);
        let mut out = Vec::new();
        let err = decompress(Compressor::Snappy, &input, 40_000_000, &mut out).unwrap_err();
        assert!(
            matches!(err, DecodeErrorKind::Decompression(ref m) if m.contains("claims")),
            "{err}"
        );
        assert_eq!(out.capacity(), 0);
    }

    #[test]
    fn corrupt_payloads_are_errors() {
        for c in [Compressor::Snappy, Compressor::Zlib, Compressor::Zstd] {
            let mut out = Vec::new();
            let err = decompress(c, b"\x05not compressed at all", 5, &mut out).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeErrorKind::Decompression(_) | DecodeErrorKind::UncompressedSizeMismatch { .. }
                ),
                "{c}: {err}"
            );
        }
    }
}
