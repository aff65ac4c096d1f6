"""RDMA verbs latency: pyverbs drivers, the perftest wrapper, and the soft-RoCE VM runner."""
