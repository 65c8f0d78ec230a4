/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the real HTTP request path: libevent's parser, then everything
 * Tumiki does with a request (src/http/server.c: framing and smuggling
 * checks, Host/Origin validation, CORS, bearer authentication, routing; and
 * src/mcp/gateway.c: Streamable HTTP POST/GET/DELETE, sessions, JSON-RPC
 * dispatch). One event base, gateway (a config with no upstream servers and
 * one endpoint, "default", and a bearer token) and HTTP server on
 * 127.0.0.1:<ephemeral>, with a temporary data directory for the store that
 * API keys are checked against) are created once and kept; each input is written as
 * raw bytes to a fresh TCP connection while the loop runs, until the server
 * closes it, nothing has moved for a few loop turns, or 50 ms pass. The
 * response is read and discarded after two checks: it starts like an HTTP
 * response, and no 200/202 is served to an input that lacks the bearer token
 * (the only unauthenticated 2xx routes are /healthz and CORS preflight, 204).
 *
 * "@SID@" in the input is replaced by the id of a live session that the
 * harness opened with a real initialize, so the fuzzer can reach session
 * methods (tools/list, GET streams, DELETE); a deleted session is reopened
 * and the whole stack is rebuilt when inputs have opened too many sessions.
 * Set TK_FUZZ_LOG=debug|info|warn to see the gateway's log (default: errors)
 * and TK_FUZZ_TRACE=1 for one line per exchange (bytes, time, how it ended),
 * TK_FUZZ_TRACE=2 to print each response as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/core.h"
#include "fuzz.h"
#include "http/server.h"
#include "mcp/gateway.h"

#define TOKEN "fuzz-token-0123456789abcdefghijklmnopqrstuvwxyz"
#define SID_MARK "@SID@"
#define FUZZ_MAX_INPUT (256 * 1024)
#define RESP_CAP (64 * 1024)
#define IDLE_TURNS 8     /* loop turns without any byte moving: the exchange is over */
#define DEADLINE_MS 50   /* hard bound per input */
#define MAX_SESSIONS 512 /* rebuild the stack beyond this many open sessions */

/* %s: the data directory (a fresh temporary one; the server keeps its store there) */
static const char config_fmt[] =
    "{\"listen\": \"127.0.0.1:0\", \"data_dir\": \"%s\","
    " \"auth\": {\"bearer_token\": \"" TOKEN "\"},"
    " \"allowed_origins\": [\"https://app.example.com\"],"
    " \"allowed_hosts\": [\"gateway.example.com\"],"
    " \"limits\": {\"max_body_bytes\": 65536, \"max_sessions\": 100000,"
    "              \"header_timeout_ms\": 1000, \"idle_timeout_ms\": 1000},"
    /* limits high enough never to bite, so the limiter runs on every request
     * without turning every input into a 429 */
    " \"rate_limits\": {\"per_key\": \"1000000000/s\","
    "                 \"per_ip_unauthenticated\": \"1000000000/s\"},"
    " \"endpoints\": {\"default\": {\"servers\": [], \"rate_limit\": \"1000000000/s\"}}}";

