//! Token counting with OpenAI's o200k_base encoding (GPT-4o, GPT-4.1, o-series), embedded in
//! the binary: nothing is downloaded, and the rank table is static data read in place through a
//! 2 MB hash index built on first use (tiktoken's own tables take ~48 MB).
//!
//! Counts match tiktoken's `encode_ordinary` exactly (a test compares them). For other vendors'
//! models the count is an estimate, which is all the gateway needs it for: the hold before a
//! request, and billing when an upstream reports no usage.

use std::sync::LazyLock;

use regex::Regex;

/// Pieces longer than this are counted in slices (see `count_piece`).
const MAX_PIECE_BYTES: usize = 256;

static TABLE: &[u8] = include_bytes!("o200k_base.bin");

/// The o200k pre-tokenizer without its one look-ahead alternative (`\s+(?!\S)`), which
/// [`Tokenizer::pieces`] applies by hand because the `regex` crate has no look-around.
const PRE_TOKENIZER: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+",
);

/// Counts tokens. Cheap to share: the token data is static.
pub struct Tokenizer {
    pre_tokenizer: Regex,
    offsets: &'static [u8],
    ranks: &'static [u8],
    arena: &'static [u8],
    /// Open-addressing hash index over the tokens: slot → token position + 1 (0 = empty).
    index: Vec<u32>,
}

/// A fast non-cryptographic hash of a short byte string (tokens are at most a few dozen bytes).
fn hash_bytes(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hash = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    hash ^ (hash >> 29)
}

static SHARED: LazyLock<Tokenizer> = LazyLock::new(Tokenizer::new);

/// The process-wide tokenizer. Its tables are immutable static data; only the compiled
/// pre-tokenizer regex is built, once, on first use.
pub fn shared() -> &'static Tokenizer {
    &SHARED
}

