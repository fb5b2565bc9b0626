"""Side effects behind small classes with injected dependencies (DESIGN §8)."""
