/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tool-definition pinning (rug-pull defence). Each tool a server lists is
 * reduced to a hash of its definition (tk_pin_hash); the store keeps, per
 * (server, tool), the hash an administrator approved and the one last seen.
 * The gateway asks tk_pins_check() for every listed tool when it builds a
 * catalogue and hides (policy "block") or marks (policy "flag") a tool whose
 * definition is not the approved one.
 *
 * The in-memory table lives on the event loop; store writes and a poll for
 * approvals made elsewhere (the `tumiki tools` CLI, another gateway) run on a
 * worker thread with its own store handle, so the loop never waits on
 * SQLite. When the poll finds that an approval changed, the `changed`
 * callback runs on the loop with the server's name, within about a second.
 *
 * Ownership: tk_pins_t is created and used by the loop thread only; inputs
 * are borrowed for the call.
 */
#ifndef TK_PIN_PIN_H
#define TK_PIN_PIN_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>

#include "config/config.h"
#include "core/core.h"
#include "store/store.h"

#define TK_PIN_META_KEY "tumiki/pinning" /* _meta key that marks a flagged tool */

/* SHA-256, in lowercase hex, of the canonical JSON (keys sorted at every
 * level, no whitespace, UTF-8) of the object made of the tool's "name",
 * "title", "description", "inputSchema", "outputSchema" and "annotations"
 * members (those present, whatever their type), prefixed by the line
 * "tumiki-tool-pin-v1\n". Nothing else (_meta, icons, unknown members) is
 * covered. TK_EINVAL if tool is not an object with a string "name". */
int tk_pin_hash(const json_t *tool, char out[TK_PIN_HASH_LEN + 1]) TK_WUR;

typedef enum {
    TK_PIN_APPROVED = 0, /* listed as approved */
    TK_PIN_PENDING,      /* never approved, approval withdrawn, or not pinnable */
    TK_PIN_CHANGED,      /* approved, but the server now lists something else */
} tk_pin_verdict_t;

/* A word for a verdict ("approved", "pending", "changed"). */
const char *tk_pin_verdict_name(tk_pin_verdict_t v);

typedef struct tk_pins tk_pins_t;

/* Runs on the loop when the approval of a tool of `server` changed. */
typedef void (*tk_pins_changed_cb)(void *arg, const char *server);

/* Load every pin from the SQLite store at db_path (creating and migrating
 * it) and start the worker. NULL on failure, err says why. */
typedef struct tk_alerts tk_alerts_t;
/* Raise a "tool_definition_changed" alert (webhook + log) besides the warn
 * line whenever a changed or unapproved definition is first seen. */
void tk_pins_set_alerts(tk_pins_t *p, tk_alerts_t *alerts);

tk_pins_t *tk_pins_create(struct event_base *base, const char *db_path, tk_pins_changed_cb cb,
                          void *arg, char *err, size_t errlen);
/* Stops the worker after it wrote what was queued; no callback runs after. */
void tk_pins_destroy(tk_pins_t *p);

/* Server `server` listed `tools` (an array). New tools are pinned when
 * pol->tofu is set (else pending); changed or pending definitions are logged
 * and alerted once per new hash; what was seen is written to the store. */
void tk_pins_observe(tk_pins_t *p, const char *server, const tk_pin_policy_t *pol,
                     const json_t *tools);

/* Whether `tool`, as listed by `server`, is the approved definition. With p
 * NULL (no store) every tool is pending: pinning fails closed. hash (may be
 * NULL) receives the tool's hash ("" if it has none). */
tk_pin_verdict_t tk_pins_check(const tk_pins_t *p, const char *server, const json_t *tool,
                               char hash[TK_PIN_HASH_LEN + 1]);

#endif
