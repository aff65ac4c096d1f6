"""The venue: an exchange simulator (ITCH feed over MoldUDP64, matching, SoupBinTCP/OUCH and FIX 4.4
order-entry sessions), run as a helper process by the benchmarks that trade against it."""
