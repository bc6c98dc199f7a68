#!/usr/bin/env python3
"""Builds o200k_base.bin, the compact rank table the tokenizer embeds, from OpenAI's published
o200k_base.tiktoken file (MIT licensed; lines of "<base64 token> <rank>").

    python3 generate_table.py path/to/o200k_base.tiktoken

The tiktoken-rs crate ships that file, so after `cargo fetch` it is at
~/.cargo/registry/src/*/tiktoken-rs-*/assets/o200k_base.tiktoken.

Layout (little-endian): b"TGBPE1\\0\\0", n:u32, offsets:(n+1)×u32, ranks:n×u32, token bytes.
Tokens are sorted by their bytes, so the file is reproducible; the tokenizer reads it in place
through a hash index it builds on first use.
"""
import base64
import struct
import sys


def main(source: str) -> None:
    tokens = []
    with open(source, "rb") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            raw, rank = line.split(b" ")
            tokens.append((base64.b64decode(raw), int(rank)))
    tokens.sort(key=lambda t: t[0])
    offsets, arena, pos = [], bytearray(), 0
    for token, _ in tokens:
        offsets.append(pos)
        arena += token
        pos += len(token)
    offsets.append(pos)
    with open("o200k_base.bin", "wb") as out:
        out.write(b"TGBPE1\0\0")
        out.write(struct.pack("<I", len(tokens)))
        out.write(struct.pack(f"<{len(offsets)}I", *offsets))
        out.write(struct.pack(f"<{len(tokens)}I", *(rank for _, rank in tokens)))
        out.write(arena)
    print(f"{len(tokens)} tokens, {len(arena)} bytes of token text")


if __name__ == "__main__":
    main(sys.argv[1])