fn read_u32(bytes: &[u8], index: usize) -> u32 {
    let at = index * 4;
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Tokenizer {
    fn new() -> Tokenizer {
        assert_eq!(
            &TABLE[..8],
            b"TGBPE1\0\0",
            "embedded tokenizer table is corrupt"
        );
        let count = read_u32(&TABLE[8..12], 0) as usize;
        let offsets_start = 12;
        let ranks_start = offsets_start + (count + 1) * 4;
        let arena_start = ranks_start + count * 4;
        let mut tokenizer = Tokenizer {
            #[allow(clippy::expect_used)]
            pre_tokenizer: Regex::new(PRE_TOKENIZER).expect("the pre-tokenizer pattern is valid"),
            offsets: &TABLE[offsets_start..ranks_start],
            ranks: &TABLE[ranks_start..arena_start],
            arena: &TABLE[arena_start..],
            index: Vec::new(),
        };
        // At most half full, so probes stay short.
        let slots = (count * 2).next_power_of_two();
        let mut index = vec![0_u32; slots];
        for position in 0..count {
            let mut slot = hash_bytes(tokenizer.token_bytes(position)) as usize & (slots - 1);
            while index[slot] != 0 {
                slot = (slot + 1) & (slots - 1);
            }
            index[slot] = position as u32 + 1;
        }
        tokenizer.index = index;
        tokenizer
    }

    fn token_bytes(&self, index: usize) -> &'static [u8] {
        let start = read_u32(self.offsets, index) as usize;
        let end = read_u32(self.offsets, index + 1) as usize;
        &self.arena[start..end]
    }

    /// The rank of a byte sequence, if it is a token.
    fn rank(&self, bytes: &[u8]) -> Option<u32> {
        let mask = self.index.len() - 1;
        let mut slot = hash_bytes(bytes) as usize & mask;
        loop {
            let entry = self.index[slot];
            if entry == 0 {
                return None;
            }
            let position = entry as usize - 1;
            if self.token_bytes(position) == bytes {
                return Some(read_u32(self.ranks, position));
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Number of tokens in `text`.
    pub fn count(&self, text: &str) -> usize {
        let mut tokens = 0;
        self.pieces(text, |piece| tokens += self.count_piece(piece.as_bytes()));
        tokens
    }

    /// Splits text the way o200k's pre-tokenizer does and hands each piece to `each`.
    fn pieces<'t>(&self, text: &'t str, mut each: impl FnMut(&'t str)) {
        let mut at = 0;
        while at < text.len() {
            let Some(found) = self.pre_tokenizer.find_at(text, at) else {
                // Every character matches some alternative; this is unreachable in practice,
                // but counting the rest as one piece is safe.
                each(&text[at..]);
                return;
            };
            let mut end = found.end();
            let piece = found.as_str();
            // A whitespace run without line breaks came from the final `\s+` alternative. In
            // tiktoken the look-ahead alternative `\s+(?!\S)` would have matched first: when the
            // run is followed by text, its last character is left to start the next piece.
            if end < text.len()
                && piece.chars().all(char::is_whitespace)
                && !piece.contains(['\r', '\n'])
                && let Some((last_start, _)) = piece.char_indices().next_back()
                && last_start > 0
            {
                end = found.start() + last_start;
            }
            each(&text[found.start()..end]);
            at = end;
        }
    }

    /// Byte-pair merges on one piece: repeatedly join the adjacent pair whose joined bytes have
    /// the lowest rank, until no adjacent pair is a token. Returns the number of parts left.
    fn count_piece(&self, piece: &[u8]) -> usize {
        // Merging is quadratic in the piece length. Real text has short pieces; a megabyte-long
        // "word" in a hostile request is counted in slices instead, which keeps the cost linear
        // and the count within a token per slice of the exact figure.
        if piece.len() > MAX_PIECE_BYTES {
            return piece
                .chunks(MAX_PIECE_BYTES)
                .map(|chunk| self.count_piece(chunk))
                .sum();
        }
        if piece.len() <= 1 || self.rank(piece).is_some() {
            return usize::from(!piece.is_empty());
        }
        // `bounds[i]` is where part i starts; the last entry is the end of the piece.
        let mut bounds: Vec<usize> = (0..=piece.len()).collect();
        // `pair_rank[i]` is the rank of parts i and i+1 joined, or None.
        let mut pair_rank: Vec<Option<u32>> = (0..piece.len() - 1)
            .map(|i| self.rank(&piece[i..i + 2]))
            .collect();
        loop {
            let best = pair_rank
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.map(|r| (r, i)))
                .min();
            let Some((_, i)) = best else { break };
            // Join part i with part i+1.
            bounds.remove(i + 1);
            pair_rank.remove(i);
            if i + 1 < bounds.len() - 1 {
                pair_rank[i] = self.rank(&piece[bounds[i]..bounds[i + 2]]);
            } else {
                pair_rank.truncate(i);
            }
            if i > 0 {
                pair_rank[i - 1] = self.rank(&piece[bounds[i - 1]..bounds[i + 1]]);
            }
        }
        bounds.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_simple_text() {
        let t = shared();
        assert_eq!(t.count(""), 0);
        assert_eq!(t.count("hello"), 1);
        assert_eq!(t.count("Hello, world!"), 4);
    }

    /// Compares with tiktoken's reference implementation over text that exercises every branch
    /// of the pre-tokenizer: contractions, digits, punctuation runs, every kind of whitespace
    /// run, CJK, emoji, code and long words.
    #[test]
    fn matches_tiktoken_exactly() {
        let reference = tiktoken_rs::o200k_base_singleton();
        let samples = [
            "Say hello to the benchmark in one short sentence, please.",
            "I'm sure they've said you'll LOVE it; WE'D agree. It's O'Neil's.",
            "Numbers: 1 12 123 1234 12345 3.14159 -42 1,000,000 2024-11-21",
            "   leading spaces, trailing spaces   ",
            "tabs\tand\t\tmore\ttabs \t mixed",
            "line one\nline two\r\nline three\n\n\nfour\n  indented\n\t\ttabbed",
            "end with newline and spaces \n   ",
            "multiple   spaces   between    words     here",
            "!!! ??? ... --- /// \\\\ @@@ ### $$$ %%% ^^^ &&& *** ((( )))",
            "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{x:?}\");\n}\n",
            "<|endoftext|> is text here, not a special token",
            "中文文本测试，这是一个句子。日本語のテキストも。한국어 텍스트.",
            "Emoji 😀🎉👍🏽 and flags 🇺🇸🇨🇳 and ZWJ 👨‍👩‍👧",
            "Ünïcödé àccénts façade naïve coöperate Straße İstanbul",
            "supercalifragilisticexpialidocious antidisestablishmentarianism",
            "URL https://example.com/path?query=value&other=123#frag",
            "mixedCASEwords camelCase PascalCase snake_case SCREAMING_CASE",
            "\u{00a0}non-breaking\u{2003}em-space\u{3000}ideographic space",
            " \n \n ",
            "a",
            "   ",
            "x\n",
        ];
        for sample in samples {
            assert_eq!(
                shared().count(sample),
                reference.encode_ordinary(sample).len(),
                "token count differs for {sample:?}"
            );
        }
        // A long, varied text.
        let long: String = samples
            .iter()
            .cycle()
            .take(200)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            shared().count(&long),
            reference.encode_ordinary(&long).len()
        );
    }
}
