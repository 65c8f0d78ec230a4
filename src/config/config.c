/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Config loader: decodes the JSON file with jansson (duplicate keys rejected,
 * key order kept), walks it with tables of {name, kind, offset, range,
 * default, validator} into a calloc'd tk_config_t and either hands the whole
 * struct over or destroys it; every error names the file, the key path and the
 * problem, and never quotes a secret (token, env value, header value, URL).
 * Also converts Claude Desktop / Claude Code / VS Code server lists into a
 * Tumiki config (tk_config_import_claude).
 */
#include "config/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "core/mask.h"

#define TK_CONFIG_FILE_MAX ((size_t)16 << 20)
#define TK_TOKEN_FILE_MAX ((size_t)64 << 10)
#define TK_JWT_KEY_MIN 32 /* bytes: 256 bits, as auth/jwt.h TK_JWT_MIN_KEY */
#define TK_AUDIT_KEY_MIN_BYTES 32 /* as audit/audit.h TK_AUDIT_KEY_MIN */
#define TK_VAULT_KEY_MIN_BYTES 32 /* as vault/vault.h TK_VAULT_KEY_MIN */
#define TK_TOKEN_MAX 4096
#define PATH_LEN 512 /* key paths longer than this are truncated in messages */

#define STR_(x) #x
#define STR(x) STR_(x)

typedef struct ctx {
    const char *file; /* prefix of every message */
    char *err;
    size_t errlen;
    tk_config_t *cfg; /* the config being built (NULL while importing) */
    char **ep_names;  /* parsing one endpoint alone: its server names, unresolved */
    size_t nep_names;
    int names_only;   /* ... and that is what parse_ep_servers collects */
} ctx_t;

typedef struct field field_t;

enum field_kind {
    F_STR,     /* char * at off */
    F_STRV,    /* char ** at off, size_t count at count_off */
    F_KV,      /* tk_kv_t * at off, size_t count at count_off */
    F_U32,     /* uint32_t at off, in [min,max] */
    F_U32_LAX, /* as F_U32, but a non-integer is ignored (other clients' keys) */
    F_SIZE,    /* size_t at off, in [min,max] */
    F_BOOL,    /* int at off */
    F_CUSTOM,  /* parse() does the work */
    F_IGNORE   /* accepted and not stored */
};

/* A string validator returns NULL if s is fine, else the problem. A validator
 * for a secret must not quote the value. */
typedef const char *(*check_fn)(const char *s);

struct field {
    const char *name;
    enum field_kind kind;
    size_t off;
    size_t count_off;
    uint64_t min, max, def;
    const char *sdef;     /* F_STR default */
    check_fn check;       /* F_STR value, F_STRV element, F_KV key */
    check_fn check_value; /* F_KV value */
    int (*parse)(ctx_t *c, const char *path, json_t *v, void *base);
};

/* ---- messages and paths ------------------------------------------------ */

static int fail(ctx_t *c, int rc, const char *path, const char *fmt, ...) TK_PRINTF(4, 5);

static int fail(ctx_t *c, int rc, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (c->err == NULL || c->errlen == 0)
        return rc;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    if (path != NULL && path[0] != '\0')
        tk_snprintf(c->err, c->errlen, "%s: %s: %s", c->file, path, msg);
    else
        tk_snprintf(c->err, c->errlen, "%s: %s", c->file, msg);
    return rc;
}

static void path_key(char *dst, const char *parent, const char *key)
{
    tk_snprintf(dst, PATH_LEN, "%s%s%s", parent, parent[0] ? "." : "", key);
}

static void path_index(char *dst, const char *parent, size_t i)
{
    tk_snprintf(dst, PATH_LEN, "%s[%zu]", parent, i);
}

/* jansson appends "near '<input>'" to its messages; the input may be a secret,
 * so that part is cut except for duplicate keys (key names are not secret). */
static int fail_json(ctx_t *c, const json_error_t *je)
{
    char text[sizeof(je->text)];
    char where[64] = "";

    tk_snprintf(text, sizeof(text), "%s", je->text);
    char *near = strstr(text, " near '");
    if (near != NULL && json_error_code(je) != json_error_duplicate_key)
        *near = '\0';
    if (json_error_code(je) == json_error_null_character)
        tk_snprintf(text, sizeof(text), "NUL characters (\\u0000) are not allowed");
    if (je->line > 0)
        tk_snprintf(where, sizeof(where), "line %d column %d", je->line, je->column);
    return fail(c, TK_EINVAL, where, "invalid JSON: %s", text);
}

static void *slot(void *base, size_t off)
{
    return (char *)base + off;
}

/* ---- files ------------------------------------------------------------- */

/* Read a whole file of at most cap bytes into a NUL-terminated heap buffer.
 * Returns 0, TK_EIO (errno kept) or TK_ELIMIT. */
static int read_file(const char *path, size_t cap, char **out, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return TK_EIO;
    size_t alloc = 4096, len = 0;
    char *buf = tk_malloc(alloc);
    int rc = TK_OK;
    for (;;) {
        if (len + 1 == alloc)
            buf = tk_realloc(buf, alloc *= 2);
        size_t n = fread(buf + len, 1, alloc - 1 - len, f);
        len += n;
        if (len > cap) {
            rc = TK_ELIMIT;
            break;
        }
        if (n == 0) {
            if (ferror(f))
                rc = TK_EIO;
            break;
        }
    }
    int saved = errno;
    fclose(f);
    errno = saved;
    if (rc != TK_OK) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return TK_OK;
}

static int read_input(ctx_t *c, const char *path, char **text, size_t *len)
{
    int rc = read_file(path, TK_CONFIG_FILE_MAX, text, len);
    if (rc == TK_ELIMIT)
        return fail(c, rc, NULL, "file is larger than 16 MiB");
    if (rc != TK_OK)
        return fail(c, rc, NULL, "cannot read: %s", strerror(errno));
    return TK_OK;
}

/* ---- validators -------------------------------------------------------- */

static int is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

static const char *check_server_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TK_SERVER_NAME_MAX)
        return "must be 1 to " STR(TK_SERVER_NAME_MAX) " characters";
    for (size_t i = 0; i < n; i++) {
        if (!is_name_char(s[i]))
            return "only letters, digits, '_' and '-' are allowed";
    }
    if (strstr(s, "__") != NULL)
        return "must not contain \"__\" (it separates server and tool names)";
    if (s[0] == '_' || s[n - 1] == '_')
        return "must not start or end with '_'";
    return NULL;
}

static const char *check_slug(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TK_SLUG_MAX)
        return "must be 1 to " STR(TK_SLUG_MAX) " characters";
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return "only lowercase letters, digits and '-' are allowed";
    }
    return NULL;
}

static const char *check_glob(const char *s)
{
    if (s[0] == '\0')
        return "empty pattern";
    for (; *s; s++) {
        if (!is_name_char(*s) && *s != '*' && *s != '.')
            return "patterns use only letters, digits, '_', '-', '.' and '*'";
    }
    return NULL;
}

static const char *check_nonempty(const char *s)
{
    return s[0] == '\0' ? "must not be empty" : NULL;
}

static const char *check_env_name(const char *s)
{
    if (s[0] == '\0')
        return "empty variable name";
    return strchr(s, '=') != NULL ? "variable names must not contain '='" : NULL;
}

static const char *check_header_name(const char *s)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (s[0] == '\0')
        return "empty header name";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!(ch < 0x80 && (is_name_char((char)ch) || strchr(tchar, ch) != NULL)))
            return "header names must be HTTP tokens";
    }
    return NULL;
}

static const char *check_header_value(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return "header value must not contain CR, LF or other control characters";
    }
    return NULL;
}

/* The URL may carry a key in its query: never quote it. */
static const char *check_url(const char *s)
{
    size_t skip;
    if (strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return "must start with http:// or https://";
    if (s[skip] == '\0' || s[skip] == '/')
        return "has no host";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch == 0x7f)
            return "must not contain whitespace or control characters";
    }
    return NULL;
}

/* Split "host[:port]" or "[v6][:port]" at the port; check the host part.
 * *port is NULL when there is none. */
static const char *split_hostport(const char *s, const char **host, size_t *hlen, const char **port)
{
    const char *end;
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL)
            return "missing ']' after an IPv6 address";
        *host = s + 1;
        *hlen = (size_t)(end - *host);
        if (*hlen == 0 || strspn(*host, "0123456789abcdefABCDEF:.") != *hlen)
            return "invalid IPv6 address";
        end++;
    } else {
        *host = s;
        *hlen = strcspn(s, ":");
        end = s + *hlen;
        if (*end == ':' && strchr(end + 1, ':') != NULL)
            return "IPv6 addresses must be in brackets, as in [::1]:8080";
        if (*hlen == 0)
            return "empty host";
        if (*hlen > 253)
            return "host name longer than 253 characters";
        for (size_t i = 0; i < *hlen; i++) {
            if (!is_name_char(s[i]) && s[i] != '.')
                return "host names use only letters, digits, '.', '-' and '_'";
        }
    }
    if (*end == '\0') {
        *port = NULL;
        return NULL;
    }
    if (*end != ':')
        return "unexpected characters after the host";
    *port = end + 1;
    return NULL;
}

static const char *check_hostport(const char *s, int with_scheme)
{
    const char *host, *port;
    size_t hlen;
    uint64_t n;
    if (with_scheme) {
        if (strncmp(s, "http://", 7) == 0)
            s += 7;
        else if (strncmp(s, "https://", 8) == 0)
            s += 8;
        else
            return "origins look like \"http://localhost:6274\": http or https, host, "
                   "optional port, no path";
        if (strchr(s, '/') != NULL)
            return "origins have no path (not even a trailing '/')";
    }
    const char *why = split_hostport(s, &host, &hlen, &port);
    if (why != NULL)
        return why;
    if (port != NULL && tk_parse_uint(port, 1, 65535, &n) != TK_OK)
        return "port must be a number between 1 and 65535";
    return NULL;
}

