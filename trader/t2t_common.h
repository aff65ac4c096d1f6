/* What the trader and the floor share: the stage row, the MoldUDP64 header (big-endian fields: byteorder.h). */
#ifndef LATLAB_T2T_COMMON_H
#define LATLAB_T2T_COMMON_H

#include <stdint.h>

#include "byteorder.h"

#define HEADER_LEN 20 /* MoldUDP64: session (10), sequence (8), count (2) */
/* Stage row (CLOCK_REALTIME ns): 0 kernel rx, 1 user receive, 2 decoded, 3 book updated, 4 decision, 5 risk passed,
 * 6 encoded, 7 sent. The floor fills 0, 1 and 7 (2..6 = 1). */
#define STAGES 8

#endif
