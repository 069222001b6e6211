/* test-converter-hf.c - the Hugging Face directory reader: config.json fields,
 * tensor names, dtypes, shapes, tying, sharding. Fixtures are written here. */
#include "converter/testutil.h"
#include "trlc.h"

static char err[1024];
static char *root;

/* ------------------------------------------------------------ config.json */

static int parse(const char *json, trl_config *c) {
    double th, eps;
    err[0] = 0;
    return trlc_hf_parse_config(json, strlen(json), "m/config.json", c, &th, &eps, err, sizeof err);
}

#define BASE "\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12," \
             "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":10"

static void test_config(void) {
    trl_config c;
    double th, eps;
    const char *good = "{" BASE "}";
    CHECK(trlc_hf_parse_config(good, strlen(good), "m/config.json", &c, &th, &eps, err, sizeof err) == 0);
    CHECK(c.arch == TRL_ARCH_LLAMA && c.mlp == TRL_MLP_SWIGLU && c.rope_style == TRL_ROPE_HALF);
    CHECK(c.act_quant == TRL_ACT_FLOAT && !c.sub_norms && !c.tied_embeddings);
    CHECK(c.dim == 8 && c.hidden_dim == 12 && c.n_layers == 2 && c.n_heads == 2 && c.n_kv_heads == 1);
    CHECK(c.head_dim == 4 && c.vocab_size == 10 && c.max_seq_len == 2048);
    CHECK(th == 10000.0 && eps == 1e-6 && c.norm_eps == 1e-6f);

    CHECK(parse("{\"architectures\":[\"BitNetForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"vocab_size\":10,\"hidden_act\":\"relu2\","
                "\"rope_theta\":500000.0,\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":true,"
                "\"max_position_embeddings\":4096,\"head_dim\":6}",
                &c) == 0);
    CHECK(c.arch == TRL_ARCH_BITNET && c.sub_norms && c.mlp == TRL_MLP_RELU2 && c.act_quant == TRL_ACT_FLOAT);
    CHECK(c.n_kv_heads == 2 && c.head_dim == 6 && c.tied_embeddings && c.max_seq_len == 4096);
    CHECK(c.rope_theta == 500000.0f);
    CHECK(parse("{\"model_type\":\"llama\",\"hidden_size\":8,\"intermediate_size\":12,\"num_hidden_layers\":1,"
                "\"num_attention_heads\":2,\"vocab_size\":10,\"head_dim\":null,\"rope_scaling\":null}",
                &c) == 0);

    /* each bad field is named */
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":0,\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"vocab_size\":10}", &c) == -1);
    CHECK_ERR(err, "m/config.json", "hidden_size", "0 must be positive");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                "\"num_hidden_layers\":-3,\"num_attention_heads\":2,\"vocab_size\":10}", &c) == -1);
    CHECK_ERR(err, "m/config.json", "num_hidden_layers", "-3 must be positive");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"vocab_size\":1e30}", &c) == -1);
    CHECK_ERR(err, "m/config.json", "vocab_size", "not an integer that fits in 32 bits");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":4294967296,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"vocab_size\":10}", &c) == -1);
    CHECK_ERR(err, "intermediate_size", "4294967296");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                "\"num_hidden_layers\":99999999999999999999999,\"num_attention_heads\":2,\"vocab_size\":10}",
                &c) == -1);
    CHECK_ERR(err, "num_hidden_layers", "fits in 32 bits");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8.5,\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"vocab_size\":10}", &c) == -1);
    CHECK_ERR(err, "hidden_size");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":\"8\",\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"vocab_size\":10}", &c) == -1);
    CHECK_ERR(err, "hidden_size", "expected a positive integer");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2}", &c) == -1);
    CHECK_ERR(err, "m/config.json", "vocab_size: missing");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":3,\"vocab_size\":10}", &c) == -1);
    CHECK_ERR(err, "num_attention_heads", "does not divide hidden_size");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"num_key_value_heads\":3,\"vocab_size\":10}",
                &c) == -1);
    CHECK_ERR(err, "num_key_value_heads", "does not divide");
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"head_dim\":3,\"vocab_size\":10}", &c) == -1);
    CHECK_ERR(err, "head_dim", "even");
    CHECK(parse("{\"architectures\":[\"GPT2LMHeadModel\"],\"hidden_size\":8}", &c) == -1);
    CHECK_ERR(err, "architectures", "GPT2LMHeadModel", "not supported");
    CHECK(parse("{\"model_type\":\"gpt2\"}", &c) == -1);
    CHECK_ERR(err, "model_type", "gpt2");
    CHECK(parse("{" BASE ",\"hidden_act\":\"gelu\"}", &c) == -1);
    CHECK_ERR(err, "hidden_act", "gelu");
    CHECK(parse("{" BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0}}", &c) == -1);
    CHECK_ERR(err, "rope_scaling", "llama3");
    CHECK(parse("{" BASE ",\"rms_norm_eps\":-1}", &c) == -1);
    CHECK_ERR(err, "rms_norm_eps");
    CHECK(parse("{" BASE ",\"rope_theta\":0}", &c) == -1);
    CHECK_ERR(err, "rope_theta");
    CHECK(parse("{" BASE ",\"tie_word_embeddings\":1}", &c) == -1);
    CHECK_ERR(err, "tie_word_embeddings");
    CHECK(parse("{" BASE ",\"attention_bias\":true}", &c) == -1);
    CHECK_ERR(err, "attention_bias");
    /* fits in int32 but beyond what the core accepts: the config's own message, prefixed by the file */
    CHECK(parse("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":2147483646,\"intermediate_size\":12,"
                "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"vocab_size\":10}", &c) == -1);
    CHECK_ERR(err, "m/config.json", "dim");
    CHECK(parse("{" BASE, &c) == -1);
    CHECK_ERR(err, "m/config.json", "bad JSON");
    CHECK(parse("[]", &c) == -1);
    CHECK_ERR(err, "m/config.json", "object");
}