static const char *check_origin(const char *s)
{
    return check_hostport(s, 1);
}

static const char *check_host(const char *s)
{
    return check_hostport(s, 0);
}

static const char *check_regex(const char *s)
{
    static _Thread_local char why[320];
    if (tk_mask_check_pattern(s, why, sizeof(why)) != TK_OK)
        return why;
    return NULL;
}

/* ---- generic field parsing --------------------------------------------- */

static int parse_str(ctx_t *c, const char *path, json_t *v, check_fn check, char **out)
{
    if (!json_is_string(v))
        return fail(c, TK_EINVAL, path, "expected a string");
    const char *why = check != NULL ? check(json_string_value(v)) : NULL;
    if (why != NULL)
        return fail(c, TK_EINVAL, path, "%s", why);
    free(*out);
    *out = tk_strdup(json_string_value(v));
    return TK_OK;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int parse_strv(ctx_t *c, const char *path, json_t *v, const field_t *f, void *base)
{
    char ***arr = slot(base, f->off);
    size_t *n = slot(base, f->count_off);
    char p[PATH_LEN];

    if (!json_is_array(v))
        return fail(c, TK_EINVAL, path, "expected an array of strings");
    free_strv(*arr, *n);
    *n = 0;
    *arr = tk_calloc(json_array_size(v), sizeof(**arr));
    for (size_t i = 0; i < json_array_size(v); i++) {
        path_index(p, path, i);
        int rc = parse_str(c, p, json_array_get(v, i), f->check, &(*arr)[i]);
        if (rc != TK_OK)
            return rc;
        *n = i + 1;
    }
    return TK_OK;
}

static void free_kv(tk_kv_t *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        if (kv[i].value != NULL)
            OPENSSL_cleanse(kv[i].value, strlen(kv[i].value));
        free(kv[i].value);
    }
    free(kv);
}

static int parse_kv(ctx_t *c, const char *path, json_t *v, const field_t *f, void *base)
{
    tk_kv_t **arr = slot(base, f->off);
    size_t *n = slot(base, f->count_off);
    char p[PATH_LEN];
    const char *key, *why;
    json_t *val;

    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object of strings");
    free_kv(*arr, *n);
    *n = 0;
    *arr = tk_calloc(json_object_size(v), sizeof(**arr));
    json_object_foreach(v, key, val)
    {
        path_key(p, path, key);
        if ((why = f->check(key)) != NULL)
            return fail(c, TK_EINVAL, p, "%s", why);
        if (!json_is_string(val))
            return fail(c, TK_EINVAL, p, "expected a string");
        if (f->check_value != NULL && (why = f->check_value(json_string_value(val))) != NULL)
            return fail(c, TK_EINVAL, p, "%s", why);
        (*arr)[*n].name = tk_strdup(key);
        (*arr)[*n].value = tk_strdup(json_string_value(val));
        (*n)++;
    }
    return TK_OK;
}

static int parse_uint(ctx_t *c, const char *path, json_t *v, const field_t *f, void *base)
{
    if (!json_is_integer(v))
        return fail(c, TK_EINVAL, path, "expected an integer");
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < f->min || (uint64_t)i > f->max)
        return fail(c, TK_EINVAL, path, "must be between %" PRIu64 " and %" PRIu64, f->min, f->max);
    if (f->kind == F_SIZE)
        *(size_t *)slot(base, f->off) = (size_t)i;
    else
        *(uint32_t *)slot(base, f->off) = (uint32_t)i;
    return TK_OK;
}

static int parse_field(ctx_t *c, const char *path, json_t *v, const field_t *f, void *base)
{
    switch (f->kind) {
    case F_STR:
        return parse_str(c, path, v, f->check, slot(base, f->off));
    case F_STRV:
        return parse_strv(c, path, v, f, base);
    case F_KV:
        return parse_kv(c, path, v, f, base);
    case F_U32_LAX:
        if (!json_is_integer(v))
            return TK_OK;
        return parse_uint(c, path, v, f, base);
    case F_U32:
    case F_SIZE:
        return parse_uint(c, path, v, f, base);
    case F_BOOL:
        if (!json_is_boolean(v))
            return fail(c, TK_EINVAL, path, "expected true or false");
        *(int *)slot(base, f->off) = json_is_true(v);
        return TK_OK;
    case F_CUSTOM:
        return f->parse(c, path, v, base);
    case F_IGNORE:
        return TK_OK;
    }
    return TK_EINVAL;
}

/* Parse every key of obj with the table; a key not in it is an error. */
static int parse_object(ctx_t *c, const char *path, json_t *obj, const field_t *fields,
                        size_t nfields, void *base)
{
    char p[PATH_LEN];
    const char *key;
    json_t *val;

    if (!json_is_object(obj))
        return fail(c, TK_EINVAL, path, "expected an object");
    json_object_foreach(obj, key, val)
    {
        size_t i = 0;
        while (i < nfields && strcmp(fields[i].name, key) != 0)
            i++;
        if (i == nfields)
            return fail(c, TK_EINVAL, path, "unknown key \"%s\"", key);
        path_key(p, path, key);
        int rc = parse_field(c, p, val, &fields[i], base);
        if (rc != TK_OK)
            return rc;
    }
    return TK_OK;
}

static void apply_defaults(const field_t *fields, size_t nfields, void *base)
{
    for (size_t i = 0; i < nfields; i++) {
        const field_t *f = &fields[i];
        if (f->kind == F_U32 || f->kind == F_U32_LAX)
            *(uint32_t *)slot(base, f->off) = (uint32_t)f->def;
        else if (f->kind == F_SIZE)
            *(size_t *)slot(base, f->off) = (size_t)f->def;
        else if (f->kind == F_BOOL)
            *(int *)slot(base, f->off) = f->def != 0;
        else if (f->kind == F_STR && f->sdef != NULL)
            *(char **)slot(base, f->off) = tk_strdup(f->sdef);
    }
}

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* ---- top-level custom keys --------------------------------------------- */

static int parse_listen(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    const char *host, *port;
    size_t hlen;
    uint64_t n;

    if (!json_is_string(v))
        return fail(c, TK_EINVAL, path, "expected a string \"HOST:PORT\"");
    const char *why = split_hostport(json_string_value(v), &host, &hlen, &port);
    if (why != NULL)
        return fail(c, TK_EINVAL, path, "%s", why);
    if (port == NULL)
        return fail(c, TK_EINVAL, path, "expected \"HOST:PORT\" (\"[ADDR]:PORT\" for IPv6)");
    if (tk_parse_uint(port, 0, 65535, &n) != TK_OK)
        return fail(c, TK_EINVAL, path, "port must be a number between 0 and 65535");
    free(cfg->listen_host);
    cfg->listen_host = tk_strndup(host, hlen);
    cfg->listen_port = (uint16_t)n;
    return TK_OK;
}

/* A rate string ("100/min", "10/s,burst=20") or "off" into the tk_rate_t at *slot. */
static int parse_rate_into(ctx_t *c, const char *path, json_t *v, tk_rate_t *slot)
{
    char why[160];
    if (!json_is_string(v))
        return fail(c, TK_EINVAL, path, "expected a rate such as \"100/min\", or \"off\"");
    if (strcmp(json_string_value(v), "off") == 0) {
        memset(slot, 0, sizeof(*slot));
        return TK_OK;
    }
    if (tk_rate_parse_msg(json_string_value(v), slot, why, sizeof(why)) != TK_OK)
        return fail(c, TK_EINVAL, path, "%s", why);
    return TK_OK;
}

static int parse_rate_per_key(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_rate_into(c, path, v, &((tk_config_t *)base)->rate_per_key);
}

static int parse_rate_per_ip(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_rate_into(c, path, v, &((tk_config_t *)base)->rate_per_ip);
}

static int parse_login_rate(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_rate_into(c, path, v, &((tk_config_t *)base)->dash_login_rate);
}

static int parse_ep_rate(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_rate_into(c, path, v, &((tk_endpoint_conf_t *)base)->rate);
}

static int parse_log_level(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    if (!json_is_string(v) || tk_log_parse_level(json_string_value(v), &cfg->log_level) != TK_OK)
        return fail(c, TK_EINVAL, path, "expected \"debug\", \"info\", \"warn\" or \"error\"");
    return TK_OK;
}

/* Validate a token of len bytes and store a copy; the message never quotes it. */
static int set_token(ctx_t *c, const char *path, const char *tok, size_t len, char **out)
{
    if (len < TK_MIN_TOKEN_LEN)
        return fail(c, TK_EINVAL, path,
                    "token must be at least " STR(TK_MIN_TOKEN_LEN) " characters (it has %zu)",
                    len);
    if (len > TK_TOKEN_MAX)
        return fail(c, TK_EINVAL, path, "token is longer than " STR(TK_TOKEN_MAX) " characters");
    for (size_t i = 0; i < len; i++) {
        if (tok[i] <= 0x20 || tok[i] >= 0x7f)
            return fail(c, TK_EINVAL, path, "token must be printable ASCII without spaces");
    }
    *out = tk_strndup(tok, len);
    return TK_OK;
}

/* A secret from an environment variable (from_env) or a file (trailing
 * whitespace trimmed) into a heap copy the caller cleanses and frees. The
 * messages name the variable or file, never the value. */
