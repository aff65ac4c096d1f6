"""Wrappers of the native reference tools (sockperf, qperf): run them on a lab path and parse their output."""
