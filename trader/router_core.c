/* The smart order router's split in plain C: see router_core.h. */
#include "router_core.h"

typedef struct {
    uint32_t price;
    uint64_t shares;
    int venue;
} Candidate;

/* Whether a comes before b: price (lower for a buy), more shares, lower fee, shorter response time, lower index. */
static int before(const Candidate *a, const Candidate *b, const RouterVenue *v, int buy) {
    if (a->price != b->price)
        return buy ? a->price < b->price : a->price > b->price;
    if (a->shares != b->shares)
        return a->shares > b->shares;
    if (v[a->venue].taker_fee != v[b->venue].taker_fee)
        return v[a->venue].taker_fee < v[b->venue].taker_fee;
    if (v[a->venue].latency_ns != v[b->venue].latency_ns)
        return v[a->venue].latency_ns < v[b->venue].latency_ns;
    return a->venue < b->venue;
}

int router_split(const RouterVenue *venues, int nvenues, char side, uint32_t shares, uint32_t limit,
                 RouterChild *out, uint32_t *placed) {
    *placed = 0;
    if ((side != 'B' && side != 'S') || nvenues < 0 || nvenues > ROUTER_MAX_VENUES)
        return -1;
    int buy = side == 'B';
    Candidate c[ROUTER_MAX_VENUES * ROUTER_MAX_DEPTH];
    int n = 0;
    for (int i = 0; i < nvenues; i++) {
        if (!venues[i].up || !venues[i].books)
            continue;
        for (uint32_t k = 0; k < ROUTER_MAX_DEPTH; k++) {
            uint32_t price;
            uint64_t level_shares;
            if (!book_level(venues[i].books, venues[i].locate, buy ? 1 : 0, k, &price, &level_shares))
                break;
            if (buy ? price > limit : price < limit)
                break; /* levels come best first: the rest are past the limit too */
            Candidate cand = {price, level_shares, i};
            int at = n++;
            while (at > 0 && before(&cand, &c[at - 1], venues, buy)) { /* insertion sort: at most 128 */
                c[at] = c[at - 1];
                at--;
            }
            c[at] = cand;
        }
    }
    int slot[ROUTER_MAX_VENUES];
    for (int i = 0; i < ROUTER_MAX_VENUES; i++)
        slot[i] = -1;
    int children = 0;
    uint32_t left = shares;
    for (int k = 0; k < n && left > 0; k++) {
        uint32_t take = c[k].shares < left ? (uint32_t)c[k].shares : left;
        int v = c[k].venue;
        if (slot[v] < 0) {
            slot[v] = children;
            out[children++] = (RouterChild){v, 0, c[k].price};
        }
        RouterChild *child = &out[slot[v]];
        child->shares += take;
        child->price = c[k].price; /* later levels of one venue are never better */
        left -= take;
    }
    *placed = shares - left;
    return children;
}