static int read_secret(ctx_t *c, const char *path, int from_env, const char *name, char **buf,
                       size_t *len)
{
    if (from_env) {
        const char *env = name[0] != '\0' ? getenv(name) : NULL;
        if (env == NULL || env[0] == '\0')
            return fail(c, TK_EINVAL, path, "environment variable \"%s\" is not set", name);
        *len = strlen(env);
        *buf = tk_strndup(env, *len);
        return TK_OK;
    }
    int rc = read_file(name, TK_TOKEN_FILE_MAX, buf, len);
    if (rc == TK_ELIMIT)
        return fail(c, TK_EINVAL, path, "\"%s\" is larger than 64 KiB", name);
    if (rc != TK_OK)
        return fail(c, TK_EINVAL, path, "cannot read \"%s\": %s", name, strerror(errno));
    while (*len > 0 && strchr(" \t\r\n", (*buf)[*len - 1]) != NULL)
        (*len)--;
    return TK_OK;
}

static void drop_secret(char *buf, size_t len)
{
    OPENSSL_cleanse(buf, len);
    free(buf);
}

/* Whether key is "<prefix>env" or "<prefix>file". */
static int is_secret_key(const char *key, const char *prefix)
{
    size_t pl = strlen(prefix);
    return strncmp(key, prefix, pl) == 0 && (!strcmp(key + pl, "env") || !strcmp(key + pl, "file"));
}

/* A "<prefix>env": NAME or "<prefix>file": PATH member read into *buf
 * (NULL until then: giving both is refused). TK_ENOENT: key is neither
 * (nothing reported). */
static int secret_member(ctx_t *c, const char *p, const char *key, const char *s,
                         const char *prefix, char **buf, size_t *len)
{
    if (!is_secret_key(key, prefix))
        return TK_ENOENT;
    if (*buf != NULL)
        return fail(c, TK_EINVAL, p, "give only one of \"%senv\" and \"%sfile\"", prefix, prefix);
    return read_secret(c, p, !strcmp(key + strlen(prefix), "env"), s, buf, len);
}

/* A binary key given as "<prefix>env" / "<prefix>file" (see secret_member),
 * min to max bytes, stored in *key and *keylen; what names it in errors. */
typedef struct key_spec {
    const char *prefix;
    const char *what;
    size_t min, max;
} key_spec_t;

static int key_member(ctx_t *c, const char *p, const char *key, const char *s, const key_spec_t *ks,
                      unsigned char **out, size_t *outlen)
{
    char *buf = (char *)*out;
    size_t len = 0;
    int rc = secret_member(c, p, key, s, ks->prefix, &buf, &len);
    if (rc != TK_OK)
        return rc;
    if (len < ks->min || len > ks->max) {
        drop_secret(buf, len);
        return fail(c, TK_EINVAL, p, "%s must be %zu to %zu bytes (at least %zu bits); it has %zu",
                    ks->what, ks->min, ks->max, ks->min * 8, len);
    }
    *out = (unsigned char *)buf;
    *outlen = len;
    return TK_OK;
}

/* An object whose "<prefix>env" / "<prefix>file" members are a key (see
 * key_member) and whose other members follow fields. */
static int parse_keyed(ctx_t *c, const char *path, json_t *v, const key_spec_t *ks,
                       unsigned char **out, size_t *outlen, const field_t *fields, size_t n,
                       void *base)
{
    char p[PATH_LEN];
    const char *key;
    json_t *val;
    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object");
    json_t *rest = json_object();
    int rc = TK_OK;
    json_object_foreach(v, key, val)
    {
        if (!is_secret_key(key, ks->prefix)) {
            json_object_set(rest, key, val);
            continue;
        }
        path_key(p, path, key);
        rc = json_is_string(val) && json_string_length(val) > 0
                 ? key_member(c, p, key, json_string_value(val), ks, out, outlen)
                 : fail(c, TK_EINVAL, p, "expected a non-empty string");
        if (rc != TK_OK)
            break;
    }
    if (rc == TK_OK)
        rc = parse_object(c, path, rest, fields, n, base);
    json_decref(rest);
    return rc;
}

static int parse_auth(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    char p[PATH_LEN];
    const char *key;
    json_t *val;

    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object");
    json_object_foreach(v, key, val)
    {
        int is_tok = strcmp(key, "bearer_token") == 0;
        int is_env = strcmp(key, "bearer_token_env") == 0;
        int is_file = strcmp(key, "bearer_token_file") == 0;
        if (!is_tok && !is_env && !is_file)
            return fail(c, TK_EINVAL, path, "unknown key \"%s\"", key);
        if (cfg->bearer_token != NULL)
            return fail(c, TK_EINVAL, path,
                        "give only one of \"bearer_token\", "
                        "\"bearer_token_env\" and \"bearer_token_file\"");
        path_key(p, path, key);
        if (!json_is_string(val))
            return fail(c, TK_EINVAL, p, "expected a string");
        const char *s = json_string_value(val);
        int rc;
        if (is_tok) {
            rc = set_token(c, p, s, strlen(s), &cfg->bearer_token);
        } else {
            char *buf;
            size_t len;
            rc = read_secret(c, p, is_env, s, &buf, &len);
            if (rc != TK_OK)
                return rc;
            rc = set_token(c, p, buf, len, &cfg->bearer_token);
            drop_secret(buf, len);
        }
        if (rc != TK_OK)
            return rc;
    }
    return TK_OK;
}

#define CFG(m) offsetof(tk_config_t, m)

/* clang-format off */
static const field_t limits_fields[] = {
    {.name = "max_body_bytes", .kind = F_SIZE, .off = CFG(max_body_bytes),
     .min = 1024, .max = (uint64_t)1 << 30, .def = (uint64_t)4 << 20},
    {.name = "max_message_bytes", .kind = F_SIZE, .off = CFG(max_message_bytes),
     .min = 1024, .max = (uint64_t)1 << 30, .def = (uint64_t)16 << 20},
    {.name = "session_idle_timeout_s", .kind = F_U32, .off = CFG(session_idle_timeout_s),
     .min = 1, .max = 604800, .def = 3600},
    {.name = "max_sessions", .kind = F_U32, .off = CFG(max_sessions),
     .min = 1, .max = 1000000, .def = 10000},
    {.name = "max_connections", .kind = F_U32, .off = CFG(max_connections),
     .min = 1, .max = 1000000, .def = 4096},
    {.name = "header_timeout_ms", .kind = F_U32, .off = CFG(header_timeout_ms),
     .min = 100, .max = 600000, .def = 10000},
    {.name = "idle_timeout_ms", .kind = F_U32, .off = CFG(idle_timeout_ms),
     .min = 100, .max = 3600000, .def = 60000},
};

static const field_t rate_fields[] = {
    {.name = "per_key", .kind = F_CUSTOM, .parse = parse_rate_per_key},
    {.name = "per_ip_unauthenticated", .kind = F_CUSTOM, .parse = parse_rate_per_ip},
    {.name = "max_keys", .kind = F_U32, .off = CFG(rate_max_keys),
     .min = 1, .max = 10000000, .def = 100000},
};

static int parse_outbound(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    char p[PATH_LEN], why[TK_SSRF_ERR_MAX];
    const char *key;
    json_t *val;
    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object");
    json_object_foreach(v, key, val)
    {
        path_key(p, path, key);
        if (strcmp(key, "allow_cidrs") != 0)
            return fail(c, TK_EINVAL, path, "unknown key \"%s\"", key);
        if (!json_is_array(val))
            return fail(c, TK_EINVAL, p, "expected an array of CIDR ranges");
        size_t i;
        json_t *cidr;
        json_array_foreach(val, i, cidr)
        {
            char pi[PATH_LEN];
            tk_snprintf(pi, sizeof(pi), "%s[%zu]", p, i);
            if (!json_is_string(cidr))
                return fail(c, TK_EINVAL, pi, "expected a string");
            if (tk_ssrf_policy_allow_cidr(cfg->ssrf, json_string_value(cidr), why, sizeof(why)) !=
                TK_OK)
                return fail(c, TK_EINVAL, pi, "%s", why);
        }
    }
    return TK_OK;
}

typedef int (*member_fn)(ctx_t *c, const char *path, const char *p, const char *key,
                         const char *s, void *base);

/* Call each() for every member of object v (at path), all of which must be
 * non-empty strings; p is the member's own path. */
static int string_members(ctx_t *c, const char *path, json_t *v, member_fn each, void *base)
{
    char p[PATH_LEN];
    const char *key;
    json_t *val;
    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object");
    json_object_foreach(v, key, val)
    {
        path_key(p, path, key);
        if (!json_is_string(val) || json_string_length(val) == 0)
            return fail(c, TK_EINVAL, p, "expected a non-empty string");
        int rc = each(c, path, p, key, json_string_value(val), base);
        if (rc != TK_OK)
            return rc;
    }
    return TK_OK;
}

/* ---- metrics and alerts ---------------------------------------------- */

static const char *check_webhook_url(const char *s)
{
    if (strncasecmp(s, "https://", 8) != 0 && strncasecmp(s, "http://", 7) != 0)
        return "expected an http:// or https:// URL";
    return strlen(s) > 8192 ? "longer than 8192 characters" : NULL;
}

#define RULE(m) offsetof(tk_alert_rule_t, m)
#define ALR(m) offsetof(tk_config_t, alerts.m)

/* clang-format off */
static const field_t rule_fields[] = {
    {.name = "count", .kind = F_U32, .off = RULE(count), .min = 0, .max = 10000},
    {.name = "window_s", .kind = F_U32, .off = RULE(window_s), .min = 1, .max = 86400},
};
/* clang-format on */

static int parse_rule(ctx_t *c, const char *path, json_t *v, tk_alert_rule_t *rule)
{
    return parse_object(c, path, v, rule_fields, NFIELDS(rule_fields), rule);
}

static int parse_rule_auth(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_rule(c, path, v, &((tk_config_t *)base)->alerts.auth_failures);
}

static int parse_rule_rate(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_rule(c, path, v, &((tk_config_t *)base)->alerts.rate_limited);
}

static int parse_rule_restarts(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_rule(c, path, v, &((tk_config_t *)base)->alerts.upstream_restarts);
}

