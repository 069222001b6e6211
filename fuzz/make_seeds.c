/* make_seeds.c - write the fuzz targets' seed corpora (fuzz/make_corpus.sh
 * runs it): small valid inputs of every kind, so the fuzzers start deep.
 *
 *   make_seeds CORPUS_DIR [tok512.bin]
 *
 * Each seed is a few KB at most. Deterministic: rerunning gives the same files. */
#include <stdio.h>
#include <sys/stat.h>

#include "base_pack.h"
#include "fuzz_util.h"
#include "tokenizer_import.h"

static const char *root;

static void put(const char *target, const char *name, const void *data, size_t n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", root, target);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/%s/%s", root, target, name);
    FILE *f = fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f)) {
        fprintf(stderr, "make_seeds: cannot write %s\n", p);
        exit(1);
    }
}

static void put_str(const char *target, const char *name, const char *s) { put(target, name, s, strlen(s)); }

/* [u16 text length][text][blob], fuzz_tokenizer's input */
static void put_tok(const char *name, const char *text, const void *blob, size_t n) {
    gb b = {0};
    size_t l = strlen(text);
    gb_u8(&b, (uint8_t)l), gb_u8(&b, (uint8_t)(l >> 8));
    gb_put(&b, text, l);
    gb_put(&b, blob, n);
    put("tokenizer", name, b.d, b.n);
    free(b.d);
}

