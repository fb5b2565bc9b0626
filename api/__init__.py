"""The FastAPI front door (DESIGN §7)."""
