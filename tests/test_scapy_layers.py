"""Scapy layers agree with latlab's codecs, both ways, and read the generator's pcaps."""

from __future__ import annotations

from scapy.utils import rdpcap

from feed_handler.generator import GenParams, write_pcap
from latlab.wire import itch, moldudp64
from latlab.wire.scapy_layers import ITCH_LAYERS, MoldBlock, MoldUDP64, bind_moldudp64, itch_message


def test_every_itch_layer_matches_the_codec_length():
    for t, layer in ITCH_LAYERS.items():
        assert len(bytes(layer())) == itch.SPECS[t].length


def test_built_with_scapy_decoded_by_latlab_and_back():
    msg = itch.make("A", stock_locate=9, timestamp=34_200_000_000_123, order_ref=77, side="S", shares=300,
                    stock="ZVZZT", price=1_005_000)
    layer = ITCH_LAYERS["A"](stock_locate=9, timestamp=34_200_000_000_123, order_ref=77, side=b"S", shares=300,
                             stock=b"ZVZZT   ", price=1_005_000)
    assert bytes(layer) == itch.encode(msg)
    parsed = itch_message(itch.encode(msg))
    assert parsed.order_ref == 77 and parsed.timestamp == 34_200_000_000_123 and parsed.stock == b"ZVZZT   "
    pkt = MoldUDP64(session=b"SESSION001", sequence=5, messages=[MoldBlock(message=layer), MoldBlock(message=layer)])
    raw = bytes(pkt)
    decoded = moldudp64.decode_packet(raw)
    assert decoded.sequence == 5 and decoded.count == 2 and decoded.messages == [itch.encode(msg)] * 2


def test_reads_the_generators_pcap(tmp_path):
    path = tmp_path / "s.pcap"
    write_pcap(GenParams(seed=2, messages=2_000, instruments=5, live_orders=200), path)
    bind_moldudp64(26477)
    packets = rdpcap(str(path))
    first = packets[0][MoldUDP64]
    assert first.session == b"LATLAB0001" and first.sequence == 1
    assert first.messages[0].message.message_type == b"S"
    assert packets[-1][MoldUDP64].count == moldudp64.END_OF_SESSION
    adds = [b.message for p in packets for b in p[MoldUDP64].messages if b.message.message_type == b"A"]
    assert adds and all(a.side in (b"B", b"S") for a in adds)


def test_ouch_and_soupbintcp_layers_match_the_codecs():
    from latlab.wire import ouch, soupbintcp
    from latlab.wire.scapy_layers import OUCH_IN_LAYERS, OUCH_OUT_LAYERS, SoupBinTCP

    for t, layer in OUCH_IN_LAYERS.items():
        assert len(bytes(layer())) == ouch.INBOUND[t].length
    for t, layer in OUCH_OUT_LAYERS.items():
        assert len(bytes(layer())) == ouch.OUTBOUND[t].length
    order = ouch.INBOUND.make("O", token="T1", side="B", shares=100, stock="ZVZZT", price=1_000_000,
                              time_in_force=ouch.IOC, firm="LTLB", display="Y", capacity="A",
                              intermarket_sweep="N", minimum_quantity=0, cross_type="N", customer_type="R")
    raw = soupbintcp.frame("U", ouch.INBOUND.encode(order))
    pkt = SoupBinTCP(raw)
    assert pkt.length == 50 and pkt.packet_type == b"U"
    parsed = pkt.ouch()
    assert parsed.token == b"T1            " and parsed.shares == 100 and parsed.price == 1_000_000
    built = SoupBinTCP(packet_type=b"U", data=bytes(OUCH_IN_LAYERS["O"](token=b"T1", side=b"B", shares=100)))
    assert bytes(built)[:3] == b"\x00\x32U"


def test_the_generated_layers_are_what_the_tables_make_now():
    """scapy_messages.py is generated from the ITCH and OUCH tables: a table edited without regenerating fails."""
    from latlab.wire import scapy_gen

    assert scapy_gen.TARGET.read_text() == scapy_gen.render(), "run: python -m latlab.wire.scapy_gen"


def test_layers_show_prices_with_their_decimals_and_enums_with_their_meaning():
    from latlab.wire.scapy_messages import ITCHAddOrder, ITCHMWCBDeclineLevel

    add = ITCHAddOrder(order_ref=7, side=b"S", shares=100, stock=b"ZVZZT   ", price=1_005_000)
    summary = add.mysummary()
    assert "price=100.5000" in summary and "side=" in summary and "sell" in summary
    assert "stock_locate" not in summary  # the header is not summarised
    assert ITCHMWCBDeclineLevel(level1=123_456_789_012).mysummary().startswith(
        "ITCH 5.0 MWCBDeclineLevel level1=1234.56789012")
    assert itch.SPECS["A"].describe(itch.decode(bytes(add))) == (
        "AddOrder stock_locate=0 tracking=0 timestamp=0 order_ref=7 side=S (sell) shares=100 stock=ZVZZT "
        "price=100.5000")