/* clang-format off */
static const field_t alerts_fields[] = {
    {.name = "webhook_url", .kind = F_STR, .off = ALR(webhook_url), .check = check_webhook_url},
    {.name = "auth_failures", .kind = F_CUSTOM, .parse = parse_rule_auth},
    {.name = "rate_limited", .kind = F_CUSTOM, .parse = parse_rule_rate},
    {.name = "upstream_restarts", .kind = F_CUSTOM, .parse = parse_rule_restarts},
    {.name = "cooldown_s", .kind = F_U32, .off = ALR(cooldown_s), .min = 1, .max = 86400,
     .def = 300},
    {.name = "timeout_ms", .kind = F_U32, .off = ALR(timeout_ms), .min = 100, .max = 60000,
     .def = 5000},
    {.name = "retries", .kind = F_U32, .off = ALR(retries), .min = 0, .max = 10, .def = 2},
    {.name = "max_queue", .kind = F_U32, .off = ALR(max_queue), .min = 1, .max = 10000,
     .def = 100},
};

static const field_t metrics_fields[] = {
    {.name = "require_auth", .kind = F_BOOL, .off = CFG(metrics_require_auth), .def = 1},
};
/* clang-format on */

static int parse_alerts(ctx_t *c, const char *path, json_t *v, void *base)
{
    static const key_spec_t ks = {"secret_", "the webhook signing key", 32, 4096};
    tk_config_t *cfg = base;
    int rc = parse_keyed(c, path, v, &ks, &cfg->alerts.secret, &cfg->alerts.secretlen,
                         alerts_fields, NFIELDS(alerts_fields), base);
    if (rc == TK_OK && cfg->alerts.webhook_url != NULL && cfg->alerts.secret == NULL)
        return fail(c, TK_EINVAL, path,
                    "\"secret_env\" or \"secret_file\" is required with \"webhook_url\" "
                    "(webhook bodies are signed)");
    return rc;
}

static int parse_metrics(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_object(c, path, v, metrics_fields, NFIELDS(metrics_fields), base);
}

/* Whether the listen address only accepts local connections. */
static int listen_is_loopback(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 || strncmp(h, "127.", 4) == 0;
}

static void set_alert_defaults(tk_alerts_conf_t *a)
{
    a->auth_failures = (tk_alert_rule_t){.count = 20, .window_s = 60};
    a->rate_limited = (tk_alert_rule_t){.count = 100, .window_s = 60};
    a->upstream_restarts = (tk_alert_rule_t){.count = 5, .window_s = 300};
}

static const field_t audit_fields[] = {
    {.name = "enabled", .kind = F_BOOL, .off = CFG(audit_enabled), .def = 1},
    {.name = "dir", .kind = F_STR, .off = CFG(audit_dir), .check = check_nonempty},
    {.name = "retention_days", .kind = F_U32, .off = CFG(audit_retention_days),
     .min = 1, .max = 36500, .def = 90},
    {.name = "fsync_interval_ms", .kind = F_U32, .off = CFG(audit_fsync_interval_ms),
     .min = 0, .max = 60000, .def = 1000},
    {.name = "log_arguments", .kind = F_BOOL, .off = CFG(audit_log_arguments)},
    {.name = "log_results", .kind = F_BOOL, .off = CFG(audit_log_results)},
};

/* "audit": {"hmac_key_env": NAME | "hmac_key_file": PATH, ...audit_fields} */
static int parse_audit(ctx_t *c, const char *path, json_t *v, void *base)
{
    static const key_spec_t ks = {"hmac_key_", "the audit HMAC key", TK_AUDIT_KEY_MIN_BYTES, 256};
    tk_config_t *cfg = base;
    return parse_keyed(c, path, v, &ks, &cfg->audit_key, &cfg->audit_keylen, audit_fields,
                       NFIELDS(audit_fields), base);
}

/* "vault": {"key_env": NAME} or {"key_file": PATH}: the master key of the
 * secret vault (src/vault), 32..256 bytes; without it the vault makes
 * <data_dir>/vault.key on first use. */
static int parse_vault(ctx_t *c, const char *path, json_t *v, void *base)
{
    static const key_spec_t ks = {"key_", "the vault key", TK_VAULT_KEY_MIN_BYTES, 256};
    tk_config_t *cfg = base;
    return parse_keyed(c, path, v, &ks, &cfg->vault_key, &cfg->vault_keylen, NULL, 0, base);
}

static int jwt_member(ctx_t *c, const char *path, const char *p, const char *key, const char *s,
                      void *base)
{
    tk_config_t *cfg = base;
    if (!strcmp(key, "issuer") || !strcmp(key, "audience")) {
        char **slot = !strcmp(key, "issuer") ? &cfg->jwt_issuer : &cfg->jwt_audience;
        free(*slot);
        *slot = tk_strdup(s);
        return TK_OK;
    }
    static const key_spec_t ks = {"secret_", "the JWT signing key", TK_JWT_KEY_MIN, 4096};
    int rc = key_member(c, p, key, s, &ks, &cfg->jwt_key, &cfg->jwt_keylen);
    return rc == TK_ENOENT ? fail(c, TK_EINVAL, path, "unknown key \"%s\"", key) : rc;
}

/* "jwt": {"secret_env": NAME | "secret_file": PATH, "issuer": S, "audience": S} */
static int parse_jwt(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    int rc = string_members(c, path, v, jwt_member, base);
    if (rc == TK_OK && cfg->jwt_key == NULL)
        return fail(c, TK_EINVAL, path, "\"secret_env\" or \"secret_file\" is required");
    return rc;
}

static const field_t tls_fields[] = {
    {.name = "cert_file", .kind = F_STR, .off = CFG(tls_cert_file), .check = check_nonempty},
    {.name = "key_file", .kind = F_STR, .off = CFG(tls_key_file), .check = check_nonempty},
    {.name = "hsts_max_age_s", .kind = F_U32, .off = CFG(hsts_max_age_s),
     .min = 0, .max = 63072000, .def = 31536000},
};
static const field_t dashboard_fields[] = {
    {.name = "web_dir", .kind = F_STR, .off = CFG(dash_web_dir), .check = check_nonempty},
    {.name = "bcrypt_cost", .kind = F_U32, .off = CFG(dash_bcrypt_cost),
     .min = 4, .max = 31, .def = 12},
    {.name = "lockout_threshold", .kind = F_U32, .off = CFG(dash_lockout_threshold),
     .min = 1, .max = 1000, .def = 5},
    {.name = "lockout_s", .kind = F_U32, .off = CFG(dash_lockout_s),
     .min = 1, .max = 604800, .def = 900},
    {.name = "session_idle_s", .kind = F_U32, .off = CFG(dash_idle_s),
     .min = 1, .max = 604800, .def = 1800},
    {.name = "session_lifetime_s", .kind = F_U32, .off = CFG(dash_lifetime_s),
     .min = 1, .max = 2592000, .def = 43200},
    {.name = "max_sessions", .kind = F_U32, .off = CFG(dash_max_sessions),
     .min = 1, .max = 1000000, .def = 10000},
    {.name = "login_rate", .kind = F_CUSTOM, .parse = parse_login_rate},
};
/* clang-format on */

static int oidc_member(ctx_t *c, const char *path, const char *p, const char *key, const char *s,
                       void *base)
{
    tk_config_t *cfg = base;
    if (cfg == NULL) /* never: string_members passes the config being loaded */
        return TK_EINVAL;
    char **slot = !strcmp(key, "issuer")         ? &cfg->oidc_issuer
                  : !strcmp(key, "client_id")    ? &cfg->oidc_client_id
                  : !strcmp(key, "redirect_uri") ? &cfg->oidc_redirect_uri
                  : !strcmp(key, "scopes")       ? &cfg->oidc_scopes
                                                 : NULL;
    if (slot == NULL) {
        size_t len = 0;
        int rc = secret_member(c, p, key, s, "client_secret_", &cfg->oidc_client_secret, &len);
        return rc == TK_ENOENT ? fail(c, TK_EINVAL, path, "unknown key \"%s\"", key) : rc;
    }
    if ((slot == &cfg->oidc_issuer || slot == &cfg->oidc_redirect_uri) &&
        strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
        return fail(c, TK_EINVAL, p, "expected an http(s) URL");
    free(*slot);
    *slot = tk_strdup(s);
    return TK_OK;
}

/* "oidc": {"issuer", "client_id", "client_secret_env" | "client_secret_file",
 * "redirect_uri", "scopes"} */
static int parse_oidc(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    int rc = string_members(c, path, v, oidc_member, base);
    if (rc != TK_OK)
        return rc;
    if (cfg->oidc_issuer == NULL || cfg->oidc_client_id == NULL ||
        cfg->oidc_client_secret == NULL || cfg->oidc_redirect_uri == NULL)
        return fail(c, TK_EINVAL, path,
                    "\"issuer\", \"client_id\", \"client_secret_env\" (or \"client_secret_file\") "
                    "and \"redirect_uri\" are required");
    /* kept as given: ID tokens must carry exactly this "iss" (Auth0's ends in '/') */
    if (cfg->oidc_scopes == NULL)
        cfg->oidc_scopes = tk_strdup("openid email");
    return TK_OK;
}

static int parse_dashboard(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_object(c, path, v, dashboard_fields, NFIELDS(dashboard_fields), base);
}

static int parse_limits(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_object(c, path, v, limits_fields, NFIELDS(limits_fields), base);
}

/* "threads": 1..TK_THREADS_MAX, or "auto" (the online CPUs, capped) */
static int parse_threads(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n < 1 ? 1 : (n > TK_THREADS_MAX ? TK_THREADS_MAX : (uint32_t)n);
        return TK_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > TK_THREADS_MAX)
        return fail(c, TK_EINVAL, path,
                    "expected an integer between 1 and " STR(TK_THREADS_MAX) " or \"auto\"");
    cfg->threads = (uint32_t)json_integer_value(v);
    return TK_OK;
}

