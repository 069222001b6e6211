"""Independent tokenizers for the golden tests (pure Python, no regex module).

Two kinds, matching trl_tokenizer_kind:

* SpmTokenizer: llama2.c's tokenizer.bin, SentencePiece-style BPE by piece
  score with byte fallback (run.c's encode/decode semantics).
* Gpt2BpeTokenizer: a Hugging Face tokenizer.json with a byte-level BPE
  model (GPT-2, Llama 3), merges applied by rank.

Invalid UTF-8 (both kinds): text is handled as bytes. It is decoded with
Python's "surrogateescape" handler, so every byte that is not part of a valid
UTF-8 sequence becomes its own character (U+DC80 + byte - 0x80). Such a
character is in no vocabulary (SPM: it falls back to its one byte token) and
belongs to no letter/number/space class (GPT-2 / Llama 3 pre-tokenizers treat
it like punctuation); on the way out it becomes its original byte again. So
any byte string encodes, and decoding gives it back byte for byte.
"""

import json
import re
import struct
import unicodedata

# --------------------------------------------------------------- characters


def to_text(data):
    """str | bytes -> str where invalid UTF-8 bytes are lone surrogates."""
    if isinstance(data, str):
        return data
    return bytes(data).decode("utf-8", "surrogateescape")


def to_bytes(text):
    return text.encode("utf-8", "surrogateescape")


def is_letter(c):
    """\\p{L}: general category L* (Lu, Ll, Lt, Lm, Lo)."""
    return unicodedata.category(c)[0] == "L"


def is_number(c):
    """\\p{N}: general category N* (Nd, Nl, No)."""
    return unicodedata.category(c)[0] == "N"


def is_space(c):
    """\\s: Unicode White_Space, as docs/FORMAT.md states it (and Rust regex,
    Oniguruma, Python's `regex` use): U+0009..U+000D, U+0085 and categories
    Zs / Zl / Zp. Python's str.isspace() would add U+001C..U+001F."""
    return c in "\t\n\x0b\x0c\r\x85" or unicodedata.category(c) in ("Zs", "Zl", "Zp")


def is_other(c):
    """[^\\s\\p{L}\\p{N}]"""
    return not (is_space(c) or is_letter(c) or is_number(c))


