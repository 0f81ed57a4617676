//! Byte-class bit masks of a text, 16 bytes at a time: the free-text scanner finds tokens,
//! marks and defang candidates from these instead of visiting the text byte by byte (a
//! per-byte loop branches at every token boundary, and the boundaries are unpredictable).
//! SSE2 (part of the x86_64 baseline) where available; elsewhere a table gives the same bits.

/// Bit `i` of a word is set when byte `64 * word + i` of the text is of the class.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct ByteMasks {
    /// Bytes that may be part of a token: `[A-Za-z0-9._:@-]`.
    pub token: Vec<u64>,
    /// `.`, `:`, `@`: a token with one can be a non-hash observable.
    pub mark: Vec<u64>,
    /// `:` (a `scheme://` separator starts at one).
    pub colon: Vec<u64>,
    /// `[`, `(`: defanged marks (`[.]`, `(@)`) start at one.
    pub open: Vec<u64>,
    /// `{` (`{.}`).
    pub brace: Vec<u64>,
    /// `x`, `X` (`hxxp`).
    pub x: Vec<u64>,
}

/// The classes, as bits of one byte's entry in [`CLASSES`].
const TOKEN: u8 = 1;
const MARK: u8 = 2;
const COLON: u8 = 4;
const OPEN: u8 = 8;
const BRACE: u8 = 16;
const X: u8 = 32;

const fn class_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        let mut class = 0;
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            class |= TOKEN;
        }
        if b == b'.' || b == b':' || b == b'@' {
            class |= TOKEN | MARK;
        }
        if b == b':' {
            class |= COLON;
        }
        if b == b'[' || b == b'(' {
            class |= OPEN;
        }
        if b == b'{' {
            class |= BRACE;
        }
        if b == b'x' || b == b'X' {
            class |= X;
        }
        table[byte] = class;
        byte += 1;
    }
    table
}

/// The classes of each byte value (the scalar definition the SIMD path must agree with).
static CLASSES: [u8; 256] = class_table();

impl ByteMasks {
    /// Replaces the masks with those of `bytes`.
    pub fn build(&mut self, bytes: &[u8]) {
        for masks in [
            &mut self.token,
            &mut self.mark,
            &mut self.colon,
            &mut self.open,
            &mut self.brace,
            &mut self.x,
        ] {
            masks.clear();
        }
        for block in bytes.chunks(64) {
            let mut words = [0u64; 6];
            for (part, chunk) in block.chunks(16).enumerate() {
                let classes = match <&[u8; 16]>::try_from(chunk) {
                    Ok(full) => classes16(full),
                    Err(_) => {
                        // The tail: zero bytes belong to no class.
                        let mut padded = [0u8; 16];
                        padded[..chunk.len()].copy_from_slice(chunk);
                        classes16(&padded)
                    }
                };
                for (word, class) in words.iter_mut().zip(classes) {
                    *word |= u64::from(class) << (part * 16);
                }
            }
            self.token.push(words[0]);
            self.mark.push(words[1]);
            self.colon.push(words[2]);
            self.open.push(words[3]);
            self.brace.push(words[4]);
            self.x.push(words[5]);
        }
    }

    /// Whether the token mask has a run of at least 32 set bits (a token long enough to be
    /// a bare hash).
    pub fn has_long_token(&self) -> bool {
        let mut previous = 0u64;
        self.token.iter().any(|&word| {
            // Bit j of `run` is set when bits j..j+32 of (word:previous) are all set.
            let mut run = (u128::from(word) << 64) | u128::from(previous);
            previous = word;
            for shift in [1, 2, 4, 8, 16] {
                run &= run >> shift;
            }
            run != 0
        })
    }
}

/// Whether any bit is set.
pub fn any(masks: &[u64]) -> bool {
    masks.iter().any(|word| *word != 0)
}

/// The first set bit at or after `from`.
#[inline]
pub fn next_one(masks: &[u64], from: usize) -> Option<usize> {
    let mut word = from / 64;
    let mut bits = masks.get(word)? & (u64::MAX << (from % 64));
    while bits == 0 {
        word += 1;
        bits = *masks.get(word)?;
    }
    Some(word * 64 + bits.trailing_zeros() as usize)
}

/// The last clear bit before `before`, if any.
#[inline]
pub fn prev_zero(masks: &[u64], before: usize) -> Option<usize> {
    if before == 0 {
        return None;
    }
    let mut word = (before - 1) / 64;
    let below = before - word * 64; // 1..=64 bits of this word lie below `before`
    let mut bits = !masks.get(word).copied().unwrap_or(0) & (u64::MAX >> (64 - below));
    while bits == 0 {
        if word == 0 {
            return None;
        }
        word -= 1;
        bits = !masks.get(word).copied().unwrap_or(0);
    }
    Some(word * 64 + 63 - bits.leading_zeros() as usize)
}

/// The first clear bit at or after `from` (bits past the text are clear).
#[inline]
pub fn next_zero(masks: &[u64], from: usize) -> usize {
    let mut word = from / 64;
    let Some(first) = masks.get(word) else {
        return from;
    };
    let mut bits = !first & (u64::MAX << (from % 64));
    while bits == 0 {
        word += 1;
        match masks.get(word) {
            Some(next) => bits = !next,
            None => return word * 64,
        }
    }
    word * 64 + bits.trailing_zeros() as usize
}

/// Whether a bit in `start..end` is set.
#[inline]
pub fn any_in(masks: &[u64], start: usize, end: usize) -> bool {
    if start >= end {
        return false;
    }
    let (first, last) = (start / 64, (end - 1) / 64);
    (first..=last).any(|word| {
        let mut bits = masks.get(word).copied().unwrap_or(0);
        if word == first {
            bits &= u64::MAX << (start % 64);
        }
        if word == last {
            bits &= u64::MAX >> (63 - (end - 1) % 64);
        }
        bits != 0
    })
}