static const char init_body[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
    "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},"
    "\"clientInfo\":{\"name\":\"fuzz\",\"version\":\"0\"}}}";

static struct event_base *base;
static char data_dir[64];
static tk_config_t *cfg;
static tk_gateway_t *gw;
static tk_http_server_t *srv;
static int port;
static char sid[80];
static char resp[RESP_CAP + 1];
static int trace; /* TK_FUZZ_TRACE=1: one line per exchange on stderr; =2: and the response */

static uint64_t now_ms(void)
{
    return tk_now_ms();
}

/* Send req on a new connection while running the loop; keep the first
 * RESP_CAP bytes of the response in resp. Returns the bytes kept. */
static size_t exchange(const char *req, size_t len)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = -1;
    for (int attempt = 0; fd < 0; attempt++) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_CHECK(fd >= 0);
        /* loopback: the kernel completes the handshake before the server accepts */
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        /* out of ephemeral ports or backlog full: let the server catch up */
        FUZZ_CHECK(attempt < 100 && (errno == EADDRNOTAVAIL || errno == EAGAIN ||
                                     errno == ECONNREFUSED || errno == ETIMEDOUT));
        close(fd);
        fd = -1;
        for (int i = 0; i < 10; i++)
            event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(10000);
    }
    FUZZ_CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);

    size_t sent = 0, kept = 0;
    int idle = 0, closed = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (!closed && idle < IDLE_TURNS && now_ms() < deadline) {
        int moved = 0;
        if (sent < len) {
            ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += (size_t)n;
                moved = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                sent = len; /* the server hung up on us: stop writing */
            }
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (;;) {
            char tmp[16384];
            ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
            if (n > 0) {
                size_t take = (size_t)n;
                if (take > RESP_CAP - kept)
                    take = RESP_CAP - kept;
                memcpy(resp + kept, tmp, take);
                kept += take;
                moved = 1;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                closed = 1;
            break;
        }
        idle = moved || sent < len ? 0 : idle + 1;
    }
    if (trace)
        fprintf(stderr, "exchange: %zu bytes in, %zu sent, %zu out, %llu ms, %s\n", len, sent, kept,
                (unsigned long long)(now_ms() - deadline + DEADLINE_MS),
                closed               ? "closed"
                : idle >= IDLE_TURNS ? "idle"
                                     : "deadline");
    /* an orderly close as a client would (the server sees EOF), then a reset
     * so that no TIME_WAIT state eats the ephemeral ports over millions of runs */
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 2; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    /* let the server notice the close and release the connection */
    for (int i = 0; i < 4; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    resp[kept] = '\0';
    if (trace > 1)
        fprintf(stderr, "%s\n", resp);
    return kept;
}

static void open_session(void)
{
    char req[1024];
    int len = tk_snprintf(req, sizeof(req),
                          "POST /mcp HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\n"
                          "Authorization: Bearer " TOKEN "\r\n"
                          "Content-Type: application/json\r\n"
                          "Accept: application/json, text/event-stream\r\n"
                          "Content-Length: %zu\r\n"
                          "Connection: close\r\n"
                          "\r\n%s",
                          strlen(init_body), init_body);
    FUZZ_CHECK(len > 0 && (size_t)len < sizeof(req));
    sid[0] = '\0';
    size_t n = exchange(req, (size_t)len);
    const char *h = n ? strcasestr(resp, "\r\nMcp-Session-Id: ") : NULL;
    if (h == NULL) {
        fprintf(stderr, "fuzz_http_request: initialize failed:\n%s\n", resp);
        abort();
    }
    h += 18;
    size_t idlen = strcspn(h, "\r\n");
    FUZZ_CHECK(idlen > 0 && idlen < sizeof(sid));
    memcpy(sid, h, idlen);
    sid[idlen] = '\0';
}

static void stack_create(void)
{
    char err[512], json[2048];
    FUZZ_CHECK(tk_snprintf(json, sizeof(json), config_fmt, data_dir) < (int)sizeof(json));
    if (tk_config_load_string(json, "fuzz", &cfg, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "fuzz_http_request: %s\n", err);
        abort();
    }
    gw = tk_gateway_create(base, cfg);
    FUZZ_CHECK(gw != NULL);
    if (tk_http_server_create(base, cfg, gw, &srv, err, sizeof(err)) != TK_OK) {
        fprintf(stderr, "fuzz_http_request: %s\n", err);
        abort();
    }
    port = tk_http_server_port(srv);
    FUZZ_CHECK(port > 0);
    open_session();
}

static void stack_destroy(void)
{
    tk_http_server_destroy(srv);
    tk_gateway_destroy(gw);
    tk_config_destroy(cfg);
    srv = NULL;
    gw = NULL;
    cfg = NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void at_exit(void)
{
    stack_destroy();
    event_base_free(base);
    nftw(data_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* closed connections linger up to 1 s in the server */
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("setrlimit");
    }
    unsetenv("TUMIKI_TOKEN");
    const char *tr = getenv("TK_FUZZ_TRACE");
    trace = tr == NULL ? 0 : tr[0] == '2' ? 2 : 1;
    const char *lvl = getenv("TK_FUZZ_LOG");
    tk_log_level_t level = TK_LOG_ERROR;
    if (lvl == NULL || tk_log_parse_level(lvl, &level) != TK_OK)
        level = TK_LOG_ERROR;
    tk_log_set_level(level);
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    tk_snprintf(data_dir, sizeof(data_dir), "%s/tk-fuzz-http-XXXXXX", tmp);
    FUZZ_CHECK(mkdtemp(data_dir) != NULL);
    base = event_base_new();
    FUZZ_CHECK(base != NULL);
    stack_create();
    atexit(at_exit);
    return 0;
}

/* Copy data with every SID_MARK replaced by the live session id. */
static char *expand(const uint8_t *data, size_t size, size_t *outlen)
{
    size_t marks = 0, ml = strlen(SID_MARK), sl = strlen(sid);
    for (size_t i = 0; i + ml <= size; i++)
        if (memcmp(data + i, SID_MARK, ml) == 0)
            marks++;
    char *out = malloc(size + marks * sl + 1);
    FUZZ_CHECK(out != NULL);
    size_t o = 0;
    for (size_t i = 0; i < size;) {
        if (i + ml <= size && memcmp(data + i, SID_MARK, ml) == 0) {
            memcpy(out + o, sid, sl);
            o += sl;
            i += ml;
        } else {
            out[o++] = (char)data[i++];
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/* An input without the token must not get a 200 or 202 (outside /healthz). */
static void check_response(const char *req, size_t reqlen, size_t n)
{
    if (n == 0)
        return;
    /* libevent echoes the request's version, whatever it was ("HTTP/0.1") */
    FUZZ_CHECK(strncmp(resp, "HTTP/", 5) == 0);
    if (memmem(req, reqlen, TOKEN, strlen(TOKEN)) != NULL ||
        memmem(req, reqlen, "healthz", 7) != NULL)
        return;
    for (const char *p = resp; (p = strstr(p, "HTTP/")) != NULL; p += 5) {
        if (p != resp && p[-1] != '\n')
            continue;
        if (strlen(p) < 12)
            break;
        const char *code = strchr(p, ' '); /* after "HTTP/x.y " */
        if (code == NULL)
            break;
        code++;
        if (!strncmp(code, "200", 3) || !strncmp(code, "202", 3)) {
            fprintf(stderr, "unauthenticated request was served:\n%s\n", resp);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return 0;
    size_t len;
    char *req = expand(data, size, &len);
    size_t before = tk_gateway_session_count(gw);
    size_t n = exchange(req, len);
    check_response(req, len, n);
    /* a DELETE naming our session, or any session ending, may have ended ours */
    int reopen = memmem(req, len, "DELETE", 6) != NULL && memmem(data, size, SID_MARK, 5);
    free(req);
    size_t after = tk_gateway_session_count(gw);
    if (after > MAX_SESSIONS) {
        stack_destroy();
        stack_create();
    } else if (reopen || after < before || after == 0) {
        open_session();
    }
    return 0;
}
