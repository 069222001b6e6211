/* config.c - model config: parse from a pack manifest, validate. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "json.h"

/* Generous caps: a value beyond them is a corrupt file, not a model. */
#define CAP_DIM (1 << 20)
#define CAP_LAYERS 4096
#define CAP_HEADS 4096
#define CAP_VOCAB (1 << 24)
#define CAP_SEQ (1 << 24)

static trl_status get_int(const tj_doc *d, int obj, const char *key, int required, int32_t dflt, int32_t *out,
                          trl_error *err) {
    int t = tj_obj_get(d, obj, key);
    if (t < 0 || tj_is_null(d, t)) {
        if (required) return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.%s: missing", key);
        *out = dflt;
        return TRL_OK;
    }
    int64_t v;
    if (tj_get_i64(d, t, &v)) return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.%s: not an integer", key);
    if (v < INT32_MIN || v > INT32_MAX)
        return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.%s: %lld out of range", key, (long long)v);
    *out = (int32_t)v;
    return TRL_OK;
}

static trl_status get_float(const tj_doc *d, int obj, const char *key, float dflt, float *out, trl_error *err) {
    int t = tj_obj_get(d, obj, key);
    if (t < 0 || tj_is_null(d, t)) {
        *out = dflt;
        return TRL_OK;
    }
    double v;
    if (tj_get_f64(d, t, &v)) return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.%s: not a number", key);
    *out = (float)v;
    return TRL_OK;
}

static trl_status get_bool(const tj_doc *d, int obj, const char *key, int32_t *out, trl_error *err) {
    int t = tj_obj_get(d, obj, key);
    *out = 0;
    if (t < 0 || tj_is_null(d, t)) return TRL_OK;
    int b;
    if (tj_get_bool(d, t, &b)) return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.%s: not a boolean", key);
    *out = b;
    return TRL_OK;
}

/* Map a string member to an enum index from `names`; missing -> 0. */
static trl_status get_enum(const tj_doc *d, int obj, const char *key, const char *const *names, int n, int *out,
                           trl_error *err) {
    int t = tj_obj_get(d, obj, key);
    *out = 0;
    if (t < 0 || tj_is_null(d, t)) return TRL_OK;
    for (int i = 0; i < n; i++)
        if (tj_str_eq(d, t, names[i])) {
            *out = i;
            return TRL_OK;
        }
    char v[64];
    if (tj_str_copy(d, t, v, sizeof v) < 0) snprintf(v, sizeof v, "(not a string)");
    return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.%s: unknown value \"%s\"", key, v);
}

trl_status trl_config_from_json(const char *json, size_t len, trl_config *cfg, trl_error *err) {
    static const char *const archs[] = {"llama", "bitnet"};
    static const char *const mlps[] = {"swiglu", "relu2"};
    static const char *const ropes[] = {"interleaved", "half"};
    static const char *const acts[] = {"float", "int8"};
    if (!json || !cfg) return trl_set_error(err, TRL_ERR_INVALID_ARG, "config: NULL argument");
    memset(cfg, 0, sizeof *cfg);
    tj_doc d;
    char jerr[128];
    if (tj_parse(json, len, &d, jerr, sizeof jerr))
        return trl_set_error(err, TRL_ERR_BAD_FORMAT, "config: invalid JSON: %s", jerr);
    int obj = tj_obj_get(&d, 0, "config");
    if (obj < 0) obj = 0;
    trl_status s = TRL_OK;
    if (d.toks[obj].type != TJ_OBJ) {
        s = trl_set_error(err, TRL_ERR_BAD_CONFIG, "config: not a JSON object");
        goto done;
    }
    int e;
#define TRY(x) do { if ((s = (x)) != TRL_OK) goto done; } while (0)
    TRY(get_enum(&d, obj, "arch", archs, 2, &e, err)); cfg->arch = (trl_arch)e;
    TRY(get_enum(&d, obj, "mlp", mlps, 2, &e, err)); cfg->mlp = (trl_mlp)e;
    TRY(get_enum(&d, obj, "rope_style", ropes, 2, &e, err)); cfg->rope_style = (trl_rope_style)e;
    TRY(get_enum(&d, obj, "act_quant", acts, 2, &e, err)); cfg->act_quant = (trl_act_quant)e;
    TRY(get_int(&d, obj, "dim", 1, 0, &cfg->dim, err));
    TRY(get_int(&d, obj, "hidden_dim", 1, 0, &cfg->hidden_dim, err));
    TRY(get_int(&d, obj, "n_layers", 1, 0, &cfg->n_layers, err));
    TRY(get_int(&d, obj, "n_heads", 1, 0, &cfg->n_heads, err));
    TRY(get_int(&d, obj, "n_kv_heads", 0, cfg->n_heads, &cfg->n_kv_heads, err));
    TRY(get_int(&d, obj, "head_dim", 0, cfg->n_heads > 0 ? cfg->dim / cfg->n_heads : 0, &cfg->head_dim, err));
    TRY(get_int(&d, obj, "vocab_size", 1, 0, &cfg->vocab_size, err));
    TRY(get_int(&d, obj, "max_seq_len", 1, 0, &cfg->max_seq_len, err));
    TRY(get_float(&d, obj, "rope_theta", 10000.0f, &cfg->rope_theta, err));
    TRY(get_float(&d, obj, "norm_eps", 1e-5f, &cfg->norm_eps, err));
    TRY(get_bool(&d, obj, "tied_embeddings", &cfg->tied_embeddings, err));
    TRY(get_bool(&d, obj, "sub_norms", &cfg->sub_norms, err));
#undef TRY
    s = trl_config_validate(cfg, err);
done:
    tj_free(&d);
    return s;
}

