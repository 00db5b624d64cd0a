"""The session queue: batches, the in-kernel processor thread, and events."""