# ------------------------------------------------------------ pre-tokenizers
#
# Hand-written matchers for the two regexes below. Each tries the
# alternatives in order at the current position, the way a backtracking regex
# engine does, and takes the first that matches.

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"""
                  r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")


def _run(text, i, pred):
    """End of the run of characters satisfying pred starting at i."""
    n = len(text)
    while i < n and pred(text[i]):
        i += 1
    return i


def _space_tail(text, i):
    """\\s+(?!\\S) then \\s+ at i (the last two alternatives of both regexes).
    Returns the match end or None if text[i] is not a space."""
    j = _run(text, i, is_space)
    if j == i:
        return None
    if j == len(text):
        return j
    # (?!\S): back off one so the run ends before the next non-space; the
    # single-space case falls through to plain \s+.
    if j - 1 > i:
        return j - 1
    return j


def _gpt2_match(text, i):
    n = len(text)
    c = text[i]
    if c == "'":
        for s in _CONTRACTIONS:
            if text.startswith(s, i + 1):
                return i + 1 + len(s)
    # ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
    for pred in (is_letter, is_number, is_other):
        if c == " " and i + 1 < n and pred(text[i + 1]):
            return _run(text, i + 1, pred)
        if pred(c):
            return _run(text, i, pred)
    return _space_tail(text, i)


_FOLD = {"s": "sS\u017f", "t": "tT", "r": "rR", "e": "eE", "v": "vV", "m": "mM", "l": "lL", "d": "dD"}


def _llama3_match(text, i):
    n = len(text)
    c = text[i]
    # (?i:'s|'t|'re|'ve|'m|'ll|'d): Unicode case-insensitive, so U+017F (long s)
    # matches 's' too, as in Rust regex and Oniguruma.
    if c == "'":
        for s in _CONTRACTIONS:
            if i + 1 + len(s) <= n and all(text[i + 1 + k] in _FOLD[ch] for k, ch in enumerate(s)):
                return i + 1 + len(s)
    # [^\r\n\p{L}\p{N}]?\p{L}+
    if c not in "\r\n" and not is_letter(c) and not is_number(c) and i + 1 < n and is_letter(text[i + 1]):
        return _run(text, i + 1, is_letter)
    if is_letter(c):
        return _run(text, i, is_letter)
    # \p{N}{1,3}
    if is_number(c):
        j = i
        while j < n and j - i < 3 and is_number(text[j]):
            j += 1
        return j
    # ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    start = None
    if c == " " and i + 1 < n and is_other(text[i + 1]):
        start = i + 1
    elif is_other(c):
        start = i
    if start is not None:
        j = _run(text, start, is_other)
        return _run(text, j, lambda ch: ch in "\r\n")
    # \s*[\r\n]+ : the whitespace run, backed off to just after its last newline
    j = _run(text, i, is_space)
    for k in range(j - 1, i - 1, -1):
        if text[k] in "\r\n":
            return k + 1
    return _space_tail(text, i)


def _split(text, matcher):
    pieces, i = [], 0
    while i < len(text):
        j = matcher(text, i)
        if j is None or j <= i:  # cannot happen for these regexes; keep the char as a gap
            j = i + 1
        pieces.append(text[i:j])
        i = j
    return pieces


def pretokenize_gpt2(text):
    return _split(to_text(text), _gpt2_match)


def pretokenize_llama3(text):
    return _split(to_text(text), _llama3_match)


_PATTERNS = {GPT2_PATTERN: pretokenize_gpt2, LLAMA3_PATTERN: pretokenize_llama3}


# ---------------------------------------------------------------- byte level


def bytes_to_unicode():
    """GPT-2's reversible map byte -> printable character (its order defines
    the first 256 ids of a byte-level vocabulary)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
BYTE_ORDER = list(BYTE_TO_CHAR)  # bytes in GPT-2 vocabulary order


def byte_encode(piece):
    """pre-token (str) -> its byte-level string."""
    return "".join(BYTE_TO_CHAR[b] for b in to_bytes(piece))


def bpe_merge(symbols, ranks):
    """Apply merges by rank: repeatedly merge every occurrence (left to right)
    of the adjacent pair with the lowest rank. symbols: list of str."""
    symbols = list(symbols)
    while len(symbols) > 1:
        best, best_rank = None, None
        for a, b in zip(symbols, symbols[1:]):
            r = ranks.get((a, b))
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = (a, b), r
        if best is None:
            break
        out, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == best[0] and symbols[i + 1] == best[1]:
                out.append(best[0] + best[1])
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return symbols


# ------------------------------------------------------- GPT-2 byte-level BPE


