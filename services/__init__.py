"""Operations the API, the CLI and the activities share, each through one unit of work."""