/// The six class masks of 16 bytes, in the order of [`ByteMasks`]' fields.
#[cfg(target_arch = "x86_64")]
#[inline]
fn classes16(chunk: &[u8; 16]) -> [u16; 6] {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so every intrinsic here is available; the
    // one load reads exactly the 16 bytes of `chunk` (unaligned loads are allowed).
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let eq = |x: __m128i, byte: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(byte as i8));
        // `lo <= x <= hi` with signed compares: shift the range down to start at -128.
        let in_range = |x: __m128i, lo: u8, hi: u8| {
            let shifted = _mm_add_epi8(x, _mm_set1_epi8(0x80u8.wrapping_sub(lo) as i8));
            _mm_cmplt_epi8(
                shifted,
                _mm_set1_epi8(0x80u8.wrapping_add(hi - lo + 1) as i8),
            )
        };
        let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
        let colon = eq(v, b':');
        let mark = _mm_or_si128(_mm_or_si128(eq(v, b'.'), colon), eq(v, b'@'));
        let word = _mm_or_si128(
            _mm_or_si128(in_range(lower, b'a', b'z'), in_range(v, b'0', b'9')),
            _mm_or_si128(eq(v, b'-'), eq(v, b'_')),
        );
        let token = _mm_or_si128(word, mark);
        let open = _mm_or_si128(eq(v, b'['), eq(v, b'('));
        let bits = |x: __m128i| _mm_movemask_epi8(x) as u16;
        [
            bits(token),
            bits(mark),
            bits(colon),
            bits(open),
            bits(eq(v, b'{')),
            bits(eq(lower, b'x')),
        ]
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn classes16(chunk: &[u8; 16]) -> [u16; 6] {
    classes16_table(chunk)
}

/// [`classes16`] from the class table, one byte at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classes16_table(chunk: &[u8; 16]) -> [u16; 6] {
    let mut out = [0u16; 6];
    for (idx, byte) in chunk.iter().enumerate() {
        let class = CLASSES[usize::from(*byte)];
        for (bit, mask) in [TOKEN, MARK, COLON, OPEN, BRACE, X]
            .into_iter()
            .zip(&mut out)
        {
            if class & bit != 0 {
                *mask |= 1 << idx;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_classes_equal_the_table_for_every_byte_at_every_position() {
        for byte in 0..=255u8 {
            for position in 0..16 {
                let mut chunk = [b' '; 16];
                chunk[position] = byte;
                assert_eq!(
                    classes16(&chunk),
                    classes16_table(&chunk),
                    "byte {byte:#04x} at {position}"
                );
            }
        }
    }

    #[test]
    fn masks_of_a_long_text_and_bit_walks() {
        // 150 bytes: three words, the last one partial.
        let text: Vec<u8> = (0..150u8)
            .map(|n| b"ab.:x[({ -@\xc3\xa9"[usize::from(n) % 13])
            .collect();
        let mut masks = ByteMasks::default();
        masks.build(&text);
        assert_eq!(masks.token.len(), 3);
        for (idx, byte) in text.iter().enumerate() {
            let class = CLASSES[usize::from(*byte)];
            let bit = |masks: &[u64]| masks[idx / 64] >> (idx % 64) & 1 == 1;
            assert_eq!(bit(&masks.token), class & TOKEN != 0, "{idx}");
            assert_eq!(bit(&masks.mark), class & MARK != 0, "{idx}");
            assert_eq!(bit(&masks.colon), class & COLON != 0, "{idx}");
            assert_eq!(bit(&masks.open), class & OPEN != 0, "{idx}");
            assert_eq!(bit(&masks.brace), class & BRACE != 0, "{idx}");
            assert_eq!(bit(&masks.x), class & X != 0, "{idx}");
        }
        // Bits past the text are clear.
        assert_eq!(masks.token[2] >> (150 - 128), 0);

        let words = [0b1011_0000u64, 0, 1 << 63];
        assert_eq!(next_one(&words, 0), Some(4));
        assert_eq!(next_one(&words, 5), Some(5));
        assert_eq!(next_one(&words, 8), Some(191));
        assert_eq!(next_one(&words, 192), None);
        assert_eq!(next_zero(&words, 4), 6);
        assert_eq!(next_zero(&words, 7), 8);
        assert_eq!(next_zero(&words, 191), 192);
        assert_eq!(next_zero(&[u64::MAX], 3), 64);
        assert!(any_in(&words, 0, 5));
        assert!(!any_in(&words, 0, 4));
        assert!(!any_in(&words, 8, 191));
        assert!(any_in(&words, 8, 192));
        assert!(!any_in(&words, 5, 5));
        assert!(any(&words));
        assert!(!any(&[0, 0]));
        assert_eq!(prev_zero(&words, 6), Some(3));
        assert_eq!(prev_zero(&words, 4), Some(3));
        assert_eq!(prev_zero(&words, 0), None);
        assert_eq!(prev_zero(&[u64::MAX, 1], 65), None);
        assert_eq!(prev_zero(&[u64::MAX, 1], 66), Some(65));
        assert_eq!(prev_zero(&[u64::MAX, 0], 64), None);
        assert_eq!(prev_zero(&[0, u64::MAX], 100), Some(63));

        let long = |len: usize, at: usize| {
            let mut masks = ByteMasks::default();
            let mut text = vec![b' '; 200];
            text[at..at + len].fill(b'a');
            masks.build(&text);
            masks.has_long_token()
        };
        for at in [0, 10, 40, 63, 64, 100, 168] {
            assert!(long(32, at), "32 at {at}");
            assert!(!long(31, at), "31 at {at}");
        }
    }
}
