/* The smart order router's decision in plain C (no Python.h): how a parent order is split across venues, from
 * each venue's own books (feed_handler/book_core.c). trader/router.py holds the reference (`split`) and the parent
 * and child bookkeeping around it; the differential tests give both the same books. */
#ifndef LATLAB_ROUTER_CORE_H
#define LATLAB_ROUTER_CORE_H

#include <stdint.h>

#include "book_core.h"

#define ROUTER_MAX_VENUES 8
#define ROUTER_MAX_DEPTH 16 /* levels per venue looked at */

typedef struct {
    const BookCore *books;
    uint16_t locate;    /* the instrument on this venue */
    int64_t taker_fee;  /* per share, in 1/10,000 $ (the unit of ITCH prices) */
    int64_t latency_ns; /* the venue's measured response time */
    int up;             /* 0: marked down, not routed to */
} RouterVenue;

typedef struct {
    int venue;
    uint32_t shares;
    uint32_t price; /* the child's IOC limit: the worst level it takes */
} RouterChild;

/* Split `shares` of a buy (side 'B': asks at or below `limit`) or a sell ('S': bids at or above) across the venues
 * that are up: levels by price (best first), then by quantity (more first), then by the venue's fee (lower), then
 * by its response time (shorter), then by its index. One child per venue, in the order venues first get shares.
 * Returns the number of children; *placed is the shares they hold (less than `shares` when the books are short);
 * -1 for a bad side or too many venues. */
int router_split(const RouterVenue *venues, int nvenues, char side, uint32_t shares, uint32_t limit,
                 RouterChild *out, uint32_t *placed);

#endif
