"""The wire formats, one package: ITCH 5.0, MoldUDP64, SoupBinTCP, OUCH 4.2, FIX 4.4 framing, pcap/pcapng
and the Scapy layers. Benchmarks share message layouts only through here."""
