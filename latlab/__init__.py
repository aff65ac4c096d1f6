"""latlab: a network latency lab. The core: runs, records, histograms, topologies and reports."""

__version__ = "0.1.0"
