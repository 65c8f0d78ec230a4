/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the JSON logger (src/core/core.c: tk_log_write with its UTF-8
 * repair, JSON escaping, truncation and secret masking), which formats text
 * that upstream servers and clients control (error messages, names). The
 * input's first byte picks the level; the rest, split at the first NUL, is
 * the module name and the message, logged with "%s". stderr is pointed at a
 * memfd for the call and the line read back: it must be exactly one line of
 * valid JSON (an object with ts, level, module and msg strings) of at most
 * 4608 bytes, and the decoded msg must not hold the test secret that was
 * logged after "Bearer " (a fixed suffix appended to every message) unless
 * the input itself carries it.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "core/core.h"
#include "fuzz.h"

#define SECRET "s3cr3t-T0KEN-value-abcdefgh"
#define LINE_MAX_BYTES 4608

static int sink = -1;
static int saved_stderr = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sink = memfd_create("tk-fuzz-log", MFD_CLOEXEC);
    FUZZ_CHECK(sink >= 0);
    saved_stderr = dup(STDERR_FILENO);
    FUZZ_CHECK(saved_stderr >= 0);
    tk_log_set_level(TK_LOG_DEBUG);
    return 0;
}

/* Log once with stderr redirected; returns the bytes written (in line). */
static size_t capture(tk_log_level_t level, const char *module, const char *msg, char *line,
                      size_t cap)
{
    fflush(stderr);
    FUZZ_CHECK(ftruncate(sink, 0) == 0 && lseek(sink, 0, SEEK_SET) == 0);
    FUZZ_CHECK(dup2(sink, STDERR_FILENO) == STDERR_FILENO);
    tk_log_write(level, module, "%s Bearer " SECRET, msg);
    fflush(stderr);
    FUZZ_CHECK(dup2(saved_stderr, STDERR_FILENO) == STDERR_FILENO);
    ssize_t n = pread(sink, line, cap - 1, 0);
    FUZZ_CHECK(n >= 0);
    line[n] = '\0';
    return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 64 * 1024)
        return 0;
    tk_log_level_t level = (tk_log_level_t)(data[0] & 3);
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    buf[size] = '\0';
    const char *module = buf;
    const char *msg = buf + strlen(buf) + 1;
    if (msg > buf + size)
        msg = buf + size;

    static char line[2 * LINE_MAX_BYTES];
    size_t n = capture(level, module, msg, line, sizeof(line));
    FUZZ_CHECK(n > 0 && n <= LINE_MAX_BYTES);
    FUZZ_CHECK(line[n - 1] == '\n' && memchr(line, '\n', n) == line + n - 1);
    json_error_t je;
    json_t *obj = json_loadb(line, n, 0, &je);
    if (obj == NULL) {
        fprintf(stderr, "log line is not JSON (%s):\n%s\n", je.text, line);
        abort();
    }
    FUZZ_CHECK(json_is_string(json_object_get(obj, "ts")));
    FUZZ_CHECK(json_is_string(json_object_get(obj, "level")));
    FUZZ_CHECK(json_is_string(json_object_get(obj, "module")));
    const char *m = json_string_value(json_object_get(obj, "msg"));
    FUZZ_CHECK(m != NULL);
    /* the appended secret must be masked (the input may carry its own copy) */
    if (strstr(m, SECRET) != NULL && memmem(data, size, SECRET, strlen(SECRET)) == NULL) {
        fprintf(stderr, "secret not masked in log line:\n%s\n", line);
        abort();
    }
    json_decref(obj);
    free(buf);
    return 0;
}
