"""ITCH 5.0 codec, order books, session generator, replay, and (for tick-to-trade) the exchange simulator."""
