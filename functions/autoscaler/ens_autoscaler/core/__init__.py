"""The pure core: signals, the policy, the planner and its guard chain, the order book, the result,
the messages and the vocabulary. No I/O, no cloud, no store; everything above imports from here."""