/* ------------------------------------------------------------ model dirs */

enum { F_TIED = 1, F_NO_LM_HEAD = 2, F_BITNET = 4, F_INV_FREQ = 8 };

typedef struct fixture {
    int flags;
    const char *skip;       /* HF name to leave out */
    const char *extra;      /* HF name to add (shape [8]) */
    const char *i8_name;    /* HF name stored as I8 */
    const char *bad_shape;  /* HF name stored with shape [8, 4] */
} fixture;

static unsigned seed = 1;

static void add(st_builder *b, const fixture *fx, const char *name, const char *dtype, long long r, long long c) {
    if (fx->skip && !strcmp(name, fx->skip)) return;
    long long shape[2] = {r, c};
    int nd = c ? 2 : 1;
    if (fx->bad_shape && !strcmp(name, fx->bad_shape)) shape[0] = 8, shape[1] = 4, nd = 2;
    size_t n = (size_t)(shape[0] * (nd == 2 ? shape[1] : 1));
    if (fx->i8_name && !strcmp(name, fx->i8_name)) {
        char *q = calloc(n, 1);
        st_add(b, name, "I8", nd, shape, q, n);
        free(q);
        return;
    }
    size_t es = !strcmp(dtype, "F32") ? 4 : 2;
    unsigned char *buf = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        float v = rnd(&seed);
        uint32_t u;
        memcpy(&u, &v, 4);
        if (es == 4) memcpy(buf + 4 * i, &u, 4);
        else if (!strcmp(dtype, "BF16")) buf[2 * i] = (unsigned char)(u >> 16), buf[2 * i + 1] = (unsigned char)(u >> 24);
        else {
            uint16_t h = trl_f32_to_f16(v);
            buf[2 * i] = (unsigned char)h, buf[2 * i + 1] = (unsigned char)(h >> 8);
        }
    }
    st_add(b, name, dtype, nd, shape, buf, n * es);
    free(buf);
}

