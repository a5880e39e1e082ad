/* The second tier's JSON (reply.h): counters and each node's breaker, for
 * /info and /v1/cache. */
#include <jansson.h>

#include "reply.h"

static json_t *node_json(const er_tier *t, int i) {
    er_tier_node_info n;
    er_tier_node(t, i, &n);
    return json_pack("{s:s,s:s,s:I,s:I,s:I}", "node", n.name, "breaker",
                     er_breaker_state_name(n.state), "breaker_opens", (json_int_t)n.opens,
                     "errors", (json_int_t)n.errors, "timeouts", (json_int_t)n.timeouts);
}

json_t *pr_tier_reply(const er_tier *t) {
    if (!t) return json_pack("{s:b}", "enabled", 0);
    er_tier_counters c;
    er_tier_stats(t, &c);
    json_t *nodes = json_array();
    for (int i = 0; nodes && i < c.nodes; i++) json_array_append_new(nodes, node_json(t, i));
    return json_pack("{s:b,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:o*}", "enabled", 1,
                     "kind", "memcached", "hits", (json_int_t)c.hits, "misses",
                     (json_int_t)c.misses, "corrupt", (json_int_t)c.corrupt, "errors",
                     (json_int_t)c.errors, "timeouts", (json_int_t)c.timeouts, "skipped",
                     (json_int_t)c.skipped, "sets", (json_int_t)c.sets, "set_errors",
                     (json_int_t)c.set_errors, "breaker_opens", (json_int_t)c.breaker_opens,
                     "nodes_open", c.nodes_open, "nodes", nodes);
}
