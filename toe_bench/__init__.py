"""TCP/UDP ping-pong across stacks: latlab's own engine (compiled loop, Python reference) and its runner."""