/* dim 8, hidden 12, 2 layers, 2 heads, 1 kv head, head_dim 4, vocab 10 */
static void make_dir(const char *dir, const fixture *fx) {
    mkdir(dir, 0777);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"architectures\":[\"%s\"],\"hidden_size\":8,\"intermediate_size\":12,\"num_hidden_layers\":2,"
             "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"vocab_size\":10,\"max_position_embeddings\":64,"
             "\"rms_norm_eps\":1e-05,\"rope_theta\":10000.0,\"tie_word_embeddings\":%s,\"hidden_act\":\"%s\"}",
             fx->flags & F_BITNET ? "BitNetForCausalLM" : "LlamaForCausalLM", fx->flags & F_TIED ? "true" : "false",
             fx->flags & F_BITNET ? "relu2" : "silu");
    char *p = join(dir, "config.json");
    write_file(p, cfg, strlen(cfg));
    free(p);
    st_builder b;
    st_init(&b);
    add(&b, fx, "model.embed_tokens.weight", "F16", 10, 8);
    for (int l = 0; l < 2; l++) {
        char n[128];
#define L(suffix, dt, r, c) (snprintf(n, sizeof n, "model.layers.%d." suffix, l), add(&b, fx, n, dt, r, c))
        L("input_layernorm.weight", "F32", 8, 0);
        L("self_attn.q_proj.weight", "BF16", 8, 8);
        L("self_attn.k_proj.weight", "BF16", 4, 8);
        L("self_attn.v_proj.weight", "BF16", 4, 8);
        L("self_attn.o_proj.weight", "BF16", 8, 8);
        L("post_attention_layernorm.weight", "F32", 8, 0);
        L("mlp.gate_proj.weight", "F32", 12, 8);
        L("mlp.up_proj.weight", "F32", 12, 8);
        L("mlp.down_proj.weight", "F32", 8, 12);
        if (fx->flags & F_BITNET) {
            L("self_attn.attn_sub_norm.weight", "F32", 8, 0);
            L("mlp.ffn_sub_norm.weight", "F32", 12, 0);
        }
        if (fx->flags & F_INV_FREQ) L("self_attn.rotary_emb.inv_freq", "F32", 2, 0);
#undef L
    }
    add(&b, fx, "model.norm.weight", "BF16", 8, 0);
    if (!(fx->flags & F_NO_LM_HEAD)) add(&b, fx, "lm_head.weight", "F32", 10, 8);
    if (fx->extra) add(&b, fx, fx->extra, "F32", 8, 0);
    p = join(dir, "model.safetensors");
    st_write(&b, p);
    free(p);
}

static int open_dir(const char *name, const fixture *fx, trlc_model_src **src) {
    char *d = join(root, name);
    make_dir(d, fx);
    err[0] = 0;
    int rc = trlc_hf_open(d, NULL, src, err, sizeof err);
    free(d);
    return rc;
}

