"""MoldUDP64 multicast market data: codec, publisher, subscribers with gap recovery, re-request server."""