static trl_status check_range(const char *key, int32_t v, int32_t cap, trl_error *err) {
    if (v <= 0) return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.%s: %d must be positive", key, v);
    if (v > cap) return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.%s: %d exceeds the limit %d", key, v, cap);
    return TRL_OK;
}

trl_status trl_config_validate(const trl_config *c, trl_error *err) {
    if (!c) return trl_set_error(err, TRL_ERR_INVALID_ARG, "config: NULL");
    trl_status s;
    if ((s = check_range("dim", c->dim, CAP_DIM, err)) ||
        (s = check_range("hidden_dim", c->hidden_dim, CAP_DIM, err)) ||
        (s = check_range("n_layers", c->n_layers, CAP_LAYERS, err)) ||
        (s = check_range("n_heads", c->n_heads, CAP_HEADS, err)) ||
        (s = check_range("n_kv_heads", c->n_kv_heads, CAP_HEADS, err)) ||
        (s = check_range("head_dim", c->head_dim, CAP_DIM, err)) ||
        (s = check_range("vocab_size", c->vocab_size, CAP_VOCAB, err)) ||
        (s = check_range("max_seq_len", c->max_seq_len, CAP_SEQ, err)))
        return s;
    if (c->n_heads % c->n_kv_heads)
        return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.n_kv_heads: %d does not divide n_heads %d",
                             c->n_kv_heads, c->n_heads);
    if (c->head_dim % 2)
        return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.head_dim: %d must be even (RoPE pairs)", c->head_dim);
    if ((int64_t)c->n_heads * c->head_dim > CAP_DIM)
        return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.n_heads * head_dim: too large");
    if ((unsigned)c->arch > TRL_ARCH_BITNET || (unsigned)c->mlp > TRL_MLP_RELU2 ||
        (unsigned)c->rope_style > TRL_ROPE_HALF || (unsigned)c->act_quant > TRL_ACT_INT8)
        return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config: enum field out of range");
    if (!(c->rope_theta > 0.0f) || isinf(c->rope_theta))
        return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.rope_theta: must be positive and finite");
    if (!(c->norm_eps >= 0.0f) || !(c->norm_eps < 1.0f))
        return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config.norm_eps: must be in [0, 1)");
    if (trl_config_n_params(c) == 0) return trl_set_error(err, TRL_ERR_BAD_CONFIG, "config: too many parameters");
    return TRL_OK;
}

uint64_t trl_config_n_params(const trl_config *c) {
    if (!c || c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->vocab_size <= 0) return 0;
    uint64_t D = (uint64_t)c->dim, H = (uint64_t)c->hidden_dim, V = (uint64_t)c->vocab_size;
    uint64_t qd = (uint64_t)c->n_heads * (uint64_t)c->head_dim, kvd = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
    /* each factor < 2^24, so each product < 2^48: no overflow */
    uint64_t layer = 2 * D + qd * D + 2 * kvd * D + D * qd + 3 * H * D;
    if (c->sub_norms) layer += qd + H;
    uint64_t n = layer * (uint64_t)c->n_layers + V * D * (c->tied_embeddings ? 1 : 2) + D;
    return n;
}
