/* tokenizer_blob.h - the tokenizer blob layout (docs/FORMAT.md, "Tokenizer
 * blob"), defined once for the core that reads it and the converter that
 * writes it. Private to Trillium. */
#ifndef TRL_TOKENIZER_BLOB_H
#define TRL_TOKENIZER_BLOB_H

#include <stdint.h>

#define TRL_TOKBLOB_MAGIC "TRLT"
#define TRL_TOKBLOB_VERSION 1
#define TRL_TOKBLOB_HEADER_BYTES 48

/* header byte offsets */
enum {
    TRL_TOKBLOB_OFF_MAGIC = 0,       /* char[4] */
    TRL_TOKBLOB_OFF_VERSION = 4,     /* u16 */
    TRL_TOKBLOB_OFF_KIND = 6,        /* u8: trl_tokenizer_kind */
    TRL_TOKBLOB_OFF_PRETOK = 7,      /* u8: TRL_PRETOK_* */
    TRL_TOKBLOB_OFF_FLAGS = 8,       /* u32: TRL_TOKF_* */
    TRL_TOKBLOB_OFF_N_VOCAB = 12,    /* u32 */
    TRL_TOKBLOB_OFF_N_MERGES = 16,   /* u32 */
    TRL_TOKBLOB_OFF_BOS = 20,        /* i32, -1 = none */
    TRL_TOKBLOB_OFF_EOS = 24,        /* i32 */
    TRL_TOKBLOB_OFF_UNK = 28,        /* i32 */
    TRL_TOKBLOB_OFF_LEN_BYTES = 32,  /* u32: size of the piece-length section */
    TRL_TOKBLOB_OFF_PIECE_BYTES = 36,/* u32: size of the piece-bytes section */
    TRL_TOKBLOB_OFF_MERGE_BYTES = 40,/* u32: size of the merges section */
    TRL_TOKBLOB_OFF_RESERVED = 44    /* u32, 0 */
};

/* pre-tokenizer of a bpe_gpt2 blob (spm blobs: NONE) */
enum { TRL_PRETOK_NONE = 0, TRL_PRETOK_GPT2 = 1, TRL_PRETOK_LLAMA3 = 2 };

/* flags */
#define TRL_TOKF_SPM_PREFIX 0x01u          /* spm: prepend ' ' to each text segment */
#define TRL_TOKF_SPM_PREFIX_FIRST 0x02u    /* spm: ... only to the segment at offset 0 */
#define TRL_TOKF_SPM_PREFIX_NOSPACE 0x04u  /* spm: ... only if it does not start with ' ' */
#define TRL_TOKF_SPM_SPACE_MARKER 0x08u    /* spm: source pieces used U+2581 (stored as ' ') */
#define TRL_TOKF_BPE_IGNORE_MERGES 0x10u   /* bpe: a piece that is a whole vocab entry is one token */
#define TRL_TOKF_NFC 0x20u                 /* the source normalizes text to NFC (the core does not) */
#define TRL_TOKF_SPM_MASK 0x0Fu
#define TRL_TOKF_BPE_MASK 0x10u
#define TRL_TOKF_ALL 0x3Fu

/* token type byte: bits 0-1 type, bit 2 ADDED, bits 3-7 zero */
enum { TRL_TOKT_NORMAL = 0, TRL_TOKT_BYTE = 1, TRL_TOKT_CONTROL = 2, TRL_TOKT_USER = 3 };
#define TRL_TOKT_TYPE_MASK 0x03u
#define TRL_TOKT_ADDED 0x04u /* matched verbatim in the text before the model runs */

/* An SPM pair merges only into a piece whose score is above this
 * (llama2.c's encode() starts its best score at -1e10). */
#define TRL_TOK_SPM_MIN_SCORE (-1e10f)

#endif
