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

fn is_upper(c: u8) -> bool {
    c.is_ascii_uppercase()
}

fn is_lower(c: u8) -> bool {
    c.is_ascii_lowercase()
}

/// `\s` restricted to ASCII: tab, line feed, vertical tab, form feed, carriage return, space.
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

fn is_newline(c: u8) -> bool {
    c == b'\r' || c == b'\n'
}

/// `[^\r\n\p{L}\p{N}]`: may start a word piece.
fn is_word_prefix(c: u8) -> bool {
    !c.is_ascii_alphanumeric() && !is_newline(c)
}

/// `[^\s\p{L}\p{N}]`: punctuation and symbols.
fn is_symbol(c: u8) -> bool {
    !c.is_ascii_alphanumeric() && !is_space(c)
}

fn run(bytes: &[u8], from: usize, class: fn(u8) -> bool) -> usize {
    bytes[from..].iter().take_while(|&&c| class(c)).count()
}

/// The optional contraction `(?i:'s|'t|'re|'ve|'m|'ll|'d)` at `at`: its length, or 0.
fn contraction(bytes: &[u8], at: usize) -> usize {
    if bytes.get(at) != Some(&b'\'') {
        return 0;
    }
    let lower = |i: usize| bytes.get(at + i).map(u8::to_ascii_lowercase);
    match (lower(1), lower(2)) {
        (Some(b's' | b't' | b'm' | b'd'), _) => 2,
        (Some(b'r'), Some(b'e')) | (Some(b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => 3,
        _ => 0,
    }
}

/// Where the o200k pre-tokenizer's match starting at `at` ends, for ASCII text. The
/// alternatives are tried in the pattern's order, each as the regex engine would match it.
fn ascii_piece_end(bytes: &[u8], at: usize) -> usize {
    let n = bytes.len();
    let c = bytes[at];
    // Word pieces (alternatives 1 and 2): an optional prefix character, then letters.
    let word_start = if is_word_prefix(c) { at + 1 } else { at };
    if word_start < n && bytes[word_start].is_ascii_alphabetic() {
        let upper = run(bytes, word_start, is_upper);
        let after_upper = word_start + upper;
        // 1: uppercase* lowercase+ (uppercase letters can never count as lowercase, so the
        //    lowercase run must start right after the uppercase one).
        if after_upper < n && is_lower(bytes[after_upper]) {
            let end = after_upper + run(bytes, after_upper, is_lower);
            return end + contraction(bytes, end);
        }
        // 2: uppercase+ lowercase*.
        if upper > 0 {
            return after_upper + contraction(bytes, after_upper);
        }
    }
    // 3: one to three digits.
    if c.is_ascii_digit() {
        return at + run(bytes, at, |d| d.is_ascii_digit()).min(3);
    }
    // 4: an optional space, symbols, then line breaks or slashes.
    let symbols_start = if c == b' ' && at + 1 < n && is_symbol(bytes[at + 1]) {
        at + 1
    } else {
        at
    };
    if is_symbol(bytes[symbols_start]) {
        let end = symbols_start + run(bytes, symbols_start, is_symbol);
        return end + run(bytes, end, |d| is_newline(d) || d == b'/');
    }
    // Whitespace (alternatives 5, 6 and 7).
    let spaces = run(bytes, at, is_space);
    // 5: whitespace up to and including its last line break.
    if let Some(last_newline) = bytes[at..at + spaces].iter().rposition(|&d| is_newline(d)) {
        return at + last_newline + 1;
    }
    // 6: whitespace not followed by text, i.e. all of it at the end, or all but the last
    //    character (which then starts the next piece); 7: a single whitespace character.
    if at + spaces == n || spaces == 1 {
        at + spaces
    } else {
        at + spaces - 1
    }
}

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

    /// Splits text the way o200k's pre-tokenizer does and hands each piece to `each`. Plain
    /// ASCII text (most prompts) takes a hand-written path that applies the same rules without
    /// the regex engine; anything else goes through the regex.
    fn pieces<'t>(&self, text: &'t str, mut each: impl FnMut(&'t str)) {
        if text.is_ascii() {
            let bytes = text.as_bytes();
            let mut at = 0;
            while at < bytes.len() {
                let end = ascii_piece_end(bytes, at);
                each(&text[at..end]);
                at = end;
            }
            return;
        }
        self.regex_pieces(text, each);
    }

    fn regex_pieces<'t>(&self, text: &'t str, mut each: impl FnMut(&'t str)) {
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
        // Working state on the stack (pieces are at most MAX_PIECE_BYTES long):
        // `bounds[..parts + 1]` are where the parts start, then the piece's end;
        // `pair_rank[i]` is the rank of parts i and i+1 joined (NO_RANK when not a token).
        const NO_RANK: u32 = u32::MAX;
        let mut bounds = [0_u16; MAX_PIECE_BYTES + 1];
        let mut pair_rank = [NO_RANK; MAX_PIECE_BYTES];
        let mut parts = piece.len();
        for (i, bound) in bounds.iter_mut().enumerate().take(parts + 1) {
            *bound = i as u16;
        }
        for (i, rank) in pair_rank.iter_mut().enumerate().take(parts - 1) {
            *rank = self.rank(&piece[i..i + 2]).unwrap_or(NO_RANK);
        }
        let span = |bounds: &[u16], from: usize, to: usize| {
            &piece[usize::from(bounds[from])..usize::from(bounds[to])]
        };
        loop {
            let mut best = NO_RANK;
            let mut at = 0;
            for (i, &rank) in pair_rank[..parts - 1].iter().enumerate() {
                if rank < best {
                    best = rank;
                    at = i;
                }
            }
            if best == NO_RANK {
                break;
            }
            // Join part `at` with part `at + 1`.
            bounds.copy_within(at + 2..parts + 1, at + 1);
            pair_rank.copy_within(at + 1..parts - 1, at);
            parts -= 1;
            if at + 1 < parts {
                pair_rank[at] = self.rank(span(&bounds, at, at + 2)).unwrap_or(NO_RANK);
            }
            if at > 0 {
                pair_rank[at - 1] = self.rank(span(&bounds, at - 1, at + 1)).unwrap_or(NO_RANK);
            }
            if parts == 1 {
                break;
            }
        }
        parts
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
        // Random ASCII over the characters each rule cares about, against the reference (this
        // exercises the hand-written ASCII path).
        let alphabet = b"aAbBzZ09 \t\n\r'/!.(-_\"sStTlLdDmMvVeErR";
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 24) as usize + 1;
            let sample: String = (0..len)
                .map(|i| {
                    let pick = (seed.rotate_left(i as u32 * 5) ^ (i as u64 * 0x9E37)) as usize;
                    char::from(alphabet[pick % alphabet.len()])
                })
                .collect();
            assert_eq!(
                shared().count(&sample),
                reference.encode_ordinary(&sample).len(),
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
