"""Host readiness for latency work: checks, apply/revert of runtime tunings, and the report in every manifest."""
