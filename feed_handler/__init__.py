"""Market data: ITCH 5.0 order books (compiled and reference), the seeded session generator, replay."""
