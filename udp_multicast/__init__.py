"""MoldUDP64 multicast market data: publisher, subscribers with gap recovery, re-request server, rate sweeps."""