static const field_t server_section_fields[] = {
    {.name = "threads", .kind = F_CUSTOM, .parse = parse_threads},
};

static int parse_server_section(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_object(c, path, v, server_section_fields, NFIELDS(server_section_fields), base);
}

static int parse_rates(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_object(c, path, v, rate_fields, NFIELDS(rate_fields), base);
}

static int parse_tls(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    int rc = parse_object(c, path, v, tls_fields, NFIELDS(tls_fields), base);
    if (rc != TK_OK)
        return rc;
    if (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL)
        return fail(c, TK_EINVAL, path, "both \"cert_file\" and \"key_file\" are required");
    return TK_OK;
}

/* "pinning": {"mode": "block" | "flag" | "off", "trust_on_first_use": BOOL}
 * into the tk_pin_policy_t at base; keys left out keep what is there. */
static int parse_pin_policy(ctx_t *c, const char *path, json_t *v, tk_pin_policy_t *pol)
{
    static const char *const modes[] = {
        [TK_PIN_BLOCK] = "block", [TK_PIN_FLAG] = "flag", [TK_PIN_OFF] = "off"};
    char p[PATH_LEN];
    const char *key;
    json_t *val;
    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object");
    json_object_foreach(v, key, val)
    {
        path_key(p, path, key);
        if (strcmp(key, "trust_on_first_use") == 0) {
            if (!json_is_boolean(val))
                return fail(c, TK_EINVAL, p, "expected true or false");
            pol->tofu = json_is_true(val);
            continue;
        }
        if (strcmp(key, "mode") != 0)
            return fail(c, TK_EINVAL, path, "unknown key \"%s\"", key);
        size_t i = 0;
        while (i < NFIELDS(modes) &&
               !(json_is_string(val) && !strcmp(json_string_value(val), modes[i])))
            i++;
        if (i == NFIELDS(modes))
            return fail(c, TK_EINVAL, p, "expected \"block\", \"flag\" or \"off\"");
        pol->mode = (int)i;
    }
    return TK_OK;
}

static int parse_pinning(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_pin_policy(c, path, v, &((tk_config_t *)base)->pinning);
}

static int parse_srv_pinning(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_pin_policy(c, path, v, &((tk_server_conf_t *)base)->pinning);
}

/* Servers without their own pinning keys take the global ones (which may
 * come after mcpServers in the file, so this runs once everything is read). */
static void inherit_one(const tk_config_t *cfg, tk_pin_policy_t *p)
{
    if (p->mode < 0)
        p->mode = cfg->pinning.mode;
    if (p->tofu < 0)
        p->tofu = cfg->pinning.tofu;
}

static void inherit_pinning(tk_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nservers; i++)
        inherit_one(cfg, &cfg->servers[i].pinning);
}

/* ---- servers ----------------------------------------------------------- */

static int parse_transport(ctx_t *c, const char *path, json_t *v, void *base)
{
    static const struct {
        const char *name;
        tk_transport_t t;
    } names[] = {{"stdio", TK_TRANSPORT_STDIO},
                 {"http", TK_TRANSPORT_HTTP},
                 {"streamable-http", TK_TRANSPORT_HTTP},
                 {"streamableHttp", TK_TRANSPORT_HTTP},
                 {"sse", TK_TRANSPORT_SSE}};
    tk_server_conf_t *s = base;

    if (!json_is_string(v))
        return fail(c, TK_EINVAL, path, "expected a string");
    for (size_t i = 0; i < NFIELDS(names); i++) {
        if (strcmp(json_string_value(v), names[i].name) == 0) {
            s->transport = names[i].t;
            return TK_OK;
        }
    }
    return fail(c, TK_EINVAL, path,
                "unknown transport (expected \"stdio\", \"http\", "
                "\"streamable-http\" or \"sse\")");
}

#define SRV(m) offsetof(tk_server_conf_t, m)

/* clang-format off */
static const field_t server_fields[] = {
    {.name = "command", .kind = F_STR, .off = SRV(command), .check = check_nonempty},
    {.name = "args", .kind = F_STRV, .off = SRV(args), .count_off = SRV(nargs)},
    {.name = "env", .kind = F_KV, .off = SRV(env), .count_off = SRV(nenv),
     .check = check_env_name},
    {.name = "cwd", .kind = F_STR, .off = SRV(cwd), .check = check_nonempty},
    {.name = "url", .kind = F_STR, .off = SRV(url), .check = check_url},
    {.name = "headers", .kind = F_KV, .off = SRV(headers), .count_off = SRV(nheaders),
     .check = check_header_name, .check_value = check_header_value},
    {.name = "type", .kind = F_CUSTOM, .parse = parse_transport},
    {.name = "transport", .kind = F_CUSTOM, .parse = parse_transport},
    {.name = "disabled", .kind = F_BOOL, .off = SRV(disabled)},
    {.name = "timeout_ms", .kind = F_U32, .off = SRV(request_timeout_ms),
     .min = 1, .max = 3600000, .def = 60000},
    {.name = "timeout", .kind = F_U32_LAX, .off = SRV(request_timeout_ms),
     .min = 1, .max = 3600000, .def = 60000},
    {.name = "connect_timeout_ms", .kind = F_U32, .off = SRV(connect_timeout_ms),
     .min = 1, .max = 3600000, .def = 10000},
    {.name = "idle_timeout_s", .kind = F_U32, .off = SRV(idle_timeout_s),
     .min = 0, .max = 604800, .def = 600},
    {.name = "max_queue", .kind = F_U32, .off = SRV(max_queue),
     .min = 0, .max = 1000000, .def = 1024},
    {.name = "circuit_failures", .kind = F_U32, .off = SRV(circuit_failures),
     .min = 0, .max = 100000, .def = 5},
    {.name = "circuit_open_ms", .kind = F_U32, .off = SRV(circuit_open_ms),
     .min = 100, .max = 3600000, .def = 30000},
    {.name = "max_inflight", .kind = F_U32, .off = SRV(max_inflight),
     .min = 1, .max = 100000, .def = 1024},
    {.name = "pinning", .kind = F_CUSTOM, .parse = parse_srv_pinning},
    /* written by other clients; accepted and ignored */
    {.name = "description", .kind = F_IGNORE},
    {.name = "autoApprove", .kind = F_IGNORE},
    {.name = "alwaysAllow", .kind = F_IGNORE},
};
/* clang-format on */

/* After the keys: infer the transport and check the keys fit it. */
static int finish_server(ctx_t *c, const char *path, json_t *obj, tk_server_conf_t *s)
{
    int typed = json_object_get(obj, "type") != NULL || json_object_get(obj, "transport") != NULL;

    if (s->command != NULL && s->url != NULL)
        return fail(c, TK_EINVAL, path, "give either \"command\" or \"url\", not both");
    if (!typed) {
        if (s->command == NULL && s->url == NULL)
            return fail(c, TK_EINVAL, path,
                        "needs \"command\" (stdio server) or \"url\" (remote server)");
        s->transport = s->command != NULL ? TK_TRANSPORT_STDIO : TK_TRANSPORT_HTTP;
    } else if (s->transport == TK_TRANSPORT_STDIO && s->command == NULL) {
        return fail(c, TK_EINVAL, path, "a stdio server needs \"command\"");
    } else if (s->transport != TK_TRANSPORT_STDIO && s->url == NULL) {
        return fail(c, TK_EINVAL, path, "an http or sse server needs \"url\"");
    }
    if (s->transport == TK_TRANSPORT_STDIO && s->nheaders > 0)
        return fail(c, TK_EINVAL, path, "\"headers\" applies only to http and sse servers");
    if (s->transport != TK_TRANSPORT_STDIO && (s->nargs > 0 || s->nenv > 0 || s->cwd != NULL))
        return fail(c, TK_EINVAL, path,
                    "\"args\", \"env\" and \"cwd\" apply only to stdio servers");
    return TK_OK;
}

static int parse_server(ctx_t *c, const char *path, const char *name, json_t *v,
                        tk_server_conf_t *s)
{
    const char *why = check_server_name(name);
    if (why != NULL)
        return fail(c, TK_EINVAL, path, "invalid server name: %s", why);
    s->name = tk_strdup(name);
    apply_defaults(server_fields, NFIELDS(server_fields), s);
    s->pinning = (tk_pin_policy_t){.mode = -1, .tofu = -1}; /* inherit */
    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object");
    if (json_object_get(v, "type") != NULL && json_object_get(v, "transport") != NULL)
        return fail(c, TK_EINVAL, path, "give \"type\" or \"transport\", not both");
    if (json_object_get(v, "timeout_ms") != NULL && json_is_integer(json_object_get(v, "timeout")))
        return fail(c, TK_EINVAL, path, "give \"timeout_ms\" or \"timeout\", not both");
    int rc = parse_object(c, path, v, server_fields, NFIELDS(server_fields), s);
    return rc != TK_OK ? rc : finish_server(c, path, v, s);
}

static int parse_servers(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_config_t *cfg = base;
    char p[PATH_LEN];
    const char *key;
    json_t *val;

    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object");
    if (json_object_size(v) > TK_MAX_SERVERS)
        return fail(c, TK_ELIMIT, path, "more than " STR(TK_MAX_SERVERS) " servers");
    cfg->servers = tk_calloc(json_object_size(v), sizeof(*cfg->servers));
    json_object_foreach(v, key, val)
    {
        tk_server_conf_t *s = &cfg->servers[cfg->nservers++];
        path_key(p, path, key);
        int rc = parse_server(c, p, key, val, s);
        if (rc != TK_OK)
            return rc;
    }
    return TK_OK;
}

static void free_server(tk_server_conf_t *s)
{
    free(s->name);
    free(s->command);
    free_strv(s->args, s->nargs);
    free_kv(s->env, s->nenv);
    free(s->cwd);
    free(s->url);
    free_kv(s->headers, s->nheaders);
}

