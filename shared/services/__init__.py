"""Use cases the handlers call: each takes plain values, works through store and providers."""