static void test_dirs(void) {
    trlc_model_src *s;
    fixture fx = {0};
    fx.flags = F_INV_FREQ;
    CHECK(open_dir("plain", &fx, &s) == 0);
    if (s) {
        CHECK(s->n_tensors == 1 + 2 * 9 + 2);
        CHECK(!strcmp(s->tensors[0].name, "token_embd.weight") && s->tensors[0].dtype == TRLC_DT_F16);
        CHECK(!strcmp(s->tensors[1].name, "blk.0.attn_norm.weight") && s->tensors[1].n_dims == 1);
        CHECK(!strcmp(s->tensors[2].name, "blk.0.attn_q.weight") && s->tensors[2].dtype == TRLC_DT_BF16);
        CHECK(!strcmp(s->tensors[3].name, "blk.0.attn_k.weight") && s->tensors[3].shape[0] == 4 &&
              s->tensors[3].shape[1] == 8);
        CHECK(!strcmp(s->tensors[9].name, "blk.0.ffn_down.weight") && s->tensors[9].shape[0] == 8 &&
              s->tensors[9].shape[1] == 12);
        CHECK(!strcmp(s->tensors[19].name, "output_norm.weight"));
        CHECK(!strcmp(s->tensors[20].name, "output.weight") && s->tensors[20].dtype == TRLC_DT_F32);
        CHECK(!s->cfg.tied_embeddings && s->cfg.rope_style == TRL_ROPE_HALF && s->cfg.max_seq_len == 64);
        CHECK(s->tok.blob == NULL); /* no tokenizer.json in the fixture */
        CHECK(strstr(s->tensors[2].origin, "model.layers.0.self_attn.q_proj.weight") != NULL);
        CHECK(!strcmp(s->name, "plain") && !strcmp(s->source, "hf:plain"));
        trlc_source_free(s);
    }

    fx.flags = F_TIED | F_NO_LM_HEAD;
    CHECK(open_dir("tied", &fx, &s) == 0);
    if (s) {
        CHECK(s->cfg.tied_embeddings && s->n_tensors == 1 + 2 * 9 + 1);
        CHECK(!strcmp(s->tensors[s->n_tensors - 1].name, "output_norm.weight"));
        trlc_source_free(s);
    }
    fx.flags = F_TIED; /* tied, but lm_head saved anyway: HF ignores it, so do we */
    CHECK(open_dir("tied2", &fx, &s) == 0);
    if (s) {
        CHECK(s->cfg.tied_embeddings && s->n_tensors == 20);
        trlc_source_free(s);
    }
    fx.flags = F_NO_LM_HEAD;
    CHECK(open_dir("nohead", &fx, &s) == -1);
    CHECK_ERR(err, "nohead", "missing tensor 'lm_head.weight'", "tie_word_embeddings is false");

    fx.flags = F_BITNET | F_TIED | F_NO_LM_HEAD;
    CHECK(open_dir("bitnet", &fx, &s) == 0);
    if (s) {
        CHECK(s->cfg.arch == TRL_ARCH_BITNET && s->cfg.sub_norms && s->n_tensors == 1 + 2 * 11 + 1);
        CHECK(!strcmp(s->tensors[5].name, "blk.0.attn_sub_norm.weight") && s->tensors[5].shape[0] == 8);
        CHECK(!strcmp(s->tensors[10].name, "blk.0.ffn_sub_norm.weight") && s->tensors[10].shape[0] == 12);
        trlc_source_free(s);
    }
    fixture f2 = {F_BITNET | F_TIED | F_NO_LM_HEAD, "model.layers.1.mlp.ffn_sub_norm.weight", 0, 0, 0};
    CHECK(open_dir("bitnet-missing", &f2, &s) == -1);
    CHECK_ERR(err, "missing tensor 'model.layers.1.mlp.ffn_sub_norm.weight'", "blk.1.ffn_sub_norm.weight");

    fixture f3 = {0, "model.layers.1.mlp.up_proj.weight", 0, 0, 0};
    CHECK(open_dir("missing", &f3, &s) == -1);
    CHECK_ERR(err, "missing", "missing tensor 'model.layers.1.mlp.up_proj.weight'", "(blk.1.ffn_up.weight)");

    fixture f4 = {0, 0, "model.layers.0.self_attn.q_proj.bias", 0, 0};
    CHECK(open_dir("unknown", &f4, &s) == -1);
    CHECK_ERR(err, "unknown/model.safetensors", "model.layers.0.self_attn.q_proj.bias", "unknown tensor name");

    fixture f5 = {0, 0, "model.layers.7.input_layernorm.weight", 0, 0};
    CHECK(open_dir("layer", &f5, &s) == -1);
    CHECK_ERR(err, "model.layers.7.input_layernorm.weight", "layer 7", "num_hidden_layers is 2");

    fixture f6 = {0, 0, "model.layers.0.self_attn.attn_sub_norm.weight", 0, 0};
    CHECK(open_dir("llama-subnorm", &f6, &s) == -1);
    CHECK_ERR(err, "attn_sub_norm", "not used by a LlamaForCausalLM model");

    fixture f7 = {0, 0, 0, "model.layers.0.self_attn.q_proj.weight", 0};
    CHECK(open_dir("int8", &f7, &s) == -1);
    CHECK_ERR(err, "int8/model.safetensors", "model.layers.0.self_attn.q_proj.weight", "dtype I8 is not supported");

    fixture f8 = {0, 0, 0, 0, "model.layers.1.self_attn.o_proj.weight"};
    CHECK(open_dir("shape", &f8, &s) == -1);
    CHECK_ERR(err, "model.layers.1.self_attn.o_proj.weight", "shape [8, 4]", "implies [8, 8]");

    fixture f9 = {0, 0, "transformer.h.0.attn.weight", 0, 0};
    CHECK(open_dir("gpt2names", &f9, &s) == -1);
    CHECK_ERR(err, "transformer.h.0.attn.weight", "unknown tensor name");

    /* no weights at all */
    char *d = join(root, "empty");
    mkdir(d, 0777);
    char *cp = join(d, "config.json");
    const char *cfg = "{" BASE "}";
    write_file(cp, cfg, strlen(cfg));
    CHECK(trlc_hf_open(d, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "empty", "no model.safetensors or model.safetensors.index.json");
    free(cp);
    free(d);
    d = join(root, "noconfig");
    mkdir(d, 0777);
    CHECK(trlc_hf_open(d, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "noconfig", "no config.json");
    /* trlc_source_open picks the HF reader for a directory */
    CHECK(trlc_source_open(d, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "no config.json");
    free(d);
}

/* The "plain" fixture split over two shards with an index. */
static void test_sharded(void) {
    char *d = join(root, "sharded");
    fixture fx = {0};
    make_dir(d, &fx);
    char *single = join(d, "model.safetensors");
    trlc_safetensors st;
    CHECK(trlc_safetensors_open(single, &st, err, sizeof err) == 0);
    st_builder a, b;
    st_init(&a);
    st_init(&b);
    char index[16384];
    size_t k = (size_t)sprintf(index, "{\"metadata\":{\"total_size\":0},\"weight_map\":{");
    for (size_t i = 0; i < st.n_tensors; i++) {
        const trlc_st_tensor *t = &st.tensors[i];
        long long shape[2] = {t->shape[0], t->shape[1]};
        int first = strstr(t->name, "layers.1.") == NULL;
        st_add(first ? &a : &b, t->name, trlc_dtype_name(t->dtype), t->n_dims, shape, t->data, t->nbytes);
        k += (size_t)sprintf(index + k, "%s\"%s\":\"model-0000%d-of-00002.safetensors\"", i ? "," : "", t->name,
                             first ? 1 : 2);
    }
    sprintf(index + k, "}}");
    trlc_safetensors_close(&st);
    remove(single);
    free(single);
    char *p1 = join(d, "model-00001-of-00002.safetensors"), *p2 = join(d, "model-00002-of-00002.safetensors");
    st_write(&a, p1);
    st_write(&b, p2);
    char *ip = join(d, "model.safetensors.index.json");
    write_file(ip, index, strlen(index));
    trlc_model_src *s;
    CHECK(trlc_hf_open(d, NULL, &s, err, sizeof err) == 0);
    if (s) {
        CHECK(s->n_tensors == 21 && s->n_st == 2);
        CHECK(strstr(s->tensors[12].origin, "model-00002-of-00002.safetensors") != NULL);
        trlc_source_free(s);
    }
    /* the index names a tensor its shard lacks */
    size_t n;
    char *orig = read_file(ip, &n);
    CHECK(edit_file(ip, "\"model.norm.weight\":\"model-00001", "\"model.norm.weight\":\"model-00002") == 0);
    CHECK(trlc_hf_open(d, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "model.safetensors.index.json", "weight_map.model.norm.weight", "model-00002-of-00002");
    write_file(ip, orig, n);
    /* a shard name that leaves the directory */
    CHECK(edit_file(ip, "\"model.norm.weight\":\"model-00001", "\"model.norm.weight\":\"../model-00001") == 0);
    CHECK(trlc_hf_open(d, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "model.safetensors.index.json", "weight_map.model.norm.weight", "plain file name");
    write_file(ip, orig, n);
    /* a shard that is missing */
    remove(p2);
    CHECK(trlc_hf_open(d, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "model-00002-of-00002.safetensors", "cannot open");
    write_file(ip, "{\"weight_map\":[]}", 17);
    CHECK(trlc_hf_open(d, NULL, &s, err, sizeof err) == -1);
    CHECK_ERR(err, "model.safetensors.index.json", "weight_map");
    free(orig);
    free(ip);
    free(p1);
    free(p2);
    free(d);
}

int main(void) {
    root = make_tmpdir("hf");
    test_config();
    test_dirs();
    test_sharded();
    rm_tree(root);
    free(root);
    return test_done("test-converter-hf");
}