static void gguf_seed(const char *name, const tiny_opts *o, int tokenizer_seed) {
    gb b = {0};
    tiny_build(&b, o);
    put("gguf", name, b.d, b.n);
    if (tokenizer_seed) {
        char err[1024];
        trlc_model_src *s = NULL;
        if (trlc_gguf_model_from_mem(b.d, b.n, name, &s, err, sizeof err) || !s->tok.blob) {
            fprintf(stderr, "make_seeds: %s: %s\n", name, err);
            exit(1);
        }
        char tn[128];
        snprintf(tn, sizeof tn, "%s.tok", name);
        put_tok(tn, " a b ab\xc4\xa0 <s>hello</s> \xe2\x96\x81" "A", s->tok.blob, s->tok.len);
        trlc_source_free(s);
    }
    free(b.d);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR [tok512.bin]\n");
        return 2;
    }
    root = argv[1];
    mkdir(root, 0777);

    /* gguf: the tiny model in its variants */
    tiny_opts o;
    memset(&o, 0, sizeof o);
    o.dim = 8, o.hidden = 16;
    gguf_seed("tiny-gpt2.gguf", &o, 1);
    o.spm = 1;
    gguf_seed("tiny-spm.gguf", &o, 1);
    o.spm = 0, o.tok_pre = "llama-bpe", o.alignment = 64;
    gguf_seed("tiny-llama3-a64.gguf", &o, 1);
    o.tok_pre = NULL, o.alignment = 0, o.no_tokenizer = 1;
    gguf_seed("tiny-notok.gguf", &o, 0);
    o.no_tokenizer = 0, o.hidden = 256, o.ffn_type = 1, o.down_type = 35;
    gguf_seed("tiny-tq2.gguf", &o, 0);
    o.down_type = 34;
    gguf_seed("tiny-tq1.gguf", &o, 0);
    {
        /* no tensors, a key of every type */
        gb b = {0};
        gb_put(&b, "GGUF", 4), gb_u32(&b, 3), gb_u64(&b, 0), gb_u64(&b, 16);
        gb_key(&b, "a.u8", 0), gb_u8(&b, 200);
        gb_key(&b, "a.i8", 1), gb_u8(&b, 0x9c);
        gb_key(&b, "a.u16", 2), gb_u8(&b, 1), gb_u8(&b, 2);
        gb_key(&b, "a.i16", 3), gb_u8(&b, 0xff), gb_u8(&b, 0xff);
        gb_kv_u32(&b, "a.u32", 7);
        gb_key(&b, "a.i32", 5), gb_u32(&b, 0xFFFFFFF0u);
        gb_kv_f32(&b, "a.f32", 0.5f);
        gb_kv_bool(&b, "a.bool", 1);
        gb_kv_str(&b, "a.str", "text");
        gb_key(&b, "a.u64", 10), gb_u64(&b, 1ull << 40);
        gb_key(&b, "a.i64", 11), gb_u64(&b, (uint64_t)-5);
        gb_key(&b, "a.f64", 12), gb_u64(&b, 0x3FF8000000000000ull);
        static const char *const strs[3] = {"x", "", "yz"};
        gb_kv_strs(&b, "a.strs", strs, 3);
        static const int32_t ints[3] = {1, -2, 3};
        gb_kv_i32s(&b, "a.ints", ints, 3);
        gb_key(&b, "a.empty", 9), gb_u32(&b, 4), gb_u64(&b, 0);
        gb_kv_u32(&b, "general.alignment", 16);
        put("gguf", "alltypes.gguf", b.d, b.n);
        free(b.d);
    }

    /* safetensors: F32, F16, BF16 and metadata */
    {
        static const char hdr[] =
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
            "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
            "\"c\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[32,40]},"
            "\"d\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[40,48]},"
            "\"__metadata__\":{\"format\":\"pt\"}}";
        gb b = {0};
        gb_u64(&b, sizeof hdr - 1);
        gb_put(&b, hdr, sizeof hdr - 1);
        for (int i = 0; i < 6; i++) gb_f32(&b, (float)i * 0.5f - 1.0f);
        for (int i = 0; i < 4; i++) gb_u8(&b, 0x00), gb_u8(&b, (uint8_t)(0x3C + i));
        for (int i = 0; i < 4; i++) gb_u8(&b, 0x80), gb_u8(&b, (uint8_t)(0x3F + i));
        gb_u64(&b, 42);
        put("safetensors", "small.safetensors", b.d, b.n);
        free(b.d);
        static const char empty[] = "{}";
        gb e = {0};
        gb_u64(&e, 2);
        gb_put(&e, empty, 2);
        put("safetensors", "empty.safetensors", e.d, e.n);
        free(e.d);
    }

    /* llama2.c: dim 8, hidden 16, 1 layer, 2 heads, 2 kv heads, vocab 8, seq 4; shared and not */
    for (int shared = 0; shared < 2; shared++) {
        const int D = 8, H = 16, L = 1, nh = 2, nkv = 2, V = 8, S = 4, hs = D / nh;
        gb b = {0};
        int hdr[7] = {D, H, L, nh, nkv, shared ? V : -V, S};
        for (int i = 0; i < 7; i++) gb_u32(&b, (uint32_t)hdr[i]);
        size_t n = (size_t)V * D + L * D + (size_t)L * D * D + 2 * (size_t)L * nkv * hs * D + (size_t)L * D * D +
                   L * D + 3 * (size_t)L * H * D + D + 2 * (size_t)S * (hs / 2) + (shared ? 0 : (size_t)V * D);
        for (size_t i = 0; i < n; i++) gb_f32(&b, (float)((int)(i * 7919 % 201) - 100) * 0.01f);
        put("llama2c", shared ? "tiny-shared.bin" : "tiny-untied.bin", b.d, b.n);
        free(b.d);
    }

    /* pack: the base pack's manifest */
    {
        char dir[512], err[1024];
        snprintf(dir, sizeof dir, "%s/pack", fuzz_scratch());
        if (fuzz_base_pack(dir, err, sizeof err)) {
            fprintf(stderr, "make_seeds: base pack: %s\n", err);
            return 1;
        }
        char mp[600];
        snprintf(mp, sizeof mp, "%s/manifest.json", dir);
        FILE *f = fopen(mp, "rb");
        char buf[16384];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        put("pack", "manifest.json", buf, n);
        put("json", "manifest.json", buf, n);
    }

    /* tokenizer: llama2.c's tok512 when given */
    if (argc > 2) {
        void *blob = NULL;
        size_t len = 0;
        trlc_tokenizer_info info;
        char err[1024];
        if (trlc_tokenizer_from_llama2c(argv[2], 512, &blob, &len, &info, err, sizeof err) == 0) {
            put_tok("tok512.tok", "Once upon a time, Lily's <s> dog \xe6\x97\xa5\xff", blob, len);
            trlc_tokenizer_info_free(&info);
            free(blob);
        } else {
            fprintf(stderr, "make_seeds: %s (skipped)\n", err);
        }
    }

    /* json: what the readers parse */
    put_str("json", "config.json",
            "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"intermediate_size\": 160, "
            "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 4, \"vocab_size\": 384, "
            "\"rope_theta\": 1e4, \"rms_norm_eps\": 1e-05, \"tie_word_embeddings\": true, \"rope_scaling\": null, "
            "\"torch_dtype\": \"float32\", \"x\": [1, -2.5e-3, true, false, null, {}, []]}");
    put_str("json", "tokenizer.json",
            "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 5, \"content\": \"<s>\", \"special\": true}], "
            "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
            "\"use_regex\": true}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, "
            "\"\\u0120\": 3, \"\\u0120a\": 4}, \"merges\": [\"a b\", [\"\\u0120\", \"a\"]]}}");
    put_str("json", "escapes.json", "[\"\\ud83d\\ude42 \\u00e9\\n\\t\\\"\\\\/\", \"\\ud800\", 0, -0.0, 1E+2, 123456789012345678901234567890]");
    put_str("json", "safetensors-header.json",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\"__metadata__\":{\"format\":\"pt\"}}");
    return 0;
}