/* ---- endpoints --------------------------------------------------------- */

static int parse_ep_servers(ctx_t *c, const char *path, json_t *v, void *base)
{
    tk_endpoint_conf_t *e = base;
    char p[PATH_LEN];

    if (!json_is_array(v))
        return fail(c, TK_EINVAL, path, "expected an array of server names");
    if (json_array_size(v) > TK_MAX_SERVERS * 2)
        return fail(c, TK_ELIMIT, path, "too many servers");
    e->servers = tk_calloc(json_array_size(v), sizeof(*e->servers));
    if (c->names_only)
        c->ep_names = tk_calloc(json_array_size(v) + 1, sizeof(char *));
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *name = json_array_get(v, i);
        path_index(p, path, i);
        if (!json_is_string(name))
            return fail(c, TK_EINVAL, p, "expected a string");
        if (c->names_only) {
            const char *n = json_string_value(name);
            for (size_t j = 0; j < c->nep_names; j++)
                if (strcmp(c->ep_names[j], n) == 0)
                    return fail(c, TK_EINVAL, p, "server \"%s\" is listed twice", n);
            if (check_server_name(n) != NULL)
                return fail(c, TK_EINVAL, p, "unknown server \"%s\"", n);
            c->ep_names[c->nep_names++] = tk_strdup(n);
            continue;
        }
        const tk_server_conf_t *s = tk_config_find_server(c->cfg, json_string_value(name));
        if (s == NULL)
            return fail(c, TK_EINVAL, p, "unknown server \"%s\"", json_string_value(name));
        size_t idx = (size_t)(s - c->cfg->servers);
        for (size_t j = 0; j < e->nservers; j++) {
            if (e->servers[j] == idx)
                return fail(c, TK_EINVAL, p, "server \"%s\" is listed twice", s->name);
        }
        e->servers[e->nservers++] = idx;
    }
    return TK_OK;
}

#define EP(m) offsetof(tk_endpoint_conf_t, m)

/* clang-format off */
static const field_t tools_fields[] = {
    {.name = "allow", .kind = F_STRV, .off = EP(tool_allow), .count_off = EP(nallow),
     .check = check_glob},
    {.name = "deny", .kind = F_STRV, .off = EP(tool_deny), .count_off = EP(ndeny),
     .check = check_glob},
};
/* clang-format on */

static int parse_ep_tools(ctx_t *c, const char *path, json_t *v, void *base)
{
    return parse_object(c, path, v, tools_fields, NFIELDS(tools_fields), base);
}

static const field_t endpoint_fields[] = {
    {.name = "servers", .kind = F_CUSTOM, .parse = parse_ep_servers},
    {.name = "tools", .kind = F_CUSTOM, .parse = parse_ep_tools},
    {.name = "namespace", .kind = F_BOOL, .off = EP(namespace_names), .def = 1},
    {.name = "rate_limit", .kind = F_CUSTOM, .parse = parse_ep_rate},
};

static void add_all_servers(const tk_config_t *cfg, tk_endpoint_conf_t *e)
{
    e->servers = tk_calloc(cfg->nservers, sizeof(*e->servers));
    for (e->nservers = 0; e->nservers < cfg->nservers; e->nservers++)
        e->servers[e->nservers] = e->nservers;
}

static int parse_endpoints(ctx_t *c, json_t *v)
{
    tk_config_t *cfg = c->cfg;
    const char *path = "endpoints", *slug, *why;
    char p[PATH_LEN];
    json_t *val;

    if (v == NULL) {
        cfg->endpoints = tk_calloc(1, sizeof(*cfg->endpoints));
        cfg->nendpoints = 1;
        cfg->endpoints[0].slug = tk_strdup("default");
        cfg->endpoints[0].namespace_names = 1;
        add_all_servers(cfg, &cfg->endpoints[0]);
        return TK_OK;
    }
    if (!json_is_object(v))
        return fail(c, TK_EINVAL, path, "expected an object");
    if (json_object_size(v) == 0)
        return fail(c, TK_EINVAL, path, "no endpoints (leave the key out for a \"default\" one)");
    if (json_object_size(v) > TK_MAX_ENDPOINTS)
        return fail(c, TK_ELIMIT, path, "more than " STR(TK_MAX_ENDPOINTS) " endpoints");
    cfg->endpoints = tk_calloc(json_object_size(v), sizeof(*cfg->endpoints));
    json_object_foreach(v, slug, val)
    {
        tk_endpoint_conf_t *e = &cfg->endpoints[cfg->nendpoints++];
        path_key(p, path, slug);
        if ((why = check_slug(slug)) != NULL)
            return fail(c, TK_EINVAL, p, "invalid endpoint name: %s", why);
        e->slug = tk_strdup(slug);
        apply_defaults(endpoint_fields, NFIELDS(endpoint_fields), e);
        int rc = parse_object(c, p, val, endpoint_fields, NFIELDS(endpoint_fields), e);
        if (rc != TK_OK)
            return rc;
        if (json_object_get(val, "servers") == NULL)
            add_all_servers(cfg, e);
    }
    return TK_OK;
}

static void free_endpoint(tk_endpoint_conf_t *e)
{
    free(e->slug);
    free(e->servers);
    free_strv(e->tool_allow, e->nallow);
    free_strv(e->tool_deny, e->ndeny);
}

/* ---- the whole file ---------------------------------------------------- */

/* clang-format off */
static const field_t config_fields[] = {
    {.name = "listen", .kind = F_CUSTOM, .parse = parse_listen},
    {.name = "data_dir", .kind = F_STR, .off = CFG(data_dir), .check = check_nonempty,
     .sdef = "./data"},
    {.name = "log_level", .kind = F_CUSTOM, .parse = parse_log_level},
    {.name = "auth", .kind = F_CUSTOM, .parse = parse_auth},
    {.name = "allowed_origins", .kind = F_STRV, .off = CFG(allowed_origins),
     .count_off = CFG(norigins), .check = check_origin},
    {.name = "allowed_hosts", .kind = F_STRV, .off = CFG(allowed_hosts),
     .count_off = CFG(nhosts), .check = check_host},
    {.name = "mask_patterns", .kind = F_STRV, .off = CFG(mask_patterns),
     .count_off = CFG(nmask_patterns), .check = check_regex},
    {.name = "limits", .kind = F_CUSTOM, .parse = parse_limits},
    {.name = "server", .kind = F_CUSTOM, .parse = parse_server_section},
    {.name = "tls", .kind = F_CUSTOM, .parse = parse_tls},
    {.name = "rate_limits", .kind = F_CUSTOM, .parse = parse_rates},
    {.name = "outbound", .kind = F_CUSTOM, .parse = parse_outbound},
    {.name = "jwt", .kind = F_CUSTOM, .parse = parse_jwt},
    {.name = "metrics", .kind = F_CUSTOM, .parse = parse_metrics},
    {.name = "alerts", .kind = F_CUSTOM, .parse = parse_alerts},
    {.name = "audit", .kind = F_CUSTOM, .parse = parse_audit},
    {.name = "vault", .kind = F_CUSTOM, .parse = parse_vault},
    {.name = "dashboard", .kind = F_CUSTOM, .parse = parse_dashboard},
    {.name = "oidc", .kind = F_CUSTOM, .parse = parse_oidc},
    {.name = "mcpServers", .kind = F_CUSTOM, .parse = parse_servers},
    {.name = "pinning", .kind = F_CUSTOM, .parse = parse_pinning},
    {.name = "endpoints", .kind = F_IGNORE}, /* parsed once the servers are known */
};
/* clang-format on */

static void lowercase_all(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (char *p = v[i]; *p; p++) {
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        }
    }
}

/* Every remote server URL against the outbound policy ("save time"): a URL
 * whose host is, or resolves to, a denied address is an error. A name that
 * does not resolve now is left to the check made at every connect. */
static int check_server_url(ctx_t *c, const tk_ssrf_policy_t *pol, const tk_server_conf_t *s,
                            const char *path)
{
    char why[TK_SSRF_ERR_MAX];
    if (s->url == NULL || s->disabled)
        return TK_OK;
    tk_ssrf_target_t t;
    int rc = tk_ssrf_resolve(pol, s->url, &t, why, sizeof(why));
    tk_ssrf_target_clear(&t);
    if (rc == TK_EINVAL || rc == TK_ELIMIT)
        return fail(c, TK_EINVAL, path, "%s (allow a range in outbound.allow_cidrs)", why);
    return TK_OK;
}

static int check_outbound(ctx_t *c)
{
    tk_config_t *cfg = c->cfg;
    char p[PATH_LEN], why[TK_SSRF_ERR_MAX];
    for (size_t i = 0; i < cfg->nservers; i++) {
        tk_snprintf(p, sizeof(p), "mcpServers.%s.url", cfg->servers[i].name);
        int rc = check_server_url(c, cfg->ssrf, &cfg->servers[i], p);
        if (rc != TK_OK)
            return rc;
    }
    if (cfg->alerts.webhook_url != NULL) {
        tk_ssrf_target_t t;
        int rc = tk_ssrf_resolve(cfg->ssrf, cfg->alerts.webhook_url, &t, why, sizeof(why));
        tk_ssrf_target_clear(&t);
        if (rc == TK_EINVAL || rc == TK_ELIMIT)
            return fail(c, TK_EINVAL, "alerts.webhook_url",
                        "%s (allow a range in outbound.allow_cidrs)", why);
    }
    return TK_OK;
}