class Gpt2BpeTokenizer:
    """Byte-level BPE from a Hugging Face tokenizer.json.

    Encoding: split on added tokens (leftmost, longest at a position), each
    other segment pre-tokenized (ByteLevel with use_regex -> GPT-2 regex, or a
    Split with the Llama 3 regex, behavior Isolated), mapped to byte-level
    characters, BPE by merge rank (with model.ignore_merges, a pre-token that
    is itself in the vocabulary is taken whole). Decoding: added tokens give
    their content, others their byte-level characters mapped back to bytes.
    """

    def __init__(self, tj, bos_token=None, eos_token=None):
        model = tj["model"]
        if model.get("type") != "BPE":
            raise ValueError("tokenizer.json: model.type %r is not BPE" % model.get("type"))
        self.vocab = dict(model["vocab"])
        self.ignore_merges = bool(model.get("ignore_merges", False))
        self.ranks = {}
        for r, m in enumerate(model["merges"]):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            self.ranks.setdefault((a, b), r)
        self.added = {}  # content -> id
        self.special_ids = set()
        for t in tj.get("added_tokens") or []:
            self.added[t["content"]] = t["id"]
            if t.get("special"):
                self.special_ids.add(t["id"])
        self.id_to_token = {i: s for s, i in self.vocab.items()}
        for s, i in self.added.items():
            self.id_to_token[i] = s
        self.vocab_size = max(self.id_to_token) + 1
        self.pre_steps = self._parse_pre(tj.get("pre_tokenizer"))
        self.bos_id = self.added.get(bos_token, self.vocab.get(bos_token)) if bos_token else None
        self.eos_id = self.added.get(eos_token, self.vocab.get(eos_token)) if eos_token else None

    @staticmethod
    def _parse_pre(pre):
        if pre is None:
            return []
        t = pre.get("type")
        if t == "Sequence":
            steps = []
            for p in pre["pretokenizers"]:
                steps += Gpt2BpeTokenizer._parse_pre(p)
            return steps
        if t == "ByteLevel":
            steps = []
            if pre.get("add_prefix_space", False):
                steps.append(("prefix_space", None))
            if pre.get("use_regex", True):
                steps.append(("split", pretokenize_gpt2))
            return steps
        if t == "Split":
            pat = pre.get("pattern", {})
            if "Regex" not in pat or pat["Regex"] not in _PATTERNS:
                raise NotImplementedError("pre_tokenizer Split pattern %r" % (pat,))
            if pre.get("behavior", "Isolated") != "Isolated" or pre.get("invert", False):
                raise NotImplementedError("pre_tokenizer Split behavior %r" % pre.get("behavior"))
            return [("split", _PATTERNS[pat["Regex"]])]
        raise NotImplementedError("pre_tokenizer type %r" % t)

    @classmethod
    def from_files(cls, tokenizer_json, tokenizer_config=None):
        with open(tokenizer_json, encoding="utf-8") as f:
            tj = json.load(f)
        bos = eos = None
        if tokenizer_config:
            try:
                with open(tokenizer_config, encoding="utf-8") as f:
                    tc = json.load(f)
                bos, eos = _token_str(tc.get("bos_token")), _token_str(tc.get("eos_token"))
            except FileNotFoundError:
                pass
        return cls(tj, bos, eos)

    def _split_added(self, text):
        """-> list of (segment, added_id or None)."""
        out, i, last = [], 0, 0
        contents = sorted(self.added, key=len, reverse=True)
        while i < len(text):
            hit = next((c for c in contents if c and text.startswith(c, i)), None)
            if hit is None:
                i += 1
                continue
            if last < i:
                out.append((text[last:i], None))
            out.append((hit, self.added[hit]))
            i += len(hit)
            last = i
        if last < len(text):
            out.append((text[last:], None))
        return out

    def pretokenize(self, segment):
        pieces = [segment]
        for kind, fn in self.pre_steps:
            if kind == "prefix_space":
                pieces = [p if p.startswith(" ") else " " + p for p in pieces]
            else:
                pieces = [q for p in pieces for q in fn(p)]
        return pieces

    def encode_piece(self, piece):
        word = byte_encode(piece)
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        return [self.vocab[s] for s in bpe_merge(list(word), self.ranks)]

    def encode(self, text, bos=False):
        text = to_text(text)
        ids = [self.bos_id] if bos and self.bos_id is not None else []
        for seg, added_id in self._split_added(text):
            if added_id is not None:
                ids.append(added_id)
                continue
            for piece in self.pretokenize(seg):
                ids += self.encode_piece(piece)
        return ids

    def token_bytes(self, i):
        s = self.id_to_token[i]
        if s in self.added and self.added[s] == i:
            return s.encode("utf-8")
        return bytes(CHAR_TO_BYTE[c] for c in s)

    def decode(self, ids, prev=None, skip_special=True):
        """-> bytes. Special added tokens give nothing unless skip_special is
        False (then their content, like transformers' decode default)."""
        return b"".join(self.token_bytes(i) for i in ids
                        if not (skip_special and i in self.special_ids))


