"""The runtime pipeline FC runs: app → scale-out / follow-up → outbox, with the timers' work
(predictive, surplus watch), settings, auth and logs. Imports the edges (cloud, state, sources) and the core."""