static int parse_config(ctx_t *c, json_t *root, int use_env)
{
    tk_config_t *cfg = c->cfg;

    if (!json_is_object(root))
        return fail(c, TK_EINVAL, NULL, "expected a JSON object at the top level");
    int rc = parse_object(c, "", root, config_fields, NFIELDS(config_fields), cfg);
    if (rc == TK_OK)
        inherit_pinning(cfg);
    if (rc == TK_OK)
        rc = parse_endpoints(c, json_object_get(root, "endpoints"));
    if (rc == TK_OK && !cfg->metrics_require_auth && !listen_is_loopback(cfg->listen_host))
        rc = fail(c, TK_EINVAL, "metrics.require_auth",
                  "false is only allowed when listening on a loopback address");
    if (rc == TK_OK && use_env && cfg->bearer_token == NULL) {
        const char *env = getenv("TUMIKI_TOKEN");
        if (env != NULL && env[0] != '\0')
            rc = set_token(c, "TUMIKI_TOKEN (environment)", env, strlen(env), &cfg->bearer_token);
    }
    /* (the import's own validation pass skips this: an imported localhost
     * URL still needs an explicit outbound allow before it can be served) */
    if (rc == TK_OK && use_env)
        rc = check_outbound(c);
    lowercase_all(cfg->allowed_origins, cfg->norigins);
    lowercase_all(cfg->allowed_hosts, cfg->nhosts);
    return rc;
}

static tk_config_t *config_new(const char *name)
{
    tk_config_t *cfg = tk_calloc(1, sizeof(*cfg));
    cfg->path = tk_strdup(name);
    cfg->listen_host = tk_strdup("127.0.0.1");
    cfg->listen_port = 8080;
    cfg->log_level = TK_LOG_INFO;
    cfg->threads = 1;
    apply_defaults(config_fields, NFIELDS(config_fields), cfg);
    apply_defaults(limits_fields, NFIELDS(limits_fields), cfg);
    apply_defaults(tls_fields, NFIELDS(tls_fields), cfg);
    apply_defaults(rate_fields, NFIELDS(rate_fields), cfg);
    apply_defaults(alerts_fields, NFIELDS(alerts_fields), cfg);
    apply_defaults(metrics_fields, NFIELDS(metrics_fields), cfg);
    set_alert_defaults(&cfg->alerts);
    apply_defaults(audit_fields, NFIELDS(audit_fields), cfg);
    apply_defaults(dashboard_fields, NFIELDS(dashboard_fields), cfg);
    cfg->dash_login_rate = (tk_rate_t){.count = 10, .burst = 10, .period_ms = 60000};
    cfg->rate_per_key = (tk_rate_t){.count = 100, .burst = 100, .period_ms = 60000};
    cfg->rate_per_ip = (tk_rate_t){.count = 60, .burst = 60, .period_ms = 60000};
    cfg->ssrf = tk_ssrf_policy_create();
    cfg->jwt_issuer = tk_strdup("tumiki");
    cfg->jwt_audience = tk_strdup("tumiki-mcp");
    cfg->pinning = (tk_pin_policy_t){.mode = TK_PIN_BLOCK, .tofu = 1};
    return cfg;
}

static int load_buffer(const char *text, size_t len, const char *name, int use_env,
                       tk_config_t **out, char *err, size_t errlen)
{
    ctx_t c = {.file = name, .err = err, .errlen = errlen};
    json_error_t je;

    *out = NULL;
    if (len > TK_CONFIG_FILE_MAX)
        return fail(&c, TK_ELIMIT, NULL, "file is larger than 16 MiB");
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return fail_json(&c, &je);
    c.cfg = config_new(name);
    int rc = parse_config(&c, root, use_env);
    json_decref(root);
    if (rc != TK_OK) {
        tk_config_destroy(c.cfg);
        return rc;
    }
    *out = c.cfg;
    return TK_OK;
}

int tk_config_load_string(const char *json, const char *name, tk_config_t **out, char *err,
                          size_t errlen)
{
    if (name == NULL)
        name = "<string>";
    return load_buffer(json, strlen(json), name, 1, out, err, errlen);
}

int tk_config_load_file(const char *path, tk_config_t **out, char *err, size_t errlen)
{
    ctx_t c = {.file = path, .err = err, .errlen = errlen};
    char *text;
    size_t len;

    *out = NULL;
    int rc = read_input(&c, path, &text, &len);
    if (rc != TK_OK)
        return rc;
    rc = load_buffer(text, len, path, 1, out, err, errlen);
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

void tk_config_destroy(tk_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->listen_host);
    free(cfg->data_dir);
    tk_ssrf_policy_destroy(cfg->ssrf);
    if (cfg->jwt_key != NULL)
        OPENSSL_cleanse(cfg->jwt_key, cfg->jwt_keylen);
    free(cfg->jwt_key);
    if (cfg->audit_key != NULL)
        OPENSSL_cleanse(cfg->audit_key, cfg->audit_keylen);
    free(cfg->audit_key);
    if (cfg->vault_key != NULL)
        OPENSSL_cleanse(cfg->vault_key, cfg->vault_keylen);
    free(cfg->vault_key);
    free(cfg->audit_dir);
    free(cfg->jwt_issuer);
    free(cfg->jwt_audience);
    free(cfg->dash_web_dir);
    free(cfg->oidc_issuer);
    free(cfg->oidc_client_id);
    if (cfg->oidc_client_secret)
        drop_secret(cfg->oidc_client_secret, strlen(cfg->oidc_client_secret));
    free(cfg->oidc_redirect_uri);
    free(cfg->oidc_scopes);
    free(cfg->tls_cert_file);
    free(cfg->tls_key_file);
    if (cfg->alerts.webhook_url != NULL)
        OPENSSL_cleanse(cfg->alerts.webhook_url, strlen(cfg->alerts.webhook_url));
    free(cfg->alerts.webhook_url);
    if (cfg->alerts.secret != NULL)
        OPENSSL_cleanse(cfg->alerts.secret, cfg->alerts.secretlen);
    free(cfg->alerts.secret);
    if (cfg->bearer_token != NULL)
        OPENSSL_cleanse(cfg->bearer_token, strlen(cfg->bearer_token));
    free(cfg->bearer_token);
    free_strv(cfg->allowed_origins, cfg->norigins);
    free_strv(cfg->mask_patterns, cfg->nmask_patterns);
    free_strv(cfg->allowed_hosts, cfg->nhosts);
    for (size_t i = 0; i < cfg->nservers; i++)
        free_server(&cfg->servers[i]);
    free(cfg->servers);
    for (size_t i = 0; i < cfg->nendpoints; i++)
        free_endpoint(&cfg->endpoints[i]);
    free(cfg->endpoints);
    free(cfg);
}

/* Register a binary key read from env or a file (text keys are the norm). */
static int mask_key(const unsigned char *key, size_t len)
{
    if (key == NULL)
        return TK_OK;
    char *k = tk_strndup((const char *)key, len);
    int rc = tk_mask_add_secret(k);
    OPENSSL_cleanse(k, strlen(k));
    free(k);
    return rc;
}

int tk_config_register_masks(const tk_config_t *cfg, char *err, size_t errlen)
{
    int rc = tk_mask_add_secret(cfg->bearer_token);
    if (rc == TK_OK)
        rc = mask_key(cfg->jwt_key, cfg->jwt_keylen);
    if (rc == TK_OK)
        rc = mask_key(cfg->audit_key, cfg->audit_keylen);
    if (rc == TK_OK)
        rc = mask_key(cfg->vault_key, cfg->vault_keylen);
    if (rc == TK_OK)
        rc = mask_key(cfg->alerts.secret, cfg->alerts.secretlen);
    if (rc == TK_OK && cfg->oidc_client_secret != NULL)
        rc = tk_mask_add_secret(cfg->oidc_client_secret);
    for (size_t i = 0; i < cfg->nservers && rc == TK_OK; i++) {
        const tk_server_conf_t *sv = &cfg->servers[i];
        for (size_t j = 0; j < sv->nenv && rc == TK_OK; j++)
            rc = tk_mask_add_secret(sv->env[j].value);
        for (size_t j = 0; j < sv->nheaders && rc == TK_OK; j++)
            rc = tk_mask_add_secret(sv->headers[j].value);
    }
    if (rc != TK_OK) {
        tk_snprintf(err, errlen, "%s: too many secret values to mask (more than %d)", cfg->path,
                    TK_MASK_MAX_SECRETS);
        return rc;
    }
    for (size_t i = 0; i < cfg->nmask_patterns; i++) {
        char why[320];
        rc = tk_mask_add_pattern(cfg->mask_patterns[i], why, sizeof(why));
        if (rc != TK_OK) {
            tk_snprintf(err, errlen, "%s: mask_patterns[%zu]: %s", cfg->path, i, why);
            return rc;
        }
    }
    return TK_OK;
}

const tk_server_conf_t *tk_config_find_server(const tk_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nservers; i++) {
        if (cfg->servers[i].name != NULL && strcmp(cfg->servers[i].name, name) == 0)
            return &cfg->servers[i];
    }
    return NULL;
}

const tk_endpoint_conf_t *tk_config_find_endpoint(const tk_config_t *cfg, const char *slug)
{
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        if (cfg->endpoints[i].slug != NULL && strcmp(cfg->endpoints[i].slug, slug) == 0)
            return &cfg->endpoints[i];
    }
    return NULL;
}

/* ---- one server or endpoint at a time (admin API) ----------------------- */

int tk_config_parse_server(const tk_config_t *cfg, const char *label, const char *name,
                           json_t *obj, tk_server_conf_t **out, char *err, size_t errlen)
{
    ctx_t c = {.file = label, .err = err, .errlen = errlen};
    tk_server_conf_t *s = tk_calloc(1, sizeof(*s));
    *out = NULL;
    int rc = parse_server(&c, "", name, obj, s);
    if (rc == TK_OK) {
        inherit_one(cfg, &s->pinning);
        rc = check_server_url(&c, cfg->ssrf, s, "url");
    }
    if (rc != TK_OK) {
        tk_config_server_free(s);
        return rc;
    }
    *out = s;
    return TK_OK;
}

void tk_config_server_free(tk_server_conf_t *s)
{
    if (s == NULL)
        return;
    free_server(s);
    free(s);
}