def _token_str(t):
    if isinstance(t, dict):
        return t.get("content")
    return t


# ------------------------------------------------- llama2.c SentencePiece BPE

_BYTE_PIECE = re.compile(rb"^<0x([0-9A-Fa-f]{2})>$")


class SpmTokenizer:
    """llama2.c's tokenizer.bin: int32 max_token_length, then per token
    f32 score, int32 length, bytes. Pieces hold real spaces (llama2.c's export
    turned U+2581 into ' '); ids 3..258 are the byte tokens <0x00>..<0xFF>."""

    BYTE_OFFSET = 3

    def __init__(self, pieces, scores, bos_id=1, eos_id=2):
        self.pieces = list(pieces)
        self.scores = [float(s) for s in scores]
        self.vocab_size = len(self.pieces)
        self.bos_id, self.eos_id = bos_id, eos_id
        self.lookup = {}
        for i, p in enumerate(self.pieces):
            self.lookup.setdefault(p, i)  # duplicates: the lowest id wins

    @classmethod
    def from_llama2c(cls, path, vocab_size=None):
        with open(path, "rb") as f:
            data = f.read()
        off = 4
        pieces, scores = [], []
        while off < len(data) and (vocab_size is None or len(pieces) < vocab_size):
            score, n = struct.unpack_from("<fi", data, off)
            off += 8
            if n < 0 or off + n > len(data):
                raise ValueError("%s: token %d: bad length %d" % (path, len(pieces), n))
            pieces.append(data[off:off + n])
            scores.append(score)
            off += n
        return cls(pieces, scores)

    def encode(self, text, bos=True, eos=False):
        """run.c's encode: dummy prefix ' ' for non-empty text, code points
        looked up whole or as byte tokens, then merge the adjacent pair whose
        concatenation is a piece with the best score (leftmost on ties) until
        none is left."""
        text = to_text(text)
        toks = []
        if text:
            toks.append(self.lookup[b" "])
        for ch in text:
            b = to_bytes(ch)
            i = self.lookup.get(b)
            if i is not None:
                toks.append(i)
            else:
                toks += [self.BYTE_OFFSET + x for x in b]
        while True:
            best_score, best_i, best_id = None, -1, -1
            for i in range(len(toks) - 1):
                j = self.lookup.get(self.pieces[toks[i]] + self.pieces[toks[i + 1]])
                if j is not None and (best_score is None or self.scores[j] > best_score):
                    best_score, best_i, best_id = self.scores[j], i, j
            if best_i < 0:
                break
            toks[best_i:best_i + 2] = [best_id]
        if bos:
            toks.insert(0, self.bos_id)
        if eos:
            toks.append(self.eos_id)
        return toks

    def token_bytes(self, i, prev=None):
        p = self.pieces[i]
        if prev == self.bos_id and p.startswith(b" "):
            p = p[1:]
        m = _BYTE_PIECE.match(p)
        if m:
            return bytes([int(m.group(1), 16)])
        return p

    def decode(self, ids, prev=None, skip_special=True):
        """run.c's decode over a sequence: the piece after BOS loses its
        leading space; <0xNN> pieces are raw bytes. `prev` is the token
        before ids[0] (None: none). BOS and EOS give nothing (they are
        SentencePiece control tokens) unless skip_special is False (then
        their llama2.c pieces, "\n<s>\n" and "\n</s>\n")."""
        out = []
        for i in ids:
            if not (skip_special and i in (self.bos_id, self.eos_id)):
                out.append(self.token_bytes(i, prev))
            prev = i
        return b"".join(out)