int tk_config_parse_endpoint(const char *label, const char *slug, json_t *obj,
                             tk_endpoint_conf_t **out, char ***names, size_t *nnames, char *err,
                             size_t errlen)
{
    ctx_t c = {.file = label, .err = err, .errlen = errlen, .names_only = 1};
    tk_endpoint_conf_t *e = tk_calloc(1, sizeof(*e));
    const char *why = check_slug(slug);
    *out = NULL;
    *names = NULL;
    *nnames = 0;
    int rc = why != NULL ? fail(&c, TK_EINVAL, "", "invalid endpoint name: %s", why) : TK_OK;
    if (rc == TK_OK && !json_is_object(obj))
        rc = fail(&c, TK_EINVAL, "", "expected an object");
    if (rc == TK_OK) {
        e->slug = tk_strdup(slug);
        apply_defaults(endpoint_fields, NFIELDS(endpoint_fields), e);
        rc = parse_object(&c, "", obj, endpoint_fields, NFIELDS(endpoint_fields), e);
    }
    if (rc != TK_OK) {
        free_strv(c.ep_names, c.nep_names);
        tk_config_endpoint_free(e);
        return rc;
    }
    free(e->servers); /* indexes mean nothing here: the caller resolves the names */
    e->servers = NULL;
    *names = c.ep_names != NULL ? c.ep_names : tk_calloc(1, sizeof(char *));
    *nnames = c.nep_names;
    *out = e;
    return TK_OK;
}

void tk_config_endpoint_free(tk_endpoint_conf_t *e)
{
    if (e == NULL)
        return;
    free_endpoint(e);
    free(e);
}

int tk_config_check_name(const char *name, int slug, char *err, size_t errlen)
{
    const char *why = slug ? check_slug(name) : check_server_name(name);
    if (why != NULL)
        tk_snprintf(err, errlen, "invalid %s name: %s", slug ? "endpoint" : "server", why);
    return why != NULL ? TK_EINVAL : TK_OK;
}

/* ---- import from other clients ----------------------------------------- */

static void warnf(FILE *warn, const char *fmt, ...) TK_PRINTF(2, 3);

static void warnf(FILE *warn, const char *fmt, ...)
{
    va_list ap;
    if (warn == NULL)
        return;
    va_start(ap, fmt);
    if (vfprintf(warn, fmt, ap) < 0)
        clearerr(warn);
    va_end(ap);
}

/* Deterministic repair of a server name: each invalid character (a whole UTF-8
 * sequence counts as one) becomes '-', runs of '_' collapse, leading and
 * trailing '_' go, the result is cut to TK_SERVER_NAME_MAX. */
static void sanitize_name(const char *in, char out[TK_SERVER_NAME_MAX + 1])
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n < TK_SERVER_NAME_MAX; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;
        char ch = is_name_char((char)*p) ? (char)*p : '-';
        if (ch == '_' && (n == 0 || out[n - 1] == '_'))
            continue;
        out[n++] = ch;
    }
    while (n > 0 && out[n - 1] == '_')
        n--;
    out[n] = '\0';
    if (n == 0)
        tk_snprintf(out, TK_SERVER_NAME_MAX + 1, "server");
}

/* Make base unique against taken by appending -2, -3, ...; records the result. */
static void unique_name(const char *base, json_t *taken, char out[TK_SERVER_NAME_MAX + 1])
{
    tk_snprintf(out, TK_SERVER_NAME_MAX + 1, "%s", base);
    for (unsigned i = 2; json_object_get(taken, out) != NULL; i++) {
        char suffix[16];
        int slen = tk_snprintf(suffix, sizeof(suffix), "-%u", i);
        size_t keep = strlen(base);
        if (keep > TK_SERVER_NAME_MAX - (size_t)slen)
            keep = TK_SERVER_NAME_MAX - (size_t)slen;
        while (keep > 0 && base[keep - 1] == '_')
            keep--;
        tk_snprintf(out, TK_SERVER_NAME_MAX + 1, "%.*s%s", (int)keep, base, suffix);
    }
    json_object_set_new(taken, out, json_true());
}

static int import_type(ctx_t *c, const char *path, json_t *v, json_t *dst)
{
    static const char *names[][2] = {{"stdio", "stdio"},
                                     {"http", "http"},
                                     {"streamable-http", "http"},
                                     {"streamableHttp", "http"},
                                     {"sse", "sse"}};
    if (!json_is_string(v))
        return fail(c, TK_EINVAL, path, "expected a string");
    for (size_t i = 0; i < NFIELDS(names); i++) {
        if (strcmp(json_string_value(v), names[i][0]) == 0) {
            json_object_set_new(dst, "type", json_string(names[i][1]));
            return TK_OK;
        }
    }
    return fail(c, TK_EINVAL, path, "unknown transport \"%s\"", json_string_value(v));
}

/* Copy the keys Tumiki understands; warn about the rest. */
static int import_server(ctx_t *c, const char *path, json_t *in, json_t *dst, FILE *warn)
{
    static const char *copied[] = {"command", "args", "env", "cwd", "url", "headers", "disabled"};
    char p[PATH_LEN];
    const char *key;
    json_t *val;

    if (!json_is_object(in))
        return fail(c, TK_EINVAL, path, "expected an object");
    json_object_foreach(in, key, val)
    {
        size_t i = 0;
        while (i < NFIELDS(copied) && strcmp(copied[i], key) != 0)
            i++;
        path_key(p, path, key);
        if (i < NFIELDS(copied)) {
            json_object_set(dst, key, val);
        } else if (strcmp(key, "type") == 0 || strcmp(key, "transport") == 0) {
            int rc = import_type(c, p, val, dst);
            if (rc != TK_OK)
                return rc;
        } else {
            warnf(warn, "%s: %s: dropping unknown key \"%s\"\n", c->file, path, key);
        }
    }
    return TK_OK;
}

static int import_servers(ctx_t *c, const char *skey, json_t *in, json_t *out_srv, json_t *names,
                          FILE *warn)
{
    json_t *taken = json_object();
    char p[PATH_LEN], base[TK_SERVER_NAME_MAX + 1], name[TK_SERVER_NAME_MAX + 1];
    const char *key;
    json_t *val;
    int rc = TK_OK;

    json_object_foreach(in, key, val)
    {
        if (check_server_name(key) == NULL)
            json_object_set_new(taken, key, json_true());
    }
    json_object_foreach(in, key, val)
    {
        path_key(p, skey, key);
        if (check_server_name(key) == NULL) {
            tk_snprintf(name, sizeof(name), "%s", key);
        } else {
            sanitize_name(key, base);
            unique_name(base, taken, name);
            warnf(warn, "%s: %s: invalid server name, renamed to \"%s\"\n", c->file, p, name);
        }
        json_t *dst = json_object();
        json_object_set_new(out_srv, name, dst);
        json_array_append_new(names, json_string(name));
        if ((rc = import_server(c, p, val, dst, warn)) != TK_OK)
            break;
    }
    json_decref(taken);
    return rc;
}

/* Build the Tumiki document from the parsed client config. */
static int import_doc(ctx_t *c, json_t *root, FILE *warn, json_t **out)
{
    const char *skey = "mcpServers", *key;
    json_t *in = json_object_get(root, skey), *val;

    if (!json_is_object(root))
        return fail(c, TK_EINVAL, NULL, "expected a JSON object at the top level");
    if (in == NULL) {
        skey = "servers";
        in = json_object_get(root, skey);
    }
    if (in == NULL)
        return fail(c, TK_EINVAL, NULL, "no \"mcpServers\" (or VS Code \"servers\") object");
    if (!json_is_object(in))
        return fail(c, TK_EINVAL, skey, "expected an object");
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, skey) != 0)
            warnf(warn, "%s: ignoring top-level key \"%s\"\n", c->file, key);
    }
    json_t *doc = json_object(), *servers = json_object(), *names = json_array();
    json_object_set_new(doc, "listen", json_string("127.0.0.1:8080"));
    json_object_set_new(doc, "data_dir", json_string("./data"));
    json_object_set_new(doc, "mcpServers", servers);
    json_t *ep = json_object();
    json_object_set_new(ep, "servers", names);
    json_t *eps = json_object();
    json_object_set_new(eps, "default", ep);
    json_object_set_new(doc, "endpoints", eps);
    int rc = import_servers(c, skey, in, servers, names, warn);
    if (rc != TK_OK) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return TK_OK;
}

int tk_config_import_claude(const char *in_path, FILE *out, FILE *warn, char *err, size_t errlen)
{
    ctx_t c = {.file = in_path, .err = err, .errlen = errlen};
    char *text = NULL, *dump = NULL;
    json_t *root = NULL, *doc = NULL;
    tk_config_t *check = NULL;
    json_error_t je;
    size_t len;

    int rc = read_input(&c, in_path, &text, &len);
    if (rc != TK_OK)
        return rc;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        rc = fail_json(&c, &je);
        goto out;
    }
    if ((rc = import_doc(&c, root, warn, &doc)) != TK_OK)
        goto out;
    dump = json_dumps(doc, JSON_INDENT(2));
    if (dump == NULL) {
        rc = fail(&c, TK_ENOMEM, NULL, "cannot serialise the result");
        goto out;
    }
    /* What we write must load: check it the way tumiki will (minus the env). */
    if ((rc = load_buffer(dump, strlen(dump), in_path, 0, &check, err, errlen)) != TK_OK)
        goto out;
    if (fputs(dump, out) == EOF || fputc('\n', out) == EOF || fflush(out) != 0)
        rc = fail(&c, TK_EIO, NULL, "cannot write the result: %s", strerror(errno));
out:
    tk_config_destroy(check);
    if (dump != NULL)
        OPENSSL_cleanse(dump, strlen(dump));
    free(dump);
    json_decref(doc);
    json_decref(root);
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}
